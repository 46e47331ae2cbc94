"""IR -> nftables objects: layout, sets, named ports, tiers; no kernel needed."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_address, ip_network
from typing import Any

from clusters import Cluster, namespace, pod

from netfence.dataplane.nft.compile import compile_node, interface_name
from netfence.dataplane.nft.objects import Table, comment
from netfence.ir.types import (
    Action,
    CidrBlock,
    EndpointInfo,
    PeerMatch,
    PolicyRef,
    PolicyRules,
    PortMatch,
    Rule,
    RuleRef,
    Ruleset,
    Tier,
)
from netfence.model.endpoints import EndpointId
from netfence.model.policies import Direction, PolicyKind
from netfence.model.ports import Protocol

World = Callable[..., Cluster]


def policy(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def chain(table: Table, name: str) -> list[str]:
    return [r.render().strip() for c in table.chains if c.name == name for r in c.rules]


def sets(table: Table) -> dict[str, tuple[str, ...]]:
    return {s.name: s.elements for s in table.sets}


def test_unselected_pods_get_no_map_entry_and_selected_ones_jump_to_their_chain(cluster: World) -> None:
    c = cluster(
        namespace("x"),
        pod("x", "a", {"app": "a"}, "10.0.0.1", nodeName="n1"),
        pod("x", "b", {"app": "b"}, "10.0.0.2", nodeName="n1"),
        policy("x", "p", {"podSelector": {"matchLabels": {"app": "a"}}}),
    )
    table = compile_node(c.ruleset, "n1")
    ingress, egress = table.maps
    assert ingress.elements == ((interface_name(EndpointId("x/a")), "in_c0_t0"),)
    assert egress.elements == ()
    assert chain(table, "in_c0_t0") == ['counter drop comment "default: isolated, no rule allowed"']


def test_only_the_nodes_own_pods_are_in_its_maps(cluster: World) -> None:
    c = cluster(
        namespace("x"),
        pod("x", "a", {}, "10.0.0.1", nodeName="n1"),
        pod("x", "b", {}, "10.0.0.2", nodeName="n2"),
        policy("x", "deny", {"podSelector": {}}),
    )
    assert [i for i, _ in compile_node(c.ruleset, "n2").maps[0].elements] == [interface_name(EndpointId("x/b"))]


def test_rules_grow_with_policies_not_with_pods(cluster: World) -> None:
    pods = [pod("x", f"web-{i}", {"app": "web"}, f"10.0.1.{i + 1}", nodeName="n1") for i in range(50)]
    allow = policy("x", "allow", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 80}]}]})
    c = cluster(namespace("x"), *pods, allow)
    table = compile_node(c.ruleset, "n1")
    assert len(table.maps[0].elements) == 50
    policy_chains = [ch for ch in table.chains if ch.hook is None]
    assert [ch.name for ch in policy_chains] == ["in_c0_t0"]
    assert sum(len(ch.rules) for ch in policy_chains) == 2  # the allow rule and the end of tier
    (peer_set,) = table.sets
    assert peer_set.elements == ("10.0.1.1-10.0.1.50",)  # contiguous pod IPs merge into one range


def test_ip_block_except_is_subtracted_and_pod_ips_join_the_same_set(cluster: World) -> None:
    spec = {
        "podSelector": {"matchLabels": {"app": "a"}},
        "ingress": [{"from": [{"ipBlock": {"cidr": "10.1.0.0/16", "except": ["10.1.128.0/17"]}}, {"podSelector": {"matchLabels": {"app": "b"}}}]}],
    }
    c = cluster(namespace("x"), pod("x", "a", {"app": "a"}, "10.0.0.1"), pod("x", "b", {"app": "b"}, "10.0.0.2"), policy("x", "p", spec))
    table = compile_node(c.ruleset, None)
    assert list(sets(table).values()) == [("10.0.0.2", "10.1.0.0/17")]
    (rule, end) = chain(table, "in_c0_t0")
    assert rule.startswith("ip saddr @in_") and " counter accept " in rule


def test_egress_allow_returns_so_the_destinations_ingress_still_runs(cluster: World) -> None:
    spec = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 8000, "endPort": 8100}]}]}
    c = cluster(namespace("x"), pod("x", "a", {}, "10.0.0.1"), policy("x", "p", spec))
    table = compile_node(c.ruleset, None)
    assert chain(table, "eg_c0_t0") == [
        'meta l4proto tcp th dport { 8000-8100 } counter return comment "NetworkPolicy x/p egress[0]"',
        'meta l4proto udp th dport { 53 } counter return comment "NetworkPolicy x/p egress[0]"',
        'counter drop comment "default: isolated, no rule allowed"',
    ]


def test_named_port_on_ingress_resolves_per_pod_class(cluster: World) -> None:
    spec = {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]}
    c = cluster(
        namespace("x"),
        pod("x", "old", {}, "10.0.0.1", ports=[("http", 80, "TCP")]),
        pod("x", "new", {}, "10.0.0.2", ports=[("http", 8080, "TCP")]),
        policy("x", "p", spec),
    )
    table = compile_node(c.ruleset, None)
    by_pod = dict(table.maps[0].elements)
    assert chain(table, by_pod[interface_name(EndpointId("x/old"))])[0].startswith("meta l4proto tcp th dport { 80 } ")
    assert chain(table, by_pod[interface_name(EndpointId("x/new"))])[0].startswith("meta l4proto tcp th dport { 8080 } ")


def test_named_port_on_egress_splits_destinations_by_resolved_number(cluster: World) -> None:
    spec = {"podSelector": {"matchLabels": {"role": "client"}}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": "http"}]}]}
    c = cluster(
        namespace("x"),
        pod("x", "client", {"role": "client"}, "10.0.0.9", ports=[]),
        pod("x", "old", {}, "10.0.0.1", ports=[("http", 80, "TCP")]),
        pod("x", "new", {}, "10.0.0.2", ports=[("http", 8080, "TCP")]),
        policy("x", "p", spec),
    )
    table = compile_node(c.ruleset, None)
    rules = chain(table, "eg_c0_t0")
    named = {r.split("@")[1].split()[0]: r.split("dport ")[1].strip("{ ").split()[0] for r in rules if "@" in r}
    assert sorted((sets(table)[name], port) for name, port in named.items()) == [(("10.0.0.1",), "80"), (("10.0.0.2",), "8080")]


def test_comments_cannot_carry_nft_syntax() -> None:
    assert comment('x"; flush ruleset; {\n}') == 'comment "x__ flush ruleset_ ___"'
    assert len(comment("a" * 500)) == len('comment ""') + 128


def _ref(name: str, index: int) -> RuleRef:
    return RuleRef(PolicyRef(PolicyKind.NETWORK_POLICY, None, name), Direction.INGRESS, index)


def test_tiers_chain_with_goto_and_deny_and_pass_verdicts() -> None:
    a = EndpointInfo(EndpointId("x/a"), "x", "a", (ip_address("10.0.0.1"),), "n1")
    b = EndpointInfo(EndpointId("x/b"), "x", "b", (ip_address("10.0.0.2"),), "n1")
    peer_b = (PeerMatch(0, frozenset({b.id})),)
    admin = PolicyRules(
        PolicyRef(PolicyKind.NETWORK_POLICY, None, "admin"),
        frozenset({a.id}),
        (
            Rule(_ref("admin", 0), Action.DENY, (PeerMatch(0, blocks=(CidrBlock(ip_network("192.0.2.0/24")),)),), None),
            Rule(_ref("admin", 1), Action.PASS, peer_b, (PortMatch(0, Protocol.TCP, 80, 80),)),
        ),
    )
    namespaced = PolicyRules(PolicyRef(PolicyKind.NETWORK_POLICY, "x", "np"), frozenset({a.id}), (Rule(_ref("np", 0), Action.ALLOW, peer_b, None),))
    ruleset = Ruleset((a, b), ingress=(Tier("admin", (admin,), None), Tier("networkpolicy", (namespaced,), Action.DENY)), egress=())
    table = compile_node(ruleset, "n1")
    admin_rules = chain(table, "in_c0_t0")
    assert admin_rules[0].endswith('counter drop comment "NetworkPolicy admin ingress[0]"')
    assert " counter goto in_c0_t1 " in admin_rules[1]
    assert admin_rules[2] == "goto in_c0_t1"
    assert chain(table, "in_c0_t1")[-1] == 'counter drop comment "networkpolicy: isolated, no rule allowed"'


def test_render_is_deterministic(cluster: World) -> None:
    objects = [namespace("x"), pod("x", "a", {"app": "a"}, "10.0.0.1"), pod("x", "b", {"app": "b"}, "10.0.0.2")]
    spec = {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}], "egress": [{"to": [{"namespaceSelector": {}}]}]}
    first = compile_node(cluster(*objects, policy("x", "p", spec)).ruleset, None).replace_script()
    second = compile_node(cluster(*reversed(objects), policy("x", "p", spec)).ruleset, None).replace_script()
    assert first == second


def test_membership_changes_become_element_updates_and_rule_changes_a_replacement(cluster: World) -> None:
    from netfence.dataplane.nft.objects import update_script

    allow = policy("x", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]})
    base = [namespace("x"), pod("x", "a", {"app": "a"}, "10.0.0.1", nodeName="n1"), pod("x", "b", {"app": "b"}, "10.0.0.2", nodeName="n1")]
    before = compile_node(cluster(*base, allow).ruleset, "n1")
    assert update_script(before, before) == ""
    more = compile_node(cluster(*base, pod("x", "b2", {"app": "b"}, "10.0.0.3", nodeName="n2"), allow).ruleset, "n1")
    script = update_script(before, more)
    assert script is not None
    (set_name,) = [s.name for s in more.sets]
    assert script.splitlines() == [f"flush set inet netfence {set_name}", f"add element inet netfence {set_name} {{ 10.0.0.2/31 }}"]
    new_local = compile_node(cluster(*base, pod("x", "a2", {"app": "a"}, "10.0.0.4", nodeName="n1"), allow).ruleset, "n1")
    assert update_script(before, new_local) == (
        f'add element inet netfence ingress_ep {{ "{interface_name(EndpointId("x/a2"))}" : jump in_c0_t0 }}\n'
    )
    ported = policy("x", "p", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"ports": [{"port": 81}]}]})
    assert update_script(before, compile_node(cluster(*base, ported).ruleset, "n1")) is None


def test_a_port_name_in_two_containers_resolves_to_the_first_number_as_in_the_analysis(cluster: World) -> None:
    twice = pod("x", "twice", {}, "10.0.0.1", ports=[("http", 80, "TCP")])
    twice["spec"]["containers"].append({"name": "sidecar", "image": "envoy", "ports": [{"name": "http", "containerPort": 8080}]})
    c = cluster(
        namespace("x"), twice, policy("x", "p", {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]})
    )
    endpoint = c.ruleset.endpoint(EndpointId("x/twice"))
    assert endpoint is not None and endpoint.resolve_port("http", Protocol.TCP) == 80
    table = compile_node(c.ruleset, None)
    by_pod = dict(table.maps[0].elements)
    assert chain(table, by_pod[interface_name(EndpointId("x/twice"))])[0].startswith("meta l4proto tcp th dport { 80 } ")


def calico(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def source_port_pods() -> list[dict[str, Any]]:
    return [
        namespace("x"),
        pod("x", "server", {"role": "server"}, "10.0.0.1", nodeName="n1"),
        pod("x", "a", {"role": "client"}, "10.0.0.2", nodeName="n1", ports=[("src", 40000, "TCP")]),
        pod("x", "b", {"role": "client"}, "10.0.0.3", nodeName="n2", ports=[("src", 41000, "TCP")]),
        pod("x", "c", {"role": "client"}, "10.0.0.4", nodeName="n2", ports=[("src", 53, "UDP")]),
    ]


def test_a_named_source_port_on_ingress_is_an_address_port_set_of_the_peers_declaring_it(cluster: World) -> None:
    spec = {
        "selector": "role == 'server'",
        "ingress": [
            {"action": "Allow", "protocol": "TCP", "source": {"selector": "role == 'client'", "ports": ["src", 8000]}},
            {"action": "Allow", "source": {"notPorts": ["src"]}},
        ],
    }
    table = compile_node(cluster(*source_port_pods(), calico("x", "p", spec)).ruleset, "n1")
    rules = chain(table, "in_c0_t0")
    assert [r.split(" counter")[0].split("@")[-1].split(" ", 1)[-1] for r in rules[:2]] == [
        "meta l4proto tcp th sport { 8000 }",
        "meta l4proto tcp ip saddr . th sport { 10.0.0.2 . 40000, 10.0.0.3 . 41000 }",
    ]
    # Without a protocol each pair keeps its own; IPv6 has no such source, so excludes nothing.
    assert rules[2].startswith(
        "meta nfproto ipv4 meta l4proto . ip saddr . th sport != { tcp . 10.0.0.2 . 40000, tcp . 10.0.0.3 . 41000, "
        "udp . 10.0.0.4 . 53 } counter accept"
    )
    assert rules[3].startswith("meta nfproto ipv6 counter accept")
    assert not any("{  }" in r for r in rules)


def test_a_named_source_port_on_egress_resolves_on_the_nodes_own_pods(cluster: World) -> None:
    spec = {
        "selector": "role == 'client'",
        "types": ["Egress"],
        "egress": [{"action": "Allow", "protocol": "TCP", "source": {"ports": ["src"]}}],
    }
    c = cluster(*source_port_pods(), calico("x", "p", spec))
    assert chain(compile_node(c.ruleset, "n1"), "eg_c0_t0")[0].startswith(
        "meta nfproto ipv4 meta l4proto tcp ip saddr . th sport { 10.0.0.2 . 40000 } counter return"
    )
    assert chain(compile_node(c.ruleset, "n2"), "eg_c0_t0")[0].startswith(
        "meta nfproto ipv4 meta l4proto tcp ip saddr . th sport { 10.0.0.3 . 41000 } counter return"
    )
