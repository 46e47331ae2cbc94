"""AdminNetworkPolicy, BaselineAdminNetworkPolicy and ClusterNetworkPolicy semantics, and how they
meet NetworkPolicy and Calico tiers: one documented behaviour per test.

Each test loads a few objects through the real loader, builds the ruleset, and asks for flows:
the verdict, the deciding rule and tier, and (through `flow`) the matrix engine's agreement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from clusters import Cluster, namespace, pod

from netfence.analysis.verdict import Reason, SideVerdict, Verdict

World = Callable[..., Cluster]

NPA, NPA2, V3 = "policy.networking.k8s.io/v1alpha1", "policy.networking.k8s.io/v1alpha2", "projectcalico.org/v3"
ADMIN, BASELINE = "kube-admin", "kube-baseline"


def base() -> list[dict[str, Any]]:
    return [
        namespace("a1", {"team": "a"}),
        namespace("a2", {"team": "a"}),
        namespace("b", {"team": "b"}),
        pod("a1", "api", {"app": "api"}, "10.0.1.1"),
        pod("a1", "db", {"app": "db"}, "10.0.1.2", ports=[("postgres", 5432, "TCP")]),
        pod("a1", "web", {"app": "web"}, "10.0.1.3"),
        pod("a1", "scanner", {"app": "scanner"}, "10.0.1.4"),
        pod("a2", "api", {"app": "api"}, "10.0.2.1"),
        pod("b", "untrusted", {"env": "untrusted"}, "10.0.3.1"),
        pod("b", "scanner", {"app": "scanner"}, "10.0.3.2"),
    ]


# --- objects ----------------------------------------------------------------------------------


def labels(**match: str) -> dict[str, Any]:
    return {"matchLabels": match} if match else {}


def namespaces(**match: str) -> dict[str, Any]:
    """A subject or peer: every pod of the namespaces with these labels ({}: all)."""
    return {"namespaces": labels(**match)}


def pods(pod_labels: dict[str, str], namespace_labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"pods": {"namespaceSelector": labels(**(namespace_labels or {})), "podSelector": labels(**pod_labels)}}


def rule(action: str, peers: Sequence[dict[str, Any]], name: str | None = None, *, to: bool = False, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"action": action, ("to" if to else "from"): list(peers), **fields}
    if name:
        body["name"] = name
    return body


def anp(name: str, priority: int, subject: dict[str, Any], *, ingress: Sequence[Any] = (), egress: Sequence[Any] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {"priority": priority, "subject": subject}
    if ingress:
        spec["ingress"] = list(ingress)
    if egress:
        spec["egress"] = list(egress)
    return {"apiVersion": NPA, "kind": "AdminNetworkPolicy", "metadata": {"name": name}, "spec": spec}


def banp(subject: dict[str, Any], *, ingress: Sequence[Any] = (), egress: Sequence[Any] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {"subject": subject}
    if ingress:
        spec["ingress"] = list(ingress)
    if egress:
        spec["egress"] = list(egress)
    return {"apiVersion": NPA, "kind": "BaselineAdminNetworkPolicy", "metadata": {"name": "default"}, "spec": spec}


def cluster_np(
    name: str, tier_name: str, priority: int, subject: dict[str, Any], *, ingress: Sequence[Any] = (), egress: Sequence[Any] = ()
) -> dict[str, Any]:
    spec: dict[str, Any] = {"tier": tier_name, "priority": priority, "subject": subject}
    if ingress:
        spec["ingress"] = list(ingress)
    if egress:
        spec["egress"] = list(egress)
    return {"apiVersion": NPA2, "kind": "ClusterNetworkPolicy", "metadata": {"name": name}, "spec": spec}


def k8s_np(namespace_: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace_}, "spec": spec}


def allow_from_app(namespace_: str, name: str, target: str, peer: str, ports: Sequence[int] = ()) -> dict[str, Any]:
    """A NetworkPolicy selecting app=target and allowing ingress from app=peer of its namespace."""
    ingress: dict[str, Any] = {"from": [{"podSelector": {"matchLabels": {"app": peer}}}]}
    if ports:
        ingress["ports"] = [{"port": p} for p in ports]
    return k8s_np(namespace_, name, {"podSelector": {"matchLabels": {"app": target}}, "ingress": [ingress]})


def node(name: str, node_labels: dict[str, str], address: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": node_labels},
        "status": {"addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}]},
    }


# --- questions --------------------------------------------------------------------------------


def flow(c: Cluster, src: str, dst: str, port: str = "80/TCP") -> Verdict:
    """The verdict of one flow; `Cluster.allowed` checks compute_matrix agrees when both are endpoints."""
    verdict = c.verdict(src, dst, port)
    assert c.allowed(src, dst, port) == verdict.allowed
    return verdict


def ingress(c: Cluster, src: str, dst: str, port: str = "80/TCP") -> SideVerdict:
    return flow(c, src, dst, port).ingress


def egress(c: Cluster, src: str, dst: str, port: str = "80/TCP") -> SideVerdict:
    return flow(c, src, dst, port).egress


def by_rule(side: SideVerdict, rule_ref: str, tier_name: str, allowed: bool) -> None:
    """`side` was decided by the rule `rule_ref` (its str) of tier `tier_name`."""
    assert (side.reason, str(side.rule), side.tier, side.allowed) == (Reason.RULE, rule_ref, tier_name, allowed)


def isolated(side: SideVerdict, tier_name: str = "default") -> None:
    """No rule matched in a tier with an end-of-tier deny that selects the endpoint."""
    assert (side.reason, side.rule, side.tier, side.allowed) == (Reason.ISOLATED, None, tier_name, False)


def unrestricted(side: SideVerdict) -> None:
    """No tier decided: a pod is allowed."""
    assert (side.reason, side.rule, side.tier, side.allowed) == (Reason.NOT_ISOLATED, None, None, True)


# --- 3.3 priority and rule order --------------------------------------------------------------


@pytest.mark.parametrize(("allow_priority", "deny_priority"), [(5, 10), (10, 5)])
def test_the_lower_priority_number_is_evaluated_first(cluster: World, allow_priority: int, deny_priority: int) -> None:
    c = cluster(
        *base(),
        anp("allow-b", allow_priority, namespaces(team="a"), ingress=[rule("Allow", [namespaces(team="b")])]),
        anp("deny-b", deny_priority, namespaces(team="a"), ingress=[rule("Deny", [namespaces(team="b")])]),
    )
    side = ingress(c, "b/untrusted", "a1/web")
    if allow_priority < deny_priority:
        by_rule(side, "AdminNetworkPolicy allow-b ingress[0]", ADMIN, True)
    else:
        by_rule(side, "AdminNetworkPolicy deny-b ingress[0]", ADMIN, False)


def test_rules_of_one_policy_are_evaluated_in_written_order(cluster: World) -> None:
    rules = [rule("Allow", [pods({"app": "scanner"})], "allow-scanners"), rule("Deny", [namespaces(team="b")], "deny-b")]
    c = cluster(*base(), anp("p", 10, namespaces(team="a"), ingress=rules))
    side = ingress(c, "b/scanner", "a1/web")
    by_rule(side, 'AdminNetworkPolicy p ingress[0] "allow-scanners"', ADMIN, True)
    assert side.rule is not None and side.rule.rule_name == "allow-scanners"
    by_rule(ingress(c, "b/untrusted", "a1/web"), 'AdminNetworkPolicy p ingress[1] "deny-b"', ADMIN, False)


def test_an_admin_allow_cannot_be_overridden_by_network_policy(cluster: World) -> None:
    deny_all = k8s_np("a1", "deny-all", {"podSelector": {}, "policyTypes": ["Ingress"]})
    c = cluster(*base(), deny_all, anp("p", 10, namespaces(team="a"), ingress=[rule("Allow", [namespaces(team="b")])]))
    by_rule(ingress(c, "b/untrusted", "a1/web"), "AdminNetworkPolicy p ingress[0]", ADMIN, True)
    isolated(ingress(c, "a2/api", "a1/web"))


def test_an_admin_deny_overrides_network_policy_allow(cluster: World) -> None:
    allow_all = k8s_np("a1", "allow-all", {"podSelector": {}, "ingress": [{}]})
    c = cluster(*base(), allow_all, anp("p", 10, namespaces(team="a"), ingress=[rule("Deny", [namespaces(team="b")])]))
    by_rule(ingress(c, "b/untrusted", "a1/web"), "AdminNetworkPolicy p ingress[0]", ADMIN, False)
    by_rule(ingress(c, "a2/api", "a1/web"), "NetworkPolicy a1/allow-all ingress[0]", "default", True)


def test_an_admin_policy_has_no_isolation_effect(cluster: World) -> None:
    c = cluster(*base(), anp("p", 10, namespaces(team="a"), ingress=[rule("Deny", [namespaces(team="b")])]))
    side = ingress(c, "a2/api", "a1/web")
    unrestricted(side)
    assert [str(p) for p in side.policies] == ["AdminNetworkPolicy p"]


def test_pass_hands_the_flow_to_network_policy(cluster: World) -> None:
    objects = [
        anp("p", 10, namespaces(team="a"), ingress=[rule("Pass", [namespaces(team="b")])]),
        anp("deny-b", 20, namespaces(team="a"), ingress=[rule("Deny", [namespaces(team="b")])]),
        k8s_np("a1", "web-from-b", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "b"}}}], "ports": [{"port": 80}]}]}),
    ]
    c = cluster(*base(), *objects)
    by_rule(ingress(c, "b/untrusted", "a1/web", "80/TCP"), "NetworkPolicy a1/web-from-b ingress[0]", "default", True)
    isolated(ingress(c, "b/untrusted", "a1/web", "443/TCP"))  # deny-b (lower precedence) is skipped
    unrestricted(ingress(c, "b/untrusted", "a1/api"))  # nothing after the Pass selects a1/api


def test_network_policy_isolation_is_decided_before_the_baseline(cluster: World) -> None:
    c = cluster(*base(), allow_from_app("a1", "web-from-api", "web", "api"), banp(namespaces(), ingress=[rule("Allow", [namespaces()])]))
    by_rule(ingress(c, "a1/api", "a1/web"), "NetworkPolicy a1/web-from-api ingress[0]", "default", True)
    isolated(ingress(c, "b/untrusted", "a1/web"))  # the baseline's Allow is never consulted


def test_the_baseline_decides_only_for_pods_no_network_policy_selects(cluster: World) -> None:
    c = cluster(*base(), allow_from_app("a1", "db-from-api", "db", "api"), banp(namespaces(), ingress=[rule("Deny", [namespaces()], "deny-all")]))
    by_rule(ingress(c, "a1/api", "a1/db"), "NetworkPolicy a1/db-from-api ingress[0]", "default", True)
    by_rule(ingress(c, "a1/api", "a1/web"), 'BaselineAdminNetworkPolicy default ingress[0] "deny-all"', BASELINE, False)


def test_baseline_rules_are_evaluated_in_written_order(cluster: World) -> None:
    rules = [rule("Allow", [pods({"app": "api"})]), rule("Deny", [namespaces()])]
    c = cluster(*base(), banp(namespaces(team="a"), ingress=rules))
    by_rule(ingress(c, "a2/api", "a1/web"), "BaselineAdminNetworkPolicy default ingress[0]", BASELINE, True)
    by_rule(ingress(c, "b/untrusted", "a1/web"), "BaselineAdminNetworkPolicy default ingress[1]", BASELINE, False)
    unrestricted(ingress(c, "a1/web", "b/untrusted"))  # b is not a subject


def test_the_baseline_egress_rules_decide_for_pods_no_egress_network_policy_selects(cluster: World) -> None:
    objects = [
        banp(namespaces(team="a"), egress=[rule("Allow", [namespaces(team="a")], to=True), rule("Deny", [{"networks": ["0.0.0.0/0"]}], to=True)]),
        k8s_np("a2", "api-out", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}]}]}),
    ]
    c = cluster(*base(), *objects)
    by_rule(egress(c, "a1/web", "a2/api"), "BaselineAdminNetworkPolicy default egress[0]", BASELINE, True)
    by_rule(egress(c, "a1/web", "b/untrusted"), "BaselineAdminNetworkPolicy default egress[1]", BASELINE, False)
    by_rule(egress(c, "a1/web", "198.51.100.1", "443/TCP"), "BaselineAdminNetworkPolicy default egress[1]", BASELINE, False)
    by_rule(egress(c, "a2/api", "198.51.100.1", "443/TCP"), "NetworkPolicy a2/api-out egress[0]", "default", True)
    isolated(egress(c, "a2/api", "a1/web"))


def test_a_flow_nothing_matched_is_allowed(cluster: World) -> None:
    objects = [
        anp("p", 10, namespaces(), ingress=[rule("Deny", [namespaces(team="nobody")])]),
        banp(namespaces(), ingress=[rule("Deny", [pods({"app": "nobody"})])]),
    ]
    c = cluster(*base(), *objects)
    side = ingress(c, "b/untrusted", "a1/web")
    unrestricted(side)
    assert [str(p) for p in side.policies] == ["AdminNetworkPolicy p", "BaselineAdminNetworkPolicy default"]


def test_each_direction_is_evaluated_separately(cluster: World) -> None:
    objects = [
        anp("into-a", 10, namespaces(team="a"), ingress=[rule("Allow", [namespaces(team="b")])]),
        anp("out-of-b", 20, namespaces(team="b"), egress=[rule("Deny", [namespaces(team="a")], to=True)]),
    ]
    c = cluster(*base(), *objects)
    verdict = flow(c, "b/untrusted", "a1/web")
    by_rule(verdict.ingress, "AdminNetworkPolicy into-a ingress[0]", ADMIN, True)
    by_rule(verdict.egress, "AdminNetworkPolicy out-of-b egress[0]", ADMIN, False)
    assert not verdict.allowed


def test_a_pod_reaching_itself_is_allowed_whatever_admin_policies_say(cluster: World) -> None:
    c = cluster(*base(), anp("p", 1, namespaces(), ingress=[rule("Deny", [namespaces()])], egress=[rule("Deny", [namespaces()], to=True)]))
    verdict = flow(c, "a1/web", "a1/web")
    assert verdict.allowed and verdict.ingress.reason is Reason.SELF


# --- 3.1 subjects -----------------------------------------------------------------------------


def test_a_namespaces_subject_selects_every_pod_of_the_matching_namespaces(cluster: World) -> None:
    c = cluster(*base(), anp("p", 10, namespaces(team="a"), ingress=[rule("Deny", [namespaces(team="b")])]))
    for target in ("a1/api", "a1/web", "a2/api"):
        by_rule(ingress(c, "b/untrusted", target), "AdminNetworkPolicy p ingress[0]", ADMIN, False)
    unrestricted(ingress(c, "b/untrusted", "b/scanner"))


def test_a_pods_subject_ands_its_namespace_and_pod_selectors(cluster: World) -> None:
    c = cluster(*base(), anp("p", 10, pods({"app": "api"}, {"team": "a"}), ingress=[rule("Deny", [namespaces(team="b")])]))
    by_rule(ingress(c, "b/untrusted", "a1/api"), "AdminNetworkPolicy p ingress[0]", ADMIN, False)
    by_rule(ingress(c, "b/untrusted", "a2/api"), "AdminNetworkPolicy p ingress[0]", ADMIN, False)
    unrestricted(ingress(c, "b/untrusted", "a1/web"))


def test_host_network_pods_are_never_subjects_nor_namespace_or_pod_peers(cluster: World) -> None:
    objects = [*base(), pod("a1", "agent", {"app": "api"}, "192.168.0.20", hostNetwork=True)]
    c = cluster(
        *objects,
        anp("p", 10, namespaces(), ingress=[rule("Deny", [namespaces()])]),
        anp("q", 20, namespaces(team="b"), egress=[rule("Deny", [pods({"app": "api"})], to=True)]),
    )
    assert flow(c, "b/untrusted", "a1/agent").ingress.reason is Reason.NOT_AN_ENDPOINT
    unrestricted(egress(c, "b/untrusted", "a1/agent"))
    by_rule(egress(c, "b/untrusted", "a1/api"), "AdminNetworkPolicy q egress[0]", ADMIN, False)
    unrestricted(ingress(c, "a1/agent", "a1/web"))  # as a source, too, it is only its node's address
    assert flow(c, "a1/agent", "a1/web").egress.reason is Reason.NOT_AN_ENDPOINT
    by_rule(ingress(c, "a1/api", "a1/web"), "AdminNetworkPolicy p ingress[0]", ADMIN, False)


# --- 3.2 peers --------------------------------------------------------------------------------


def test_a_pods_peer_ands_its_namespace_and_pod_selectors(cluster: World) -> None:
    c = cluster(*base(), anp("p", 10, namespaces(team="a"), ingress=[rule("Deny", [pods({"app": "scanner"}, {"team": "b"})])]))
    by_rule(ingress(c, "b/scanner", "a1/web"), "AdminNetworkPolicy p ingress[0]", ADMIN, False)
    unrestricted(ingress(c, "a1/scanner", "a1/web"))
    unrestricted(ingress(c, "b/untrusted", "a1/web"))


def test_a_networks_peer_matches_pod_addresses_too(cluster: World) -> None:
    rules = [rule("Allow", [{"networks": ["10.0.1.0/24"]}], to=True), rule("Deny", [{"networks": ["0.0.0.0/0"]}], to=True)]
    c = cluster(*base(), anp("p", 10, namespaces(team="a"), egress=rules))
    by_rule(egress(c, "a1/web", "a1/db", "5432/TCP"), "AdminNetworkPolicy p egress[0]", ADMIN, True)
    by_rule(egress(c, "a1/web", "b/untrusted"), "AdminNetworkPolicy p egress[1]", ADMIN, False)
    by_rule(egress(c, "a1/web", "198.51.100.1", "443/TCP"), "AdminNetworkPolicy p egress[1]", ADMIN, False)


def test_a_nodes_peer_matches_the_addresses_of_matching_nodes(cluster: World) -> None:
    objects = [
        *base(),
        node("worker-1", {"role": "worker"}, "192.168.0.20"),
        node("control-1", {"role": "control"}, "192.168.0.30"),
        pod("a1", "agent", {}, "192.168.0.20", hostNetwork=True),
    ]
    c = cluster(*objects, anp("p", 10, namespaces(team="a"), egress=[rule("Deny", [{"nodes": labels(role="worker")}], to=True)]))
    by_rule(egress(c, "a1/web", "192.168.0.20", "10250/TCP"), "AdminNetworkPolicy p egress[0]", ADMIN, False)
    by_rule(egress(c, "a1/web", "a1/agent"), "AdminNetworkPolicy p egress[0]", ADMIN, False)  # a hostNetwork pod is its node
    unrestricted(egress(c, "a1/web", "192.168.0.30", "6443/TCP"))
    unrestricted(egress(c, "a1/web", "a1/db"))
    c = cluster(*objects, anp("p", 10, namespaces(team="a"), egress=[rule("Deny", [{"nodes": {}}], to=True)]))
    by_rule(egress(c, "a1/web", "192.168.0.30", "6443/TCP"), "AdminNetworkPolicy p egress[0]", ADMIN, False)


def test_a_domain_names_peer_never_matches(cluster: World) -> None:
    rules = [rule("Allow", [{"domainNames": ["*.example.com", "example.com"]}], to=True), rule("Deny", [{"networks": ["0.0.0.0/0"]}], to=True)]
    c = cluster(*base(), anp("p", 10, namespaces(team="a"), egress=rules))
    by_rule(egress(c, "a1/web", "93.184.215.14", "443/TCP"), "AdminNetworkPolicy p egress[1]", ADMIN, False)
    by_rule(egress(c, "a1/web", "b/untrusted", "443/TCP"), "AdminNetworkPolicy p egress[1]", ADMIN, False)


def test_an_allow_rule_with_a_peer_of_a_newer_api_matches_nothing(cluster: World) -> None:
    future = {"serviceAccounts": {"matchLabels": {"team": "b"}}}
    c = cluster(
        *base(),
        anp("p", 10, namespaces(team="a"), ingress=[rule("Allow", [namespaces(team="b"), future])]),
        banp(namespaces(), ingress=[rule("Deny", [namespaces()])]),
    )
    # The whole rule fails closed, its known peers with it.
    by_rule(ingress(c, "b/untrusted", "a1/web"), "BaselineAdminNetworkPolicy default ingress[0]", BASELINE, False)


@pytest.mark.parametrize("action", ["Deny", "Pass"])
def test_a_deny_or_pass_rule_with_a_peer_of_a_newer_api_denies_everything(cluster: World, action: str) -> None:
    future = {"serviceAccounts": {"matchLabels": {"team": "b"}}}
    c = cluster(
        *base(),
        anp("p", 10, namespaces(team="a"), ingress=[rule(action, [future], ports=[{"portNumber": {"port": 22}}])]),
        k8s_np("a1", "allow-all", {"podSelector": {}, "ingress": [{}]}),
    )
    for src, port in (("a2/api", "80/TCP"), ("b/untrusted", "53/UDP"), ("a1/api", "ICMP")):
        by_rule(ingress(c, src, "a1/web", port), "AdminNetworkPolicy p ingress[0]", ADMIN, False)
    unrestricted(ingress(c, "a1/web", "b/untrusted"))  # only the subject is affected


# --- 3.2 ports --------------------------------------------------------------------------------


def test_a_port_number_is_tcp_unless_it_says_otherwise(cluster: World) -> None:
    ports = [{"portNumber": {"port": 80}}, {"portNumber": {"protocol": "UDP", "port": 53}}]
    c = cluster(*base(), anp("p", 10, namespaces(team="a"), ingress=[rule("Deny", [namespaces()], ports=ports)]))
    by_rule(ingress(c, "b/untrusted", "a1/web", "80/TCP"), "AdminNetworkPolicy p ingress[0]", ADMIN, False)
    assert ingress(c, "b/untrusted", "a1/web", "53/UDP").port_index == 1
    for port in ("80/UDP", "53/TCP", "81/TCP", "80/SCTP"):
        unrestricted(ingress(c, "b/untrusted", "a1/web", port))


def test_a_port_range_includes_both_ends(cluster: World) -> None:
    ports = [{"portRange": {"start": 8000, "end": 8080}}]
    c = cluster(*base(), anp("p", 10, namespaces(team="a"), ingress=[rule("Deny", [namespaces()], ports=ports)]))
    for port in ("8000/TCP", "8040/TCP", "8080/TCP"):
        by_rule(ingress(c, "b/untrusted", "a1/web", port), "AdminNetworkPolicy p ingress[0]", ADMIN, False)
    for port in ("7999/TCP", "8081/TCP", "8000/UDP"):
        unrestricted(ingress(c, "b/untrusted", "a1/web", port))


def named_ports() -> list[dict[str, Any]]:
    return [
        *base(),
        pod("a1", "dns", {"app": "dns"}, "10.0.1.53", ports=[("dns", 53, "UDP"), ("metrics", 9153, "TCP")]),
        pod("a2", "dns", {"app": "dns"}, "10.0.2.53", ports=[("dns", 5353, "UDP")]),
    ]


def test_a_named_port_in_an_ingress_rule_resolves_on_the_subject_pod_with_its_protocol(cluster: World) -> None:
    c = cluster(*named_ports(), anp("p", 10, namespaces(team="a"), ingress=[rule("Deny", [namespaces()], ports=[{"namedPort": "dns"}])]))
    by_rule(ingress(c, "b/untrusted", "a1/dns", "53/UDP"), "AdminNetworkPolicy p ingress[0]", ADMIN, False)
    by_rule(ingress(c, "b/untrusted", "a2/dns", "5353/UDP"), "AdminNetworkPolicy p ingress[0]", ADMIN, False)
    unrestricted(ingress(c, "b/untrusted", "a1/dns", "53/TCP"))
    unrestricted(ingress(c, "b/untrusted", "a2/dns", "53/UDP"))
    unrestricted(ingress(c, "b/untrusted", "a1/web", "53/UDP"))  # a1/web has no port named dns


def test_a_named_port_in_an_egress_rule_resolves_on_the_peer_pod(cluster: World) -> None:
    c = cluster(*named_ports(), anp("p", 10, namespaces(team="b"), egress=[rule("Deny", [namespaces()], to=True, ports=[{"namedPort": "dns"}])]))
    by_rule(egress(c, "b/untrusted", "a1/dns", "53/UDP"), "AdminNetworkPolicy p egress[0]", ADMIN, False)
    by_rule(egress(c, "b/untrusted", "a2/dns", "5353/UDP"), "AdminNetworkPolicy p egress[0]", ADMIN, False)
    unrestricted(egress(c, "b/untrusted", "a2/dns", "53/UDP"))


def test_rules_with_ports_never_match_icmp_and_rules_without_match_every_protocol(cluster: World) -> None:
    rules = [rule("Deny", [namespaces(team="b")], ports=[{"portRange": {"protocol": "TCP", "start": 1, "end": 65535}}]), rule("Allow", [namespaces(team="b")])]
    c = cluster(*base(), anp("p", 10, namespaces(team="a"), ingress=rules), banp(namespaces(), ingress=[rule("Deny", [namespaces()])]))
    by_rule(ingress(c, "b/untrusted", "a1/web", "ICMP"), "AdminNetworkPolicy p ingress[1]", ADMIN, True)
    by_rule(ingress(c, "b/untrusted", "a1/web", "53/UDP"), "AdminNetworkPolicy p ingress[1]", ADMIN, True)
    by_rule(ingress(c, "b/untrusted", "a1/web", "22/TCP"), "AdminNetworkPolicy p ingress[0]", ADMIN, False)


# --- ClusterNetworkPolicy (v1alpha2) ----------------------------------------------------------


def test_an_admin_tier_cluster_network_policy_shares_the_admin_tier_by_priority_and_accept_allows(cluster: World) -> None:
    objects = [
        cluster_np("accept-b", "Admin", 5, namespaces(team="a"), ingress=[rule("Accept", [namespaces(team="b")], "accept-b")]),
        anp("deny-b", 10, namespaces(team="a"), ingress=[rule("Deny", [namespaces(team="b")])]),
        cluster_np("deny-a2", "Admin", 20, namespaces(team="a"), ingress=[rule("Deny", [namespaces(team="nobody")])]),
        k8s_np("a1", "deny-all", {"podSelector": {}, "policyTypes": ["Ingress"]}),
    ]
    c = cluster(*base(), *objects)
    by_rule(ingress(c, "b/untrusted", "a1/web"), 'ClusterNetworkPolicy accept-b ingress[0] "accept-b"', ADMIN, True)
    isolated(ingress(c, "a2/api", "a1/web"))
    assert [p.ref.name for p in c.ruleset.ingress[0].policies] == ["accept-b", "deny-b", "deny-a2"]


def test_a_baseline_tier_cluster_network_policy_runs_after_network_policy_by_priority(cluster: World) -> None:
    objects = [
        cluster_np("z-accept-api", "Baseline", 1, namespaces(), ingress=[rule("Accept", [pods({"app": "api"})])]),
        cluster_np("a-deny-all", "Baseline", 2, namespaces(), ingress=[rule("Deny", [namespaces()])]),
        allow_from_app("a1", "db-from-web", "db", "web"),
    ]
    c = cluster(*base(), *objects)
    by_rule(ingress(c, "a2/api", "a1/web"), "ClusterNetworkPolicy z-accept-api ingress[0]", BASELINE, True)
    by_rule(ingress(c, "b/untrusted", "a1/web"), "ClusterNetworkPolicy a-deny-all ingress[0]", BASELINE, False)
    isolated(ingress(c, "a2/api", "a1/db"))  # NetworkPolicy isolation comes first


def test_a_pass_in_the_baseline_tier_leaves_the_flow_allowed(cluster: World) -> None:
    objects = [
        cluster_np("pass-api", "Baseline", 1, namespaces(), ingress=[rule("Pass", [pods({"app": "api"})])]),
        cluster_np("deny-all", "Baseline", 2, namespaces(), ingress=[rule("Deny", [namespaces()])]),
    ]
    c = cluster(*base(), *objects)
    unrestricted(ingress(c, "a2/api", "a1/web"))
    by_rule(ingress(c, "b/untrusted", "a1/web"), "ClusterNetworkPolicy deny-all ingress[0]", BASELINE, False)


def test_cluster_network_policy_protocols_match_like_ports(cluster: World) -> None:
    protocols = [{"tcp": {"destinationPort": {"range": {"start": 80, "end": 90}}}}, {"udp": {"destinationPort": {"number": 53}}}]
    c = cluster(*base(), cluster_np("p", "Admin", 5, namespaces(team="a"), ingress=[rule("Deny", [namespaces(team="b")], protocols=protocols)]))
    for port in ("80/TCP", "90/TCP", "53/UDP"):
        by_rule(ingress(c, "b/untrusted", "a1/web", port), "ClusterNetworkPolicy p ingress[0]", ADMIN, False)
    for port in ("91/TCP", "53/TCP", "ICMP"):
        unrestricted(ingress(c, "b/untrusted", "a1/web", port))


# --- 4. one order for every kind --------------------------------------------------------------


def layered(with_baseline: bool = True) -> list[dict[str, Any]]:
    objects = [
        *base(),
        anp("same-team", 50, namespaces(team="a"), ingress=[rule("Pass", [namespaces(team="a")], "pass-same-team")]),
        anp("block-scanner", 60, namespaces(), ingress=[rule("Deny", [pods({"app": "scanner"})], "no-scanners")]),
        {"apiVersion": V3, "kind": "Tier", "metadata": {"name": "security"}, "spec": {"order": 2000}},
        {
            "apiVersion": V3,
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": "security.untrusted"},
            "spec": {
                "tier": "security",
                "selector": "all()",
                "types": ["Ingress"],
                "ingress": [{"action": "Deny", "source": {"selector": "env == 'untrusted'"}}, {"action": "Pass"}],
            },
        },
        allow_from_app("a1", "db-from-api", "db", "api", ports=[5432]),
    ]
    if with_baseline:
        objects.append(banp(namespaces(), ingress=[rule("Deny", [namespaces()], "deny-all")]))
    return objects


def test_worked_example_of_every_policy_kind_in_one_order(cluster: World) -> None:
    c = cluster(*layered())
    assert [t.name for t in c.ruleset.ingress] == [ADMIN, "security", "default", BASELINE]
    assert not c.ruleset.egress  # egress is open everywhere
    by_rule(ingress(c, "a1/api", "a1/db", "5432/TCP"), "NetworkPolicy a1/db-from-api ingress[0]", "default", True)
    assert flow(c, "a1/api", "a1/db", "5432/TCP").allowed
    isolated(ingress(c, "a1/web", "a1/db", "5432/TCP"))  # the baseline is never consulted
    baseline_deny = 'BaselineAdminNetworkPolicy default ingress[0] "deny-all"'
    by_rule(ingress(c, "a2/api", "a1/web"), baseline_deny, BASELINE, False)
    # same-team (priority 50) Passes the scanner of a team-a namespace before block-scanner (60).
    by_rule(ingress(c, "a1/scanner", "a1/web"), baseline_deny, BASELINE, False)
    by_rule(ingress(c, "b/scanner", "a1/web"), 'AdminNetworkPolicy block-scanner ingress[0] "no-scanners"', ADMIN, False)
    by_rule(ingress(c, "b/untrusted", "a1/api"), "GlobalNetworkPolicy security.untrusted ingress[0]", "security", False)


def test_worked_example_without_the_baseline_allows_what_nothing_decided(cluster: World) -> None:
    c = cluster(*layered(with_baseline=False))
    unrestricted(ingress(c, "a2/api", "a1/web"))
    assert flow(c, "a2/api", "a1/web").allowed
    isolated(ingress(c, "a1/web", "a1/db", "5432/TCP"))


def test_a_calico_tier_ordered_below_1000_runs_before_admin_policies(cluster: World) -> None:
    objects = [
        {"apiVersion": V3, "kind": "Tier", "metadata": {"name": "first"}, "spec": {"order": 500, "defaultAction": "Pass"}},
        {"apiVersion": V3, "kind": "GlobalNetworkPolicy", "metadata": {"name": "first.deny-b"}, "spec": {
            "tier": "first", "selector": "all()", "ingress": [{"action": "Deny", "source": {"namespaceSelector": "team == 'b'"}}],
        }},
        anp("allow-b", 10, namespaces(team="a"), ingress=[rule("Allow", [namespaces(team="b")])]),
    ]
    c = cluster(*base(), *objects)
    by_rule(ingress(c, "b/untrusted", "a1/web"), "GlobalNetworkPolicy first.deny-b ingress[0]", "first", False)
    assert [t.name for t in c.ruleset.ingress] == ["first", ADMIN]


def test_a_calico_tier_without_order_runs_after_the_baseline(cluster: World) -> None:
    objects = [
        {"apiVersion": V3, "kind": "Tier", "metadata": {"name": "last"}, "spec": {}},
        {"apiVersion": V3, "kind": "GlobalNetworkPolicy", "metadata": {"name": "last.deny-all"}, "spec": {
            "tier": "last", "selector": "all()", "ingress": [{"action": "Deny"}],
        }},
        banp(namespaces(), ingress=[rule("Allow", [namespaces(team="b")])]),
    ]
    c = cluster(*base(), *objects)
    by_rule(ingress(c, "b/untrusted", "a1/web"), "BaselineAdminNetworkPolicy default ingress[0]", BASELINE, True)
    by_rule(ingress(c, "a2/api", "a1/web"), "GlobalNetworkPolicy last.deny-all ingress[0]", "last", False)
    assert [t.name for t in c.ruleset.ingress] == [BASELINE, "last"]
