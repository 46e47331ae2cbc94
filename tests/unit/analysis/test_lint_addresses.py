"""Lint checks about address blocks: block-covers-pods and ingress-controller-client-block."""

from __future__ import annotations

from collections.abc import Callable

from clusters import Cluster
from lint_support import findings_of

World = Callable[..., Cluster]


def from_block(block: str, name: str = "from-block") -> str:
    return f"""
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {{name: {name}, namespace: shop}}
    spec:
      podSelector: {{matchLabels: {{app: web}}}}
      ingress:
      - from: [{{ipBlock: {block}}}]
    """


# --- block-covers-pods --------------------------------------------------------------------------------


def test_an_ip_block_covering_pod_addresses_is_reported(cluster: World) -> None:
    found = findings_of(cluster, from_block("{cidr: 10.244.1.0/24}"), code="block-covers-pods")
    assert [f.field for f in found] == [("spec", "ingress", 0, "from", 0, "ipBlock")]
    assert found[0].message.startswith(
        "ingress[0]: ipBlock 10.244.1.0/24 covers the addresses of 2 pods: shop/db 10.244.1.11, shop/web 10.244.1.10;"
    )
    assert found[0].hint == (
        "select pods with podSelector/namespaceSelector, and add the pod network (10.244.0.0/22) to except"
    )


def test_an_except_removing_the_pods_clears_it(cluster: World) -> None:
    block = "{cidr: 10.0.0.0/8, except: [10.244.0.0/16]}"
    assert findings_of(cluster, from_block(block), code="block-covers-pods") == []


def test_admin_networks_matching_pods_are_reported(cluster: World) -> None:
    anp = """
    apiVersion: policy.networking.k8s.io/v1alpha1
    kind: AdminNetworkPolicy
    metadata: {name: no-internet}
    spec:
      priority: 5
      subject: {namespaces: {}}
      egress:
      - {action: Deny, to: [{networks: [0.0.0.0/0]}]}
    """
    found = findings_of(cluster, anp, code="block-covers-pods")
    assert [f.field for f in found] == [("spec", "egress", 0, "to", 0, "networks", 0)]
    assert "covers every pod's address (4 pods)" in found[0].message
    assert "networks match pod addresses too" in found[0].message


# --- ingress-controller-client-block ------------------------------------------------------------------

CONTROLLER = """
apiVersion: v1
kind: Pod
metadata: {name: ingress-nginx-controller-7d9f, namespace: ingress-nginx, labels: {app.kubernetes.io/name: ingress-nginx}}
status: {phase: Running, podIP: 10.244.9.10}
"""


def service(kind: str) -> str:
    return f"""
    apiVersion: v1
    kind: Service
    metadata: {{name: web, namespace: shop}}
    spec: {{type: {kind}, selector: {{app: web}}, ports: [{{port: 80}}]}}
    """


def test_client_addresses_admitted_to_a_backend_behind_an_ingress_controller_are_reported(cluster: World) -> None:
    found = findings_of(
        cluster, CONTROLLER, service("ClusterIP"), from_block("{cidr: 198.51.100.0/24}"),
        code="ingress-controller-client-block",
    )  # fmt: skip
    assert [(f.object, f.field) for f in found] == [("NetworkPolicy shop/from-block", ("spec", "ingress", 0, "from", 0))]
    assert found[0].message == (
        "ingress[0] admits clients by address (198.51.100.0/24) to shop/web, which clients reach through the "
        "ingress controller ingress-nginx/ingress-nginx-controller-7d9f (10.244.9.10): the controller connects "
        "from its own address, so this peer never matches proxied traffic"
    )


def test_a_load_balancer_service_exposes_the_pod_directly(cluster: World) -> None:
    found = findings_of(
        cluster, CONTROLLER, service("LoadBalancer"), from_block("{cidr: 198.51.100.0/24}"),
        code="ingress-controller-client-block",
    )  # fmt: skip
    assert found == []


def test_a_block_holding_the_controller_admits_it(cluster: World) -> None:
    found = findings_of(
        cluster, CONTROLLER, service("ClusterIP"), from_block("{cidr: 10.244.9.0/24}"),
        code="ingress-controller-client-block",
    )  # fmt: skip
    assert found == []


def test_without_an_ingress_controller_client_blocks_are_not_reported(cluster: World) -> None:
    found = findings_of(
        cluster, service("ClusterIP"), from_block("{cidr: 198.51.100.0/24}"), code="ingress-controller-client-block"
    )
    assert found == []
