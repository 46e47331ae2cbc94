"""Kubernetes NetworkPolicy v1 semantics, one documented behaviour per test.

Every verdict asked through `Cluster.allowed` is also checked against the matrix engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from clusters import Cluster, namespace, pod

from netfence.analysis.verdict import Reason
from netfence.model.policies import Direction

World = Callable[..., Cluster]


def base() -> list[dict[str, Any]]:
    return [
        namespace("dev", {"env": "dev"}),
        namespace("prod", {"env": "prod"}),
        pod("dev", "a", {"app": "a"}, "10.0.1.1"),
        pod("dev", "b", {"app": "b"}, "10.0.1.2"),
        pod("dev", "c", {"app": "c", "tier": "db"}, "10.0.1.3"),
        pod("prod", "a", {"app": "a"}, "10.0.2.1"),
        pod("prod", "b", {"app": "b"}, "10.0.2.2"),
    ]


def policy(namespace_: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace_},
        "spec": spec,
    }


# --- podSelector ------------------------------------------------------------------------------


def test_pod_selector_match_labels_selects_only_matching_pods_of_the_policy_namespace(cluster: World) -> None:
    c = cluster(*base(), policy("dev", "deny-a", {"podSelector": {"matchLabels": {"app": "a"}}}))
    assert not c.allowed("dev/b", "dev/a")
    assert c.allowed("dev/a", "dev/b")  # dev/b is not selected
    assert c.allowed("dev/b", "prod/a")  # same labels, other namespace: not selected


@pytest.mark.parametrize(
    ("expression", "isolated"),
    [
        ({"key": "app", "operator": "In", "values": ["a", "c"]}, {"dev/a", "dev/c"}),
        ({"key": "app", "operator": "NotIn", "values": ["a"]}, {"dev/b", "dev/c"}),
        ({"key": "tier", "operator": "NotIn", "values": ["db"]}, {"dev/a", "dev/b"}),  # absent key: NotIn matches
        ({"key": "tier", "operator": "Exists"}, {"dev/c"}),
        ({"key": "tier", "operator": "DoesNotExist"}, {"dev/a", "dev/b"}),
    ],
)
def test_pod_selector_match_expressions_operators(cluster: World, expression: dict[str, Any], isolated: set[str]) -> None:
    c = cluster(*base(), policy("dev", "deny", {"podSelector": {"matchExpressions": [expression]}}))
    for target in ("dev/a", "dev/b", "dev/c"):
        assert c.allowed("prod/a", target) == (target not in isolated), target


def test_match_labels_and_match_expressions_are_anded(cluster: World) -> None:
    selector = {"matchLabels": {"app": "c"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}
    c = cluster(*base(), policy("dev", "deny", {"podSelector": selector}))
    assert c.allowed("prod/a", "dev/c")  # app=c but tier=db: not selected


def test_empty_pod_selector_selects_every_pod_of_the_namespace(cluster: World) -> None:
    c = cluster(*base(), policy("dev", "deny-all", {"podSelector": {}}))
    for target in ("dev/a", "dev/b", "dev/c"):
        assert not c.allowed("prod/a", target)
    assert c.allowed("dev/a", "prod/b")


# --- policyTypes ------------------------------------------------------------------------------


def test_policy_types_default_to_ingress_only_without_egress_rules(cluster: World) -> None:
    c = cluster(*base(), policy("dev", "p", {"podSelector": {"matchLabels": {"app": "a"}}}))
    assert not c.allowed("dev/b", "dev/a")
    assert c.allowed("dev/a", "dev/b")  # egress not isolated
    assert c.verdict("dev/a", "dev/b").egress.reason is Reason.NOT_ISOLATED


def test_policy_types_default_include_egress_when_egress_rules_exist(cluster: World) -> None:
    spec = {"podSelector": {"matchLabels": {"app": "a"}}, "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]}
    c = cluster(*base(), policy("dev", "p", spec))
    assert c.allowed("dev/a", "dev/b")
    assert not c.allowed("dev/a", "dev/c")
    assert not c.allowed("dev/b", "dev/a")  # Ingress is implied too, with no rules


def test_empty_egress_list_does_not_imply_egress_policy_type(cluster: World) -> None:
    c = cluster(*base(), policy("dev", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "egress": []}))
    assert c.allowed("dev/a", "dev/c")
    assert not c.allowed("dev/c", "dev/a")


def test_explicit_egress_policy_type_without_rules_denies_all_egress(cluster: World) -> None:
    c = cluster(*base(), policy("dev", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Egress"]}))
    assert not c.allowed("dev/a", "dev/b")
    assert not c.allowed("dev/a", "8.8.8.8", "53/UDP")
    assert c.allowed("dev/b", "dev/a")  # ingress not isolated: Ingress not in policyTypes


def test_ingress_rules_are_ignored_when_policy_types_name_only_egress(cluster: World) -> None:
    spec = {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Egress"], "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]}
    c = cluster(*base(), policy("dev", "p", spec))
    assert c.allowed("dev/c", "dev/a")  # the ingress section does not isolate
    assert not c.allowed("dev/a", "dev/b")


# --- absent vs empty ------------------------------------------------------------------------


@pytest.mark.parametrize("ingress", [None, []], ids=["absent", "empty"])
def test_absent_or_empty_ingress_with_ingress_type_denies_all_ingress(cluster: World, ingress: list[Any] | None) -> None:
    spec: dict[str, Any] = {"podSelector": {}, "policyTypes": ["Ingress"]}
    if ingress is not None:
        spec["ingress"] = ingress
    c = cluster(*base(), policy("dev", "p", spec))
    assert not c.allowed("dev/b", "dev/a")
    assert not c.allowed("prod/a", "dev/a", "ICMP")


@pytest.mark.parametrize("rule", [{}, {"from": []}], ids=["absent-from", "empty-from"])
def test_absent_or_empty_from_allows_every_source(cluster: World, rule: dict[str, Any]) -> None:
    c = cluster(*base(), policy("dev", "p", {"podSelector": {}, "ingress": [rule | {"ports": [{"port": 80}]}]}))
    assert c.allowed("prod/b", "dev/a")
    assert c.allowed("203.0.113.9", "dev/a")
    assert not c.allowed("prod/b", "dev/a", "443/TCP")


@pytest.mark.parametrize("rule", [{}, {"to": []}], ids=["absent-to", "empty-to"])
def test_absent_or_empty_to_allows_every_destination(cluster: World, rule: dict[str, Any]) -> None:
    c = cluster(*base(), policy("dev", "p", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [rule | {"ports": [{"port": 53, "protocol": "UDP"}]}]}))
    assert c.allowed("dev/a", "prod/b", "53/UDP")
    assert c.allowed("dev/a", "8.8.8.8", "53/UDP")
    assert not c.allowed("dev/a", "prod/b", "53/TCP")


@pytest.mark.parametrize("ports", [None, []], ids=["absent-ports", "empty-ports"])
def test_absent_or_empty_ports_allow_every_port_and_protocol(cluster: World, ports: list[Any] | None) -> None:
    rule: dict[str, Any] = {"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}
    if ports is not None:
        rule["ports"] = ports
    c = cluster(*base(), policy("dev", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [rule]}))
    for port in ("80/TCP", "5432/TCP", "53/UDP", "9/SCTP", "ICMP"):
        assert c.allowed("dev/b", "dev/a", port), port
    assert not c.allowed("dev/c", "dev/a", "80/TCP")


# --- peers ------------------------------------------------------------------------------------


def test_pod_selector_peer_alone_means_pods_of_the_policy_namespace(cluster: World) -> None:
    c = cluster(*base(), policy("dev", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]}))
    assert c.allowed("dev/b", "dev/a")
    assert not c.allowed("prod/b", "dev/a")  # same labels, other namespace


def test_namespace_selector_peer_alone_means_every_pod_of_matching_namespaces(cluster: World) -> None:
    c = cluster(*base(), policy("dev", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"env": "prod"}}}]}]}))
    assert c.allowed("prod/a", "dev/a")
    assert c.allowed("prod/b", "dev/a")
    assert not c.allowed("dev/b", "dev/a")


def test_empty_namespace_selector_peer_means_every_pod_of_every_namespace(cluster: World) -> None:
    c = cluster(*base(), policy("dev", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}))
    assert c.allowed("prod/b", "dev/a")
    assert c.allowed("dev/c", "dev/a")
    assert not c.allowed("203.0.113.9", "dev/a")  # selectors never match addresses outside the cluster


def test_namespace_and_pod_selector_in_one_peer_are_anded(cluster: World) -> None:
    peer = {"namespaceSelector": {"matchLabels": {"env": "prod"}}, "podSelector": {"matchLabels": {"app": "b"}}}
    c = cluster(*base(), policy("dev", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [peer]}]}))
    assert c.allowed("prod/b", "dev/a")
    assert not c.allowed("prod/a", "dev/a")
    assert not c.allowed("dev/b", "dev/a")


def test_namespace_and_pod_selector_as_two_peers_are_ored(cluster: World) -> None:
    peers = [{"namespaceSelector": {"matchLabels": {"env": "prod"}}}, {"podSelector": {"matchLabels": {"app": "b"}}}]
    c = cluster(*base(), policy("dev", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": peers}]}))
    assert c.allowed("prod/b", "dev/a")
    assert c.allowed("prod/a", "dev/a")
    assert c.allowed("dev/b", "dev/a")
    assert not c.allowed("dev/c", "dev/a")


def test_namespace_selector_can_use_the_automatic_metadata_name_label(cluster: World) -> None:
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "prod"}}}
    c = cluster(*base(), policy("dev", "p", {"podSelector": {}, "ingress": [{"from": [peer]}]}))
    assert c.allowed("prod/a", "dev/b")
    assert not c.allowed("dev/a", "dev/b")


def test_ip_block_with_except_matches_addresses_and_pod_ips(cluster: World) -> None:
    peer = {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.2.0/24"]}}
    c = cluster(*base(), policy("dev", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [peer]}]}))
    assert c.allowed("dev/b", "dev/a")  # pod IP 10.0.1.2 is inside the block
    assert not c.allowed("prod/a", "dev/a")  # 10.0.2.1 is in the except
    assert c.allowed("10.0.7.7", "dev/a")  # an address outside the inventory
    assert not c.allowed("192.168.0.1", "dev/a")
    assert c.verdict("dev/b", "dev/a").ingress.peer_index == 0


def test_ip_block_egress_to_addresses_outside_the_cluster(cluster: World) -> None:
    spec = {"podSelector": {"matchLabels": {"app": "a"}}, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}]}
    c = cluster(*base(), policy("dev", "p", spec))
    assert c.allowed("dev/a", "1.1.1.1", "443/TCP")
    assert not c.allowed("dev/a", "dev/b")
    assert not c.allowed("dev/a", "10.9.9.9")


def test_ipv6_ip_block_does_not_match_ipv4_addresses(cluster: World) -> None:
    spec = {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [{"ipBlock": {"cidr": "::/0"}}]}]}
    c = cluster(*base(), policy("dev", "p", spec))
    assert not c.allowed("dev/b", "dev/a")
    assert c.allowed("2001:db8::1", "dev/a")


# --- ports ------------------------------------------------------------------------------------


def test_port_by_number_with_protocol_defaulting_to_tcp(cluster: World) -> None:
    c = cluster(*base(), policy("dev", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"ports": [{"port": 80}]}]}))
    assert c.allowed("dev/b", "dev/a", "80/TCP")
    assert not c.allowed("dev/b", "dev/a", "80/UDP")
    assert not c.allowed("dev/b", "dev/a", "81/TCP")
    assert not c.allowed("dev/b", "dev/a", "ICMP")


@pytest.mark.parametrize("protocol", ["UDP", "SCTP"])
def test_udp_and_sctp_ports(cluster: World, protocol: str) -> None:
    c = cluster(*base(), policy("dev", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"ports": [{"port": 53, "protocol": protocol}]}]}))
    assert c.allowed("dev/b", "dev/a", f"53/{protocol}")
    assert not c.allowed("dev/b", "dev/a", "53/TCP")


def test_protocol_without_port_matches_every_port_of_that_protocol(cluster: World) -> None:
    c = cluster(*base(), policy("dev", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"ports": [{"protocol": "UDP"}]}]}))
    assert c.allowed("dev/b", "dev/a", "5353/UDP")
    assert not c.allowed("dev/b", "dev/a", "80/TCP")


def test_end_port_range_is_inclusive(cluster: World) -> None:
    c = cluster(*base(), policy("dev", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"ports": [{"port": 32000, "endPort": 32768}]}]}))
    assert c.allowed("dev/b", "dev/a", "32000/TCP")
    assert c.allowed("dev/b", "dev/a", "32768/TCP")
    assert not c.allowed("dev/b", "dev/a", "32769/TCP")
    assert not c.allowed("dev/b", "dev/a", "31999/TCP")


def test_named_port_resolves_per_destination_pod(cluster: World) -> None:
    objects = [
        namespace("web"),
        pod("web", "old", {"role": "web"}, "10.1.0.1", ports=[("http", 80, "TCP")]),
        pod("web", "new", {"role": "web"}, "10.1.0.2", ports=[("http", 8080, "TCP")]),
        pod("web", "client", {"role": "client"}, "10.1.0.3", ports=[]),
        policy("web", "p", {"podSelector": {"matchLabels": {"role": "web"}}, "ingress": [{"ports": [{"port": "http"}]}]}),
    ]
    c = cluster(*objects)
    assert c.allowed("web/client", "web/old", "80/TCP")
    assert not c.allowed("web/client", "web/old", "8080/TCP")
    assert c.allowed("web/client", "web/new", "8080/TCP")
    assert not c.allowed("web/client", "web/new", "80/TCP")


def test_named_port_must_match_the_protocol_of_the_container_port(cluster: World) -> None:
    objects = [
        namespace("svc"),
        pod("svc", "dns", {"app": "dns"}, "10.1.0.1", ports=[("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")]),
        pod("svc", "client", {}, "10.1.0.2", ports=[]),
        policy("svc", "p", {"podSelector": {"matchLabels": {"app": "dns"}}, "ingress": [{"ports": [{"port": "dns", "protocol": "UDP"}]}]}),
    ]
    c = cluster(*objects)
    assert c.allowed("svc/client", "svc/dns", "53/UDP")
    assert not c.allowed("svc/client", "svc/dns", "53/TCP")


def test_named_port_in_egress_resolves_against_the_destination_pod(cluster: World) -> None:
    objects = [
        namespace("web"),
        pod("web", "client", {"role": "client"}, "10.1.0.3", ports=[("http", 9999, "TCP")]),
        pod("web", "old", {"role": "web"}, "10.1.0.1", ports=[("http", 80, "TCP")]),
        pod("web", "new", {"role": "web"}, "10.1.0.2", ports=[("http", 8080, "TCP")]),
        policy("web", "p", {"podSelector": {"matchLabels": {"role": "client"}}, "egress": [{"ports": [{"port": "http"}]}]}),
    ]
    c = cluster(*objects)
    assert c.allowed("web/client", "web/old", "80/TCP")
    assert c.allowed("web/client", "web/new", "8080/TCP")
    assert not c.allowed("web/client", "web/new", "80/TCP")
    assert not c.allowed("web/client", "web/old", "9999/TCP")  # the source's own named port is irrelevant
    assert not c.allowed("web/client", "1.1.1.1", "80/TCP")  # an outside address has no named ports


# --- combining --------------------------------------------------------------------------------


def test_policies_selecting_a_pod_are_unioned(cluster: World) -> None:
    p1 = policy("dev", "from-b", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}], "ports": [{"port": 80}]}]})
    p2 = policy("dev", "from-c", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "c"}}}], "ports": [{"port": 443}]}]})
    c = cluster(*base(), p1, p2)
    assert c.allowed("dev/b", "dev/a", "80/TCP")
    assert c.allowed("dev/c", "dev/a", "443/TCP")
    assert not c.allowed("dev/b", "dev/a", "443/TCP")
    assert not c.allowed("dev/c", "dev/a", "80/TCP")
    verdict = c.verdict("dev/c", "dev/a", "80/TCP")
    assert [str(p) for p in verdict.ingress.policies] == ["NetworkPolicy dev/from-b", "NetworkPolicy dev/from-c"]


def test_isolation_is_per_direction(cluster: World) -> None:
    c = cluster(*base(), policy("dev", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Ingress"]}))
    assert c.allowed("dev/a", "prod/b")  # egress of dev/a is not isolated
    assert not c.allowed("prod/b", "dev/a")


def test_pod_to_pod_needs_egress_of_source_and_ingress_of_destination(cluster: World) -> None:
    allow_egress = policy("dev", "a-out", {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Egress"], "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]})
    deny_b = policy("dev", "b-in", {"podSelector": {"matchLabels": {"app": "b"}}, "policyTypes": ["Ingress"]})
    c = cluster(*base(), allow_egress, deny_b)
    verdict = c.verdict("dev/a", "dev/b")
    assert verdict.egress.allowed and not verdict.ingress.allowed and not verdict.allowed
    assert not c.allowed("dev/a", "dev/b")


def test_a_pod_reaching_itself_is_always_allowed(cluster: World) -> None:
    c = cluster(*base(), policy("dev", "p", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}))
    assert c.allowed("dev/a", "dev/a", "80/TCP")
    assert c.allowed("dev/a", "dev/a", "ICMP")
    assert c.verdict("dev/a", "dev/a").ingress.reason is Reason.SELF
    assert not c.allowed("dev/a", "dev/b")


# --- hostNetwork and outside addresses ---------------------------------------------------------


def test_host_network_pods_are_never_selected_by_policies(cluster: World) -> None:
    objects = [*base(), pod("dev", "agent", {"app": "a"}, "192.168.1.10", hostNetwork=True)]
    c = cluster(*objects, policy("dev", "p", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}))
    assert c.ruleset.endpoint("dev/agent") is None  # type: ignore[arg-type]
    assert c.allowed("prod/a", "dev/agent")
    assert c.verdict("prod/a", "dev/agent").ingress.reason is Reason.NOT_AN_ENDPOINT


def test_host_network_pods_as_peers_are_matched_by_ip_block_only(cluster: World) -> None:
    objects = [*base(), pod("prod", "agent", {"app": "b"}, "192.168.1.10", hostNetwork=True)]
    by_selector = policy("dev", "sel", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [{"namespaceSelector": {}}]}]})
    c = cluster(*objects, by_selector)
    assert c.allowed("prod/b", "dev/a")
    assert not c.allowed("prod/agent", "dev/a")
    by_block = policy("dev", "blk", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [{"ipBlock": {"cidr": "192.168.1.0/24"}}]}]})
    c = cluster(*objects, by_block)
    assert c.allowed("prod/agent", "dev/a")


def test_traffic_from_outside_the_inventory_is_judged_on_the_pod_side_only(cluster: World) -> None:
    c = cluster(*base(), policy("dev", "p", {"podSelector": {"matchLabels": {"app": "a"}}}))
    verdict = c.verdict("198.51.100.7", "dev/a")
    assert verdict.egress.reason is Reason.NOT_AN_ENDPOINT and verdict.egress.allowed
    assert not verdict.ingress.allowed and verdict.ingress.reason is Reason.ISOLATED
    assert c.allowed("198.51.100.7", "dev/b")


def test_deciding_rule_is_reported_with_peer_and_port_index(cluster: World) -> None:
    rules = [
        {"from": [{"podSelector": {"matchLabels": {"app": "c"}}}]},
        {"from": [{"podSelector": {"matchLabels": {"app": "x"}}}, {"podSelector": {"matchLabels": {"app": "b"}}}], "ports": [{"port": 443}, {"port": 80}]},
    ]
    c = cluster(*base(), policy("dev", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": rules}))
    side = c.verdict("dev/b", "dev/a").ingress
    assert side.rule is not None
    assert (side.rule.direction, side.rule.index, side.peer_index, side.port_index) == (Direction.INGRESS, 1, 1, 1)
    assert str(side.rule) == "NetworkPolicy dev/p ingress[1]"
