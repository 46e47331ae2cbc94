"""netfence query with external workloads: by name or address, and through a Service the way a
host outside the cluster reaches it (a node's nodePort, the load balancer)."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources

Run = Callable[..., tuple[int, str, str]]
Write = Callable[[str, str], str]
SCENARIO = str(resources.files("netfence") / "scenarios" / "whitelist")
WORDPRESS = ("--to", "svc/wordpress/wordpress", "--port", "80")


def test_host_reaches_the_nodeport_service_and_the_backend_sees_the_host(run: Run) -> None:
    code, out, _ = run("query", "-f", SCENARIO, "--from", "ext/haproxy", *WORDPRESS)
    assert code == 0
    assert "ALLOWED  ext/haproxy -> wordpress/wordpress-6dfdd9f64f-d75j2  TCP/80" in out
    assert "  egress   allowed by GlobalNetworkPolicy wordpress-whitelist egress[0]" in out
    assert "  via      172.18.221.11:30358/TCP (nodePort on k8s-node1); the backend sees ext/haproxy" in out


def test_json_names_where_the_host_connects(run: Run) -> None:
    code, out, _ = run("query", "-f", SCENARIO, "--from", "198.51.100.7", *WORDPRESS, "-o", "json")
    data = json.loads(out)
    assert (code, data["allowed"]) == (1, False)
    assert data["fromOutside"] == [
        {
            "backend": "wordpress/wordpress-6dfdd9f64f-d75j2",
            "via": {"address": "172.18.221.11", "port": 30358, "protocol": "TCP", "what": "nodePort on k8s-node1"},
            "sourceSeenByBackend": "ext/client",
        }
    ]
    assert data["backends"][0]["egress"]["reason"] == "not-isolated"
    assert data["backends"][0]["ingress"]["reason"] == "isolated"


def test_cluster_traffic_policy_shows_the_node_address_to_the_backend(run: Run, write: Write) -> None:
    text = (resources.files("netfence") / "scenarios" / "whitelist" / "cluster.yaml").read_text()
    cluster = write("cluster.yaml", text.replace("externalTrafficPolicy: Local", "externalTrafficPolicy: Cluster"))
    policy = str(resources.files("netfence") / "scenarios" / "whitelist" / "whitelist.yaml")
    code, out, _ = run("query", "-f", cluster, "-f", policy, "--from", "ext/haproxy", *WORDPRESS)
    assert code == 1  # the whitelist admits HAProxy's address, and kube-proxy shows the node's
    assert "the backend sees 172.18.221.11" in out
    assert "  ingress  denied: wordpress/wordpress-6dfdd9f64f-d75j2 is isolated for ingress" in out


def test_service_not_published_outside_is_judged_as_a_direct_flow(run: Run) -> None:
    mysql = ("--to", "svc/wordpress/wordpress-mysql", "--port", "3306")
    code, out, _ = run("query", "-f", SCENARIO, "--from", "ext/haproxy", *mysql)
    assert code == 1
    assert "via      nothing: the service is not published outside the cluster (judged as a direct flow)" in out


def test_unknown_external_workload_is_a_usage_error(run: Run) -> None:
    code, out, err = run("query", "-f", SCENARIO, "--from", "ext/nope", "--to", "ext/haproxy", "--port", "80")
    assert (code, out) == (2, "")
    assert err == "error: --from: no external workload nope in the inventory\n"
