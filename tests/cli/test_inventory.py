"""netfence inventory: what a Calico selector matches among pods, Services, external workloads
and host endpoints, by their labels and netfence's derived labels."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources

Run = Callable[..., tuple[int, str, str]]
SCENARIO = str(resources.files("netfence") / "scenarios" / "whitelist")


def ids(run: Run, *argv: str) -> list[str]:
    code, out, err = run("inventory", "-f", SCENARIO, "-o", "json", *argv)
    assert (code, err) == (0, ""), err
    return [item["id"] for item in json.loads(out)["items"]]


def test_without_selector_every_endpoint_and_service_is_listed_by_kind(run: Run) -> None:
    assert ids(run) == [
        "wordpress/toolbox",
        "wordpress/wordpress-6dfdd9f64f-d75j2",
        "wordpress/wordpress-mysql-5b58bbd695-gxtc4",
        "svc/wordpress/wordpress",
        "svc/wordpress/wordpress-mysql",
        "ext/client",
        "ext/haproxy",
    ]


def test_service_name_selects_the_service_and_its_backends(run: Run) -> None:
    assert ids(run, "--selector", "has(netfence.dev/service.wordpress)") == [
        "wordpress/wordpress-6dfdd9f64f-d75j2",
        "svc/wordpress/wordpress",
    ]
    assert ids(run, "-l", "netfence.dev/service.wordpress-mysql == 'wordpress'") == [
        "wordpress/wordpress-mysql-5b58bbd695-gxtc4",
        "svc/wordpress/wordpress-mysql",
    ]


def test_address_selects_whatever_holds_it(run: Run) -> None:
    assert ids(run, "-l", 'netfence.dev/address == "172.18.221.1"') == ["ext/haproxy"]
    assert ids(run, "-l", 'netfence.dev/address == "172.18.202.253"') == ["svc/wordpress/wordpress"]
    assert ids(run, "-l", "netfence.dev/address starts with '10.244.'") == [
        "wordpress/toolbox",
        "wordpress/wordpress-6dfdd9f64f-d75j2",
        "wordpress/wordpress-mysql-5b58bbd695-gxtc4",
    ]


def test_labels_kind_node_and_calico_derived_labels_select(run: Run) -> None:
    assert ids(run, "-l", "app == 'haproxy'") == ["ext/haproxy"]
    assert ids(run, "-l", "netfence.dev/kind == 'external'") == ["ext/client", "ext/haproxy"]
    assert ids(run, "-l", "netfence.dev/node == 'k8s-node3'") == ["wordpress/wordpress-mysql-5b58bbd695-gxtc4"]
    assert ids(run, "-l", "projectcalico.org/namespace == 'wordpress' && app == 'toolbox'") == ["wordpress/toolbox"]


def test_json_lists_addresses_ports_and_both_kinds_of_labels(run: Run) -> None:
    code, out, _ = run("inventory", "-f", SCENARIO, "-o", "json", "-l", "has(netfence.dev/service.wordpress)")
    pod, service = json.loads(out)["items"]
    assert pod["addresses"] == ["10.244.1.94"]
    assert pod["services"] == ["wordpress/wordpress"]
    assert pod["labels"] == {"app": "wordpress", "tier": "frontend"}
    assert pod["derivedLabels"] == {
        "netfence.dev/kind": "pod",
        "netfence.dev/name": "wordpress-6dfdd9f64f-d75j2",
        "netfence.dev/namespace": "wordpress",
        "netfence.dev/node": "k8s-node1",
        "netfence.dev/service.wordpress": "wordpress",
    }
    assert service["ports"] == [{"name": None, "nodePort": 30358, "port": 80, "protocol": "TCP", "targetPort": 80}]
    assert service["addresses"] == ["172.18.202.253"]


def test_table_has_one_row_per_match_and_a_count(run: Run) -> None:
    code, out, _ = run("inventory", "-f", SCENARIO, "-l", "has(netfence.dev/service.wordpress) || app == 'haproxy'")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "ADDRESSES", "PORTS", "NODE", "SERVICES", "LABELS"]
    assert lines[1].split() == [
        "pod",
        "wordpress/wordpress-6dfdd9f64f-d75j2",
        "10.244.1.94",
        "http:80/TCP",
        "k8s-node1",
        "wordpress/wordpress",
        "app=wordpress,tier=frontend",
    ]
    assert lines[2].split() == ["service", "svc/wordpress/wordpress", "172.18.202.253", "80:30358/TCP", "-", "-", "-"]
    assert lines[3].split() == ["external", "ext/haproxy", "172.18.221.1", "http:80/TCP", "-", "-", "app=haproxy"]
    assert lines[-1] == "3 matching: 1 pod, 1 service, 1 external workload"


def test_invalid_selector_exits_2_naming_the_position(run: Run) -> None:
    code, out, err = run("inventory", "-f", SCENARIO, "--selector", "app = 'x'")
    assert (code, out) == (2, "")
    assert err.startswith("error: --selector: invalid selector: ")
    assert err.rstrip().endswith("at position 4")


def test_selector_matching_nothing_lists_nothing(run: Run) -> None:
    code, out, _ = run("inventory", "-f", SCENARIO, "-l", "app == 'nope'")
    assert code == 0
    assert out.splitlines()[-1] == "0 matching"
