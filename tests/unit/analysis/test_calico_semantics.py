"""Calico NetworkPolicy and GlobalNetworkPolicy semantics, one documented behaviour per test.

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

V3, CRD = "projectcalico.org/v3", "crd.projectcalico.org/v1"
OUTSIDE = "203.0.113.9"


def base() -> list[dict[str, Any]]:
    return [
        namespace("dev", {"env": "dev"}),
        namespace("prod", {"env": "prod"}),
        pod("dev", "a", {"app": "a"}, "10.0.1.1"),
        pod("dev", "b", {"app": "b"}, "10.0.1.2"),
        pod("dev", "c", {"app": "c"}, "10.0.1.3"),
        pod("prod", "a", {"app": "a"}, "10.0.2.1"),
        pod("prod", "b", {"app": "b"}, "10.0.2.2"),
        pod("prod", "c", {"app": "c"}, "10.0.2.3"),
    ]


# --- objects ----------------------------------------------------------------------------------


def gnp(name: str, api: str = V3, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": api, "kind": "GlobalNetworkPolicy", "metadata": {"name": name}, "spec": spec}


def calico_np(namespace_: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": V3, "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace_}, "spec": spec}


def k8s_np(namespace_: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace_},
        "spec": spec,
    }


def tier(name: str, order: float | None = None, default_action: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if order is not None:
        spec["order"] = order
    if default_action is not None:
        spec["defaultAction"] = default_action
    return {"apiVersion": V3, "kind": "Tier", "metadata": {"name": name}, "spec": spec}


def global_set(name: str, labels: dict[str, str], nets: Sequence[str]) -> dict[str, Any]:
    return {
        "apiVersion": V3,
        "kind": "GlobalNetworkSet",
        "metadata": {"name": name, "labels": labels},
        "spec": {"nets": list(nets)},
    }


def network_set(namespace_: str, name: str, labels: dict[str, str], nets: Sequence[str]) -> dict[str, Any]:
    return {
        "apiVersion": V3,
        "kind": "NetworkSet",
        "metadata": {"name": name, "namespace": namespace_, "labels": labels},
        "spec": {"nets": list(nets)},
    }


def host_endpoint(
    name: str, labels: dict[str, str], ip: str, *, default_allow: bool = False, ports: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    spec: dict[str, Any] = {"node": "node-1", "interfaceName": "eth0", "expectedIPs": [ip]}
    if default_allow:
        spec["profiles"] = ["projectcalico-default-allow"]
    if ports:
        spec["ports"] = list(ports)
    return {"apiVersion": V3, "kind": "HostEndpoint", "metadata": {"name": name, "labels": labels}, "spec": spec}


def service_account(namespace_: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace_, "labels": labels}}


def service(namespace_: str, name: str, selector: dict[str, str], ports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace_},
        "spec": {"selector": selector, "ports": list(ports)},
    }


def rule(action: str, **fields: Any) -> dict[str, Any]:
    return {"action": action, **fields}


def source(**entity: Any) -> dict[str, Any]:
    return {"source": entity}


def destination(**entity: Any) -> dict[str, Any]:
    return {"destination": entity}


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


def by_rule(side: SideVerdict, rule_ref: str, tier_name: str = "default", allowed: bool = True) -> None:
    """`side` was decided by the rule `rule_ref` (its str) of tier `tier_name`."""
    assert (side.reason, str(side.rule), side.tier, side.allowed) == (Reason.RULE, rule_ref, tier_name, allowed)


def isolated(side: SideVerdict, tier_name: str = "default") -> None:
    """No rule matched in a tier that selects the endpoint: the end-of-tier deny."""
    assert (side.reason, side.rule, side.tier, side.allowed) == (Reason.ISOLATED, None, tier_name, False)


def unrestricted(side: SideVerdict, allowed: bool = True) -> None:
    """No tier decided: the endpoint's default (pods: allow; host endpoints: deny)."""
    assert (side.reason, side.rule, side.tier, side.allowed) == (Reason.NOT_ISOLATED, None, None, allowed)


# --- 1.5 rule selector scope ------------------------------------------------------------------


def test_rule_selector_in_a_namespaced_policy_covers_only_the_policy_namespace(cluster: World) -> None:
    c = cluster(*base(), calico_np("dev", "p", selector="app == 'a'", ingress=[rule("Allow", **source(selector="app == 'b'"))]))
    by_rule(ingress(c, "dev/b", "dev/a"), "CalicoNetworkPolicy dev/p ingress[0]")
    isolated(ingress(c, "prod/b", "dev/a"))  # same labels, other namespace
    unrestricted(ingress(c, "dev/b", "prod/a"))  # the policy selects pods of its namespace only


def test_rule_selector_in_a_global_policy_covers_every_namespace(cluster: World) -> None:
    c = cluster(*base(), gnp("p", selector="app == 'a'", ingress=[rule("Allow", **source(selector="app == 'b'"))]))
    by_rule(ingress(c, "prod/b", "dev/a"), "GlobalNetworkPolicy p ingress[0]")
    by_rule(ingress(c, "dev/b", "prod/a"), "GlobalNetworkPolicy p ingress[0]")
    isolated(ingress(c, "dev/c", "prod/a"))


def test_namespace_selector_all_widens_a_namespaced_policy_to_every_namespace(cluster: World) -> None:
    objects = [*base(), global_set("ext", {"app": "b"}, ["203.0.113.0/24"])]
    p = calico_np("dev", "p", selector="app == 'a'", ingress=[rule("Allow", **source(selector="app == 'b'", namespaceSelector="all()"))])
    c = cluster(*objects, p)
    by_rule(ingress(c, "prod/b", "dev/a"), "CalicoNetworkPolicy dev/p ingress[0]")
    by_rule(ingress(c, "dev/b", "dev/a"), "CalicoNetworkPolicy dev/p ingress[0]")
    # all() means every namespaced endpoint: a GlobalNetworkSet with the label is not one.
    isolated(ingress(c, OUTSIDE, "dev/a"))


def test_namespace_selector_global_reaches_only_global_network_sets_and_host_endpoints(cluster: World) -> None:
    objects = [
        *base(),
        pod("prod", "ext-pod", {"role": "ext"}, "10.0.2.9"),
        pod("dev", "ext-pod", {"role": "ext"}, "10.0.1.9"),
        global_set("ext", {"role": "ext"}, ["203.0.113.0/24"]),
        host_endpoint("node-1-eth0", {"role": "ext"}, "192.168.0.10", default_allow=True),
    ]
    p = calico_np("dev", "p", selector="app == 'a'", ingress=[rule("Allow", **source(selector="role == 'ext'", namespaceSelector="global()"))])
    c = cluster(*objects, p)
    by_rule(ingress(c, OUTSIDE, "dev/a"), "CalicoNetworkPolicy dev/p ingress[0]")
    by_rule(ingress(c, "hep/node-1-eth0", "dev/a"), "CalicoNetworkPolicy dev/p ingress[0]")
    isolated(ingress(c, "prod/ext-pod", "dev/a"))
    isolated(ingress(c, "dev/ext-pod", "dev/a"))


def test_not_selector_alone_in_a_namespaced_policy_means_pods_of_its_namespace_except_those(cluster: World) -> None:
    p = calico_np("dev", "p", selector="app == 'a'", ingress=[rule("Allow", **source(notSelector="app == 'b'"))])
    c = cluster(*base(), p)
    by_rule(ingress(c, "dev/c", "dev/a"), "CalicoNetworkPolicy dev/p ingress[0]")
    isolated(ingress(c, "dev/b", "dev/a"))
    # The policy's namespace is added as a positive selector: other namespaces and outside
    # addresses do not match.
    isolated(ingress(c, "prod/c", "dev/a"))
    isolated(ingress(c, OUTSIDE, "dev/a"))


def test_not_selector_alone_in_a_global_policy_matches_every_address_but_the_excluded(cluster: World) -> None:
    c = cluster(*base(), gnp("p", selector="app == 'a'", ingress=[rule("Allow", **source(notSelector="app == 'b'"))]))
    by_rule(ingress(c, "prod/c", "dev/a"), "GlobalNetworkPolicy p ingress[0]")
    by_rule(ingress(c, OUTSIDE, "dev/a"), "GlobalNetworkPolicy p ingress[0]")
    isolated(ingress(c, "dev/b", "dev/a"))
    isolated(ingress(c, "prod/b", "dev/a"))


def test_namespace_selector_alone_selects_every_endpoint_of_matching_namespaces(cluster: World) -> None:
    p = calico_np("dev", "p", selector="app == 'a'", ingress=[rule("Allow", **source(namespaceSelector="env == 'prod'"))])
    c = cluster(*base(), p)
    for src in ("prod/a", "prod/b", "prod/c"):
        by_rule(ingress(c, src, "dev/a"), "CalicoNetworkPolicy dev/p ingress[0]")
    isolated(ingress(c, "dev/b", "dev/a"))


def test_a_side_without_selector_fields_matches_any_address_but_all_matches_known_ones_only(cluster: World) -> None:
    rules = [
        rule("Allow", protocol="TCP", **source(selector="all()"), **destination(ports=[80])),
        rule("Allow", protocol="TCP", destination={"ports": [443]}),
    ]
    c = cluster(*base(), gnp("p", selector="app == 'a'", ingress=rules))
    by_rule(ingress(c, "prod/b", "dev/a"), "GlobalNetworkPolicy p ingress[0]")
    isolated(ingress(c, OUTSIDE, "dev/a"))  # all() matches endpoints and network sets only
    by_rule(ingress(c, OUTSIDE, "dev/a", "443/TCP"), "GlobalNetworkPolicy p ingress[1]")


# --- 2.8.4 service accounts -------------------------------------------------------------------


def accounts() -> list[dict[str, Any]]:
    return [
        *base(),
        service_account("dev", "builder", {"team": "ci"}),
        service_account("prod", "builder", {"team": "ci"}),
        service_account("dev", "default", {"team": "none"}),
        pod("dev", "build", {"app": "build"}, "10.0.1.8", serviceAccountName="builder"),
        pod("prod", "build", {"app": "build"}, "10.0.2.8", serviceAccountName="builder"),
        pod("dev", "deploy", {"app": "deploy"}, "10.0.1.7", serviceAccountName="deployer"),
    ]


def test_service_account_names_match_pods_running_as_them_in_the_policy_namespace(cluster: World) -> None:
    p = calico_np("dev", "p", selector="app == 'a'", ingress=[rule("Allow", **source(serviceAccounts={"names": ["builder"]}))])
    c = cluster(*accounts(), p)
    by_rule(ingress(c, "dev/build", "dev/a"), "CalicoNetworkPolicy dev/p ingress[0]")
    isolated(ingress(c, "prod/build", "dev/a"))  # same account name, other namespace
    isolated(ingress(c, "dev/deploy", "dev/a"))


def test_a_pod_without_service_account_name_runs_as_default(cluster: World) -> None:
    p = calico_np("dev", "p", selector="app == 'a'", ingress=[rule("Allow", **source(serviceAccounts={"names": ["default"]}))])
    c = cluster(*accounts(), p)
    by_rule(ingress(c, "dev/b", "dev/a"), "CalicoNetworkPolicy dev/p ingress[0]")
    isolated(ingress(c, "dev/build", "dev/a"))


def test_service_account_selector_matches_the_labels_of_service_account_objects(cluster: World) -> None:
    p = gnp("p", selector="app == 'a'", ingress=[rule("Allow", **source(serviceAccounts={"selector": "team == 'ci'"}))])
    c = cluster(*accounts(), p)
    by_rule(ingress(c, "dev/build", "dev/a"), "GlobalNetworkPolicy p ingress[0]")
    by_rule(ingress(c, "prod/build", "dev/a"), "GlobalNetworkPolicy p ingress[0]")
    isolated(ingress(c, "dev/b", "dev/a"))  # dev/default has team=none
    isolated(ingress(c, "dev/deploy", "dev/a"))  # no ServiceAccount object: an account without labels


def test_service_account_names_and_selector_must_both_hold(cluster: World) -> None:
    accounts_match = {"names": ["builder", "deployer"], "selector": "team == 'ci'"}
    c = cluster(*accounts(), gnp("p", selector="app == 'a'", ingress=[rule("Allow", **source(serviceAccounts=accounts_match))]))
    by_rule(ingress(c, "dev/build", "dev/a"), "GlobalNetworkPolicy p ingress[0]")
    isolated(ingress(c, "dev/deploy", "dev/a"))  # named, but its account has no team=ci


def test_service_account_selector_can_name_the_account_by_projectcalico_name(cluster: World) -> None:
    matcher = {"selector": "projectcalico.org/name == 'deployer'"}
    c = cluster(*accounts(), gnp("p", selector="app == 'a'", ingress=[rule("Allow", **source(serviceAccounts=matcher))]))
    by_rule(ingress(c, "dev/deploy", "dev/a"), "GlobalNetworkPolicy p ingress[0]")
    isolated(ingress(c, "dev/build", "dev/a"))


def test_policy_service_account_selector_picks_the_pods_the_policy_applies_to(cluster: World) -> None:
    c = cluster(*accounts(), gnp("p", serviceAccountSelector="team == 'ci'", ingress=[rule("Deny")]))
    by_rule(ingress(c, "dev/a", "dev/build"), "GlobalNetworkPolicy p ingress[0]", allowed=False)
    by_rule(ingress(c, "dev/a", "prod/build"), "GlobalNetworkPolicy p ingress[0]", allowed=False)
    unrestricted(ingress(c, "dev/a", "dev/deploy"))
    unrestricted(ingress(c, "dev/build", "dev/b"))


def test_global_policy_namespace_selector_restricts_the_pods_it_applies_to(cluster: World) -> None:
    c = cluster(*base(), gnp("p", namespaceSelector="env == 'prod'", selector="app == 'a'", ingress=[rule("Deny")]))
    by_rule(ingress(c, "dev/b", "prod/a"), "GlobalNetworkPolicy p ingress[0]", allowed=False)
    unrestricted(ingress(c, "dev/b", "dev/a"))
    unrestricted(ingress(c, "dev/a", "prod/b"))


# --- 1.6 derived labels -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "matching"),
    [
        ("projectcalico.org/namespace == 'prod'", {"prod/b", "prod/build"}),
        ("projectcalico.org/orchestrator == 'k8s'", {"prod/b", "prod/build", "dev/b", "dev/build"}),
        ("projectcalico.org/serviceaccount == 'builder'", {"prod/build", "dev/build"}),
        ("pcns.env == 'prod'", {"prod/b", "prod/build"}),
        ("pcns.projectcalico.org/name == 'dev'", {"dev/b", "dev/build"}),
        ("pcns.kubernetes.io/metadata.name == 'dev'", {"dev/b", "dev/build"}),
        ("pcsa.team == 'ci'", {"prod/build", "dev/build"}),
        ("pcsa.projectcalico.org/name == 'default'", {"prod/b", "dev/b"}),
    ],
)
def test_selectors_see_the_labels_calico_derives_for_pods(cluster: World, expression: str, matching: set[str]) -> None:
    c = cluster(*accounts(), gnp("p", selector="app == 'a'", ingress=[rule("Allow", **source(selector=expression))]))
    for src in ("prod/b", "prod/build", "dev/b", "dev/build"):
        assert ingress(c, src, "dev/a").allowed == (src in matching), src


def test_namespace_selector_can_pick_a_namespace_by_projectcalico_name(cluster: World) -> None:
    p = calico_np("dev", "p", selector="app == 'a'", ingress=[rule("Allow", **source(namespaceSelector="projectcalico.org/name == 'prod'"))])
    c = cluster(*base(), p)
    by_rule(ingress(c, "prod/c", "dev/a"), "CalicoNetworkPolicy dev/p ingress[0]")
    isolated(ingress(c, "dev/c", "dev/a"))


# --- 2.8.3 network sets ------------------------------------------------------------------------


def test_a_pod_inside_a_matching_network_set_matches_the_selector_without_its_labels(cluster: World) -> None:
    objects = [*base(), global_set("trusted", {"role": "trusted"}, ["10.0.2.0/24"])]
    c = cluster(*objects, gnp("p", selector="app == 'a'", ingress=[rule("Allow", **source(selector="role == 'trusted'"))]))
    by_rule(ingress(c, "prod/b", "dev/a"), "GlobalNetworkPolicy p ingress[0]")  # 10.0.2.2 is in the set
    by_rule(ingress(c, "10.0.2.200", "dev/a"), "GlobalNetworkPolicy p ingress[0]")
    isolated(ingress(c, "dev/b", "dev/a"))


def test_a_global_network_set_is_reached_from_a_namespaced_policy_only_with_global(cluster: World) -> None:
    objects = [*base(), global_set("ext", {"role": "ext"}, ["203.0.113.0/24"])]
    plain = calico_np("dev", "plain", selector="app == 'a'", ingress=[rule("Allow", **source(selector="role == 'ext'"))])
    c = cluster(*objects, plain)
    isolated(ingress(c, OUTSIDE, "dev/a"))
    scoped = calico_np("dev", "global", selector="app == 'a'", ingress=[rule("Allow", **source(selector="role == 'ext'", namespaceSelector="global()"))])
    c = cluster(*objects, scoped)
    by_rule(ingress(c, OUTSIDE, "dev/a"), "CalicoNetworkPolicy dev/global ingress[0]")


def test_a_namespaced_network_set_is_seen_by_plain_selectors_of_its_own_namespace(cluster: World) -> None:
    objects = [*base(), network_set("dev", "partners", {"role": "partner"}, ["198.51.100.0/24"])]
    allow_partners = [rule("Allow", **source(selector="role == 'partner'"))]
    c = cluster(*objects, calico_np("dev", "p", selector="app == 'a'", ingress=allow_partners))
    by_rule(ingress(c, "198.51.100.7", "dev/a"), "CalicoNetworkPolicy dev/p ingress[0]")
    c = cluster(*objects, calico_np("prod", "p", selector="app == 'a'", ingress=allow_partners))
    isolated(ingress(c, "198.51.100.7", "prod/a"))


def test_a_network_set_carries_its_namespace_labels(cluster: World) -> None:
    objects = [*base(), network_set("prod", "partners", {"role": "partner"}, ["198.51.100.0/24"])]
    allow = [rule("Allow", **source(selector="role == 'partner'", namespaceSelector="env == 'prod'"))]
    c = cluster(*objects, calico_np("dev", "p", selector="app == 'a'", ingress=allow))
    by_rule(ingress(c, "198.51.100.7", "dev/a"), "CalicoNetworkPolicy dev/p ingress[0]")


def test_a_global_policy_selector_sees_namespaced_network_sets(cluster: World) -> None:
    # Upstream docs say a NetworkSet serves its namespace's policies; Calico's code matches it by
    # labels wherever a selector's scope reaches, and a GlobalNetworkPolicy's has no namespace part.
    objects = [*base(), network_set("prod", "partners", {"role": "partner"}, ["198.51.100.0/24"])]
    c = cluster(*objects, gnp("p", selector="app == 'a'", ingress=[rule("Allow", **source(selector="role == 'partner'"))]))
    by_rule(ingress(c, "198.51.100.7", "dev/a"), "GlobalNetworkPolicy p ingress[0]")


def test_not_selector_excludes_every_address_of_a_matching_network_set(cluster: World) -> None:
    objects = [*base(), global_set("blocked", {"role": "blocked"}, ["10.0.2.0/24"])]
    c = cluster(*objects, gnp("p", selector="app == 'a'", ingress=[rule("Allow", **source(notSelector="role == 'blocked'"))]))
    isolated(ingress(c, "prod/b", "dev/a"))  # its address is in the set
    by_rule(ingress(c, "dev/b", "dev/a"), "GlobalNetworkPolicy p ingress[0]")


def test_not_selector_is_not_scoped_to_the_policy_namespace(cluster: World) -> None:
    objects = [*base(), global_set("blocked", {"role": "blocked"}, ["10.0.1.2/32"])]
    allow = [rule("Allow", **source(selector="all()", notSelector="role == 'blocked'"))]
    c = cluster(*objects, calico_np("dev", "p", selector="app == 'a'", ingress=allow))
    isolated(ingress(c, "dev/b", "dev/a"))  # excluded by a GlobalNetworkSet the namespace cannot select
    by_rule(ingress(c, "dev/c", "dev/a"), "CalicoNetworkPolicy dev/p ingress[0]")


def test_nets_and_not_nets_match_addresses_of_pods_and_outside_hosts_alike(cluster: World) -> None:
    rules = [rule("Allow", **source(nets=["10.0.0.0/8", "203.0.113.0/24"], notNets=["10.0.2.0/24"]))]
    c = cluster(*base(), calico_np("dev", "p", selector="app == 'a'", ingress=rules))
    by_rule(ingress(c, "dev/b", "dev/a"), "CalicoNetworkPolicy dev/p ingress[0]")
    by_rule(ingress(c, OUTSIDE, "dev/a"), "CalicoNetworkPolicy dev/p ingress[0]")
    isolated(ingress(c, "prod/b", "dev/a"))  # in notNets
    isolated(ingress(c, "192.0.2.1", "dev/a"))


def test_nets_and_selector_on_one_side_must_both_hold(cluster: World) -> None:
    rules = [rule("Allow", **source(selector="app == 'b'", nets=["10.0.2.0/24"]))]
    c = cluster(*base(), gnp("p", selector="app == 'a'", ingress=rules))
    by_rule(ingress(c, "prod/b", "dev/a"), "GlobalNetworkPolicy p ingress[0]")
    isolated(ingress(c, "dev/b", "dev/a"))
    isolated(ingress(c, "prod/c", "dev/a"))


# --- 2.9 host endpoints -----------------------------------------------------------------------


def hosts() -> list[dict[str, Any]]:
    return [
        *base(),
        host_endpoint("node-1-eth0", {"role": "node"}, "192.168.0.10", ports=[{"name": "ssh", "port": 22, "protocol": "TCP"}]),
        host_endpoint("node-2-eth0", {"role": "node"}, "192.168.0.11", default_allow=True),
    ]


def test_a_host_endpoint_no_policy_selects_is_denied_unless_it_has_the_default_allow_profile(cluster: World) -> None:
    c = cluster(*hosts())
    unrestricted(ingress(c, "dev/a", "hep/node-1-eth0"), allowed=False)
    unrestricted(egress(c, "hep/node-1-eth0", "dev/a"), allowed=False)
    unrestricted(ingress(c, "dev/a", "hep/node-2-eth0"))
    unrestricted(egress(c, "hep/node-2-eth0", "dev/a"))
    assert flow(c, "hep/node-2-eth0", "dev/a").allowed


def test_a_host_endpoint_is_selected_by_global_policies_only(cluster: World) -> None:
    c = cluster(*hosts(), calico_np("dev", "all", selector="all()", ingress=[rule("Allow")]))
    unrestricted(ingress(c, "dev/a", "hep/node-2-eth0"))  # a namespaced policy never selects it
    c = cluster(*hosts(), gnp("nodes", selector="role == 'node'", ingress=[rule("Allow", protocol="TCP", destination={"ports": [22]})]))
    by_rule(ingress(c, "dev/a", "hep/node-1-eth0", "22/TCP"), "GlobalNetworkPolicy nodes ingress[0]")
    isolated(ingress(c, "dev/a", "hep/node-2-eth0"))  # selected now, so its profile no longer decides


def test_a_global_policy_namespace_selector_is_read_on_namespace_labels_a_host_endpoint_lacks(cluster: World) -> None:
    # Calico rewrites the policy's namespaceSelector onto pcns. labels: a negative one is true for
    # a host endpoint, which has no namespace; all() means "has a namespace".
    negative = gnp("not-kube-system", namespaceSelector="projectcalico.org/name != 'kube-system'", ingress=[rule("Deny")])
    c = cluster(*hosts(), negative)
    by_rule(ingress(c, "dev/a", "hep/node-2-eth0"), "GlobalNetworkPolicy not-kube-system ingress[0]", allowed=False)
    by_rule(ingress(c, "dev/b", "dev/a"), "GlobalNetworkPolicy not-kube-system ingress[0]", allowed=False)
    c = cluster(*hosts(), gnp("namespaced", namespaceSelector="all()", ingress=[rule("Deny")]))
    unrestricted(ingress(c, "dev/a", "hep/node-2-eth0"))
    by_rule(ingress(c, "dev/b", "dev/a"), "GlobalNetworkPolicy namespaced ingress[0]", allowed=False)
    c = cluster(*hosts(), gnp("prod", namespaceSelector="env == 'prod'", ingress=[rule("Deny")]))
    unrestricted(ingress(c, "dev/a", "hep/node-2-eth0"))


def test_host_endpoint_expected_ips_are_what_rule_selectors_match(cluster: World) -> None:
    c = cluster(*hosts(), gnp("from-nodes", selector="app == 'a'", ingress=[rule("Allow", **source(selector="role == 'node'"))]))
    by_rule(ingress(c, "hep/node-2-eth0", "dev/a"), "GlobalNetworkPolicy from-nodes ingress[0]")
    assert flow(c, "hep/node-2-eth0", "dev/a").allowed
    isolated(ingress(c, "dev/b", "dev/a"))
    # node-1 has no default-allow profile and no policy: its own egress denies the flow.
    verdict = flow(c, "hep/node-1-eth0", "dev/a")
    by_rule(verdict.ingress, "GlobalNetworkPolicy from-nodes ingress[0]")
    assert not verdict.allowed


def test_a_named_port_of_a_host_endpoint_resolves_on_it(cluster: World) -> None:
    c = cluster(*hosts(), gnp("nodes", selector="role == 'node'", ingress=[rule("Allow", protocol="TCP", destination={"ports": ["ssh"]})]))
    by_rule(ingress(c, "dev/a", "hep/node-1-eth0", "22/TCP"), "GlobalNetworkPolicy nodes ingress[0]")
    isolated(ingress(c, "dev/a", "hep/node-2-eth0", "22/TCP"))  # node-2 declares no ssh port


@pytest.mark.parametrize("option", [{"doNotTrack": True}, {"preDNAT": True}], ids=["doNotTrack", "preDNAT"])
def test_untracked_and_pre_dnat_policies_apply_to_host_endpoints_only(cluster: World, option: dict[str, Any]) -> None:
    p = gnp("host-only", selector="all()", applyOnForward=True, types=["Ingress"], ingress=[rule("Deny")], **option)
    c = cluster(*hosts(), p)
    by_rule(ingress(c, "dev/a", "hep/node-2-eth0"), "GlobalNetworkPolicy host-only ingress[0]", allowed=False)
    unrestricted(ingress(c, "dev/b", "dev/a"))


# --- 2.3 types --------------------------------------------------------------------------------


@pytest.mark.parametrize("api", [V3, CRD])
def test_types_default_to_ingress_for_a_policy_without_rules(cluster: World, api: str) -> None:
    c = cluster(*base(), gnp("p", api, selector="app == 'a'"))
    isolated(ingress(c, "dev/b", "dev/a"))
    unrestricted(egress(c, "dev/a", "dev/b"))


def test_types_default_to_egress_for_a_policy_with_only_egress_rules(cluster: World) -> None:
    c = cluster(*base(), gnp("p", selector="app == 'a'", egress=[rule("Allow", **destination(selector="app == 'b'"))]))
    by_rule(egress(c, "dev/a", "prod/b"), "GlobalNetworkPolicy p egress[0]")
    isolated(egress(c, "dev/a", "dev/c"))
    unrestricted(ingress(c, "dev/c", "dev/a"))


def test_types_default_to_both_for_a_policy_with_ingress_and_egress_rules(cluster: World) -> None:
    p = gnp("p", selector="app == 'a'", ingress=[rule("Allow", **source(selector="app == 'b'"))], egress=[rule("Allow", **destination(selector="app == 'b'"))])
    c = cluster(*base(), p)
    isolated(ingress(c, "dev/c", "dev/a"))
    isolated(egress(c, "dev/a", "dev/c"))


def test_explicit_types_ignore_the_rules_of_a_direction_they_do_not_list(cluster: World) -> None:
    p = gnp("p", selector="app == 'a'", types=["Egress"], ingress=[rule("Deny")], egress=[rule("Allow", **destination(selector="app == 'b'"))])
    c = cluster(*base(), p)
    unrestricted(ingress(c, "dev/c", "dev/a"))
    isolated(egress(c, "dev/a", "dev/c"))


# --- 2.4 tiers --------------------------------------------------------------------------------


def deny_from(name: str, app: str, **spec: Any) -> dict[str, Any]:
    return gnp(name, selector="app == 'a'", ingress=[rule("Deny", **source(selector=f"app == '{app}'"))], **spec)


def allow_from(name: str, app: str, **spec: Any) -> dict[str, Any]:
    return gnp(name, selector="app == 'a'", ingress=[rule("Allow", **source(selector=f"app == '{app}'"))], **spec)


def test_tiers_run_in_ascending_order(cluster: World) -> None:
    objects = [tier("second", 200), tier("first", 100), allow_from("allow-b", "b", tier="second"), deny_from("deny-b", "b", tier="first")]
    c = cluster(*base(), *objects)
    by_rule(ingress(c, "dev/b", "dev/a"), "GlobalNetworkPolicy deny-b ingress[0]", "first", allowed=False)
    assert [t.name for t in c.ruleset.ingress] == ["first", "second"]


@pytest.mark.parametrize("order", [None, 2_000_000], ids=["no-order", "order-2000000"])
def test_a_tier_without_order_or_ordered_above_one_million_runs_after_the_default_tier(
    cluster: World, order: int | None
) -> None:
    late = gnp("late-deny", tier="late", selector="all()", ingress=[rule("Deny", **source(selector="app == 'c'"))])
    allow_b = k8s_np("dev", "allow-b", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]})
    c = cluster(*base(), tier("late", order), late, allow_b)
    by_rule(ingress(c, "dev/b", "dev/a"), "NetworkPolicy dev/allow-b ingress[0]")
    isolated(ingress(c, "dev/c", "dev/a"))  # the default tier's end ends the walk before "late"
    by_rule(ingress(c, "dev/c", "dev/b"), "GlobalNetworkPolicy late-deny ingress[0]", "late", allowed=False)
    assert [t.name for t in c.ruleset.ingress] == ["default", "late"]


@pytest.mark.parametrize(("allow_tier", "deny_tier", "allowed"), [("alpha", "beta", True), ("beta", "alpha", False)])
def test_tiers_of_equal_order_run_by_name(cluster: World, allow_tier: str, deny_tier: str, allowed: bool) -> None:
    objects = [tier(allow_tier, 100), tier(deny_tier, 100), allow_from("allow", "b", tier=allow_tier), deny_from("deny", "b", tier=deny_tier)]
    c = cluster(*base(), *objects)
    side = ingress(c, "dev/b", "dev/a")
    assert (side.allowed, side.tier) == (allowed, "alpha")


def test_a_tier_with_default_action_pass_hands_unmatched_flows_to_the_next_tier(cluster: World) -> None:
    screen = deny_from("screen", "c", tier="screen")
    c = cluster(*base(), tier("screen", 100, "Pass"), screen)
    by_rule(ingress(c, "dev/c", "dev/a"), "GlobalNetworkPolicy screen ingress[0]", "screen", allowed=False)
    unrestricted(ingress(c, "dev/b", "dev/a"))
    c = cluster(*base(), tier("screen", 100), screen)  # defaultAction Deny (the default)
    isolated(ingress(c, "dev/b", "dev/a"), "screen")


def test_pass_leaves_the_tier_at_once(cluster: World) -> None:
    objects = [
        tier("security", 100),
        gnp("pass-b", tier="security", order=1, selector="app == 'a'", ingress=[rule("Pass", **source(selector="app == 'b'"))]),
        gnp("deny-all", tier="security", order=2, selector="app == 'a'", ingress=[rule("Deny")]),
        allow_from("allow-b", "b"),
    ]
    c = cluster(*base(), *objects)
    by_rule(ingress(c, "dev/b", "dev/a"), "GlobalNetworkPolicy allow-b ingress[0]")  # deny-all skipped
    by_rule(ingress(c, "dev/c", "dev/a"), "GlobalNetworkPolicy deny-all ingress[0]", "security", allowed=False)


def test_pass_in_the_last_tier_ends_at_the_profiles_which_allow_pods(cluster: World) -> None:
    c = cluster(*base(), gnp("pass-all", selector="all()", types=["Ingress", "Egress"], ingress=[rule("Pass")], egress=[rule("Pass")]))
    unrestricted(ingress(c, "dev/b", "dev/a"))
    unrestricted(egress(c, "dev/b", "dev/a"))
    assert flow(c, "dev/b", "dev/a").ingress.policies  # the policy did select the pod


def test_the_end_of_tier_deny_applies_only_where_a_policy_of_the_tier_selects_the_endpoint(cluster: World) -> None:
    c = cluster(*base(), tier("security", 100), allow_from("allow-b", "b", tier="security"))
    isolated(ingress(c, "dev/c", "dev/a"), "security")
    unrestricted(ingress(c, "dev/c", "dev/b"))  # nothing in the tier selects dev/b
    unrestricted(egress(c, "dev/a", "dev/c"))  # an Ingress policy leaves egress alone


def test_a_calico_policy_can_sit_in_the_kube_admin_tier_without_admin_policies(cluster: World) -> None:
    c = cluster(*base(), deny_from("early", "b", tier="kube-admin"), allow_from("allow-b", "b"))
    by_rule(ingress(c, "dev/b", "dev/a"), "GlobalNetworkPolicy early ingress[0]", "kube-admin", allowed=False)
    # kube-admin's default action is Pass: an unmatched flow goes on to the default tier.
    isolated(ingress(c, "dev/c", "dev/a"))


def test_a_calico_policy_in_the_kube_baseline_tier_runs_after_the_default_tier(cluster: World) -> None:
    c = cluster(*base(), deny_from("late", "b", tier="kube-baseline"), allow_from("allow-c", "c"))
    isolated(ingress(c, "dev/b", "dev/a"))  # decided by the default tier's end
    c = cluster(*base(), deny_from("late", "b", tier="kube-baseline"))
    by_rule(ingress(c, "dev/b", "dev/a"), "GlobalNetworkPolicy late ingress[0]", "kube-baseline", allowed=False)
    unrestricted(ingress(c, "dev/c", "dev/a"))  # its default action is Pass


# --- 2.5 policy order inside a tier -----------------------------------------------------------


def test_policies_in_a_tier_run_by_order_with_unordered_ones_last(cluster: World) -> None:
    c = cluster(*base(), allow_from("a-unordered", "b"), deny_from("z-first", "b", order=1))
    by_rule(ingress(c, "dev/b", "dev/a"), "GlobalNetworkPolicy z-first ingress[0]", allowed=False)


def test_fractional_policy_orders_are_compared_as_numbers(cluster: World) -> None:
    c = cluster(*base(), deny_from("deny", "b", order=10), allow_from("allow", "b", order=9.5))
    by_rule(ingress(c, "dev/b", "dev/a"), "GlobalNetworkPolicy allow ingress[0]")


def test_policies_of_equal_order_run_by_name(cluster: World) -> None:
    c = cluster(*base(), deny_from("b-deny", "b", order=5), allow_from("a-allow", "b", order=5))
    by_rule(ingress(c, "dev/b", "dev/a"), "GlobalNetworkPolicy a-allow ingress[0]")


@pytest.mark.parametrize(("order", "decider"), [(999, "GlobalNetworkPolicy deny-b ingress[0]"), (1001, "NetworkPolicy dev/allow-b ingress[0]")])
def test_a_kubernetes_network_policy_sits_at_order_1000_in_the_default_tier(cluster: World, order: int, decider: str) -> None:
    allow_b = k8s_np("dev", "allow-b", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]})
    c = cluster(*base(), allow_b, deny_from("deny-b", "b", order=order))
    side = ingress(c, "dev/b", "dev/a")
    assert (str(side.rule), side.tier, side.allowed) == (decider, "default", order > 1000)


def test_a_calico_pass_before_order_1000_skips_kubernetes_network_policy_isolation(cluster: World) -> None:
    allow_c = k8s_np("dev", "allow-c", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "c"}}}]}]})
    skip = gnp("skip-b", order=10, selector="app == 'a'", ingress=[rule("Pass", **source(selector="app == 'b'"))])
    c = cluster(*base(), allow_c, skip)
    unrestricted(ingress(c, "dev/b", "dev/a"))  # no later tier: the profiles allow
    unrestricted(ingress(c, "prod/b", "dev/a"))  # a global selector: app=b of every namespace
    isolated(ingress(c, "prod/a", "dev/a"))
    by_rule(ingress(c, "dev/c", "dev/a"), "NetworkPolicy dev/allow-c ingress[0]")


def test_worked_example_of_the_default_tier(cluster: World) -> None:
    objects = [
        namespace("web"),
        namespace("sandbox", {"env": "sandbox", "ingress": "true"}),
        namespace("gateway", {"ingress": "true"}),
        namespace("tools"),
        pod("web", "frontend", {"role": "frontend"}, "10.1.0.1"),
        pod("web", "ops", {"role": "ops"}, "10.1.0.2"),
        pod("sandbox", "client", {}, "10.1.1.1"),
        pod("gateway", "client", {}, "10.1.2.1"),
        pod("tools", "ops", {"role": "ops"}, "10.1.3.1"),
        calico_np("web", "sandbox-block", order=10, selector="role == 'frontend'", ingress=[rule("Deny", **source(namespaceSelector="env == 'sandbox'"))]),
        k8s_np("web", "frontend-in", {
            "podSelector": {"matchLabels": {"role": "frontend"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ingress": "true"}}}], "ports": [{"port": 443}]}],
        }),
        calico_np("web", "ops-access", selector="role == 'frontend'", ingress=[rule("Allow", **source(selector="role == 'ops'"))]),
    ]
    c = cluster(*objects)
    for port in ("443/TCP", "80/TCP", "53/UDP"):
        by_rule(ingress(c, "sandbox/client", "web/frontend", port), "CalicoNetworkPolicy web/sandbox-block ingress[0]", allowed=False)
    by_rule(ingress(c, "gateway/client", "web/frontend", "443/TCP"), "NetworkPolicy web/frontend-in ingress[0]")
    isolated(ingress(c, "gateway/client", "web/frontend", "80/TCP"))
    for port in ("80/TCP", "443/TCP", "8080/TCP"):
        by_rule(ingress(c, "web/ops", "web/frontend", port), "CalicoNetworkPolicy web/ops-access ingress[0]")
    isolated(ingress(c, "tools/ops", "web/frontend"))


# --- 2.6 actions ------------------------------------------------------------------------------


def test_the_first_matching_rule_decides_with_allow_or_deny(cluster: World) -> None:
    rules = [rule("Deny", protocol="TCP", **source(selector="app == 'b'"), **destination(ports=[80])), rule("Allow")]
    c = cluster(*base(), gnp("p", selector="app == 'a'", ingress=rules))
    by_rule(ingress(c, "dev/b", "dev/a", "80/TCP"), "GlobalNetworkPolicy p ingress[0]", allowed=False)
    by_rule(ingress(c, "dev/b", "dev/a", "443/TCP"), "GlobalNetworkPolicy p ingress[1]")
    by_rule(ingress(c, "dev/c", "dev/a", "80/TCP"), "GlobalNetworkPolicy p ingress[1]")


def test_log_records_and_goes_on_with_the_next_rule(cluster: World) -> None:
    c = cluster(*base(), gnp("p", selector="app == 'a'", ingress=[rule("Log"), rule("Deny", **source(selector="app == 'b'"))]))
    by_rule(ingress(c, "dev/b", "dev/a"), "GlobalNetworkPolicy p ingress[1]", allowed=False)
    isolated(ingress(c, "dev/c", "dev/a"))  # Log matched but never decides


def test_a_policy_with_only_allow_rules_leaves_the_tier_open_to_later_policies(cluster: World) -> None:
    c = cluster(*base(), allow_from("allow-b", "b", order=1), deny_from("deny-c", "c", order=2))
    by_rule(ingress(c, "dev/c", "dev/a"), "GlobalNetworkPolicy deny-c ingress[0]", allowed=False)
    by_rule(ingress(c, "dev/b", "dev/a"), "GlobalNetworkPolicy allow-b ingress[0]")


# --- 2.7 both directions ----------------------------------------------------------------------


def test_a_flow_needs_the_source_egress_and_the_destination_ingress(cluster: World) -> None:
    c = cluster(*base(), gnp("p", selector="app == 'b'", types=["Egress"], egress=[rule("Deny", **destination(selector="app == 'a'"))]))
    verdict = flow(c, "dev/b", "dev/a")
    by_rule(verdict.egress, "GlobalNetworkPolicy p egress[0]", allowed=False)
    unrestricted(verdict.ingress)
    assert not verdict.allowed


def test_an_ingress_rule_destination_describes_the_policy_own_endpoint(cluster: World) -> None:
    c = cluster(*base(), gnp("p", selector="all()", ingress=[rule("Allow", **destination(selector="app == 'a'"))]))
    by_rule(ingress(c, "dev/b", "dev/a"), "GlobalNetworkPolicy p ingress[0]")
    isolated(ingress(c, "dev/a", "dev/b"))


def test_an_egress_rule_source_describes_the_policy_own_endpoint(cluster: World) -> None:
    c = cluster(*base(), gnp("p", selector="all()", types=["Egress"], egress=[rule("Allow", **source(selector="app == 'a'"))]))
    by_rule(egress(c, "dev/a", "dev/b"), "GlobalNetworkPolicy p egress[0]")
    isolated(egress(c, "dev/b", "dev/a"))


def test_a_pod_reaching_itself_is_always_allowed(cluster: World) -> None:
    c = cluster(*base(), gnp("p", selector="all()", types=["Ingress", "Egress"], ingress=[rule("Deny")], egress=[rule("Deny")]))
    verdict = flow(c, "dev/a", "dev/a")
    assert verdict.allowed and verdict.ingress.reason is Reason.SELF and verdict.egress.reason is Reason.SELF


# --- 2.8.1 protocols, ICMP, IP version --------------------------------------------------------


@pytest.mark.parametrize("protocol", ["TCP", 6, "6"])
def test_a_protocol_number_and_its_name_are_the_same_protocol(cluster: World, protocol: str | int) -> None:
    c = cluster(*base(), gnp("p", selector="app == 'a'", ingress=[rule("Allow", protocol=protocol)]))
    by_rule(ingress(c, "dev/b", "dev/a", "80/TCP"), "GlobalNetworkPolicy p ingress[0]")
    isolated(ingress(c, "dev/b", "dev/a", "80/UDP"))


def test_a_protocol_netfence_cannot_name_never_matches_a_flow(cluster: World) -> None:
    c = cluster(*base(), gnp("p", selector="app == 'a'", ingress=[rule("Deny", protocol=47), rule("Allow", protocol="TCP")]))
    by_rule(ingress(c, "dev/b", "dev/a", "80/TCP"), "GlobalNetworkPolicy p ingress[1]")  # GRE is not TCP
    isolated(ingress(c, "dev/b", "dev/a", "ICMP"))


def test_not_protocol_matches_every_other_protocol(cluster: World) -> None:
    c = cluster(*base(), gnp("p", selector="app == 'a'", ingress=[rule("Deny", notProtocol="TCP"), rule("Allow")]))
    by_rule(ingress(c, "dev/b", "dev/a", "53/UDP"), "GlobalNetworkPolicy p ingress[0]", allowed=False)
    by_rule(ingress(c, "dev/b", "dev/a", "ICMP"), "GlobalNetworkPolicy p ingress[0]", allowed=False)
    by_rule(ingress(c, "dev/b", "dev/a", "80/TCP"), "GlobalNetworkPolicy p ingress[1]")


@pytest.mark.parametrize(
    ("icmp", "matches"),
    [({"type": 8}, True), ({"type": 8, "code": 0}, True), ({"type": 8, "code": 1}, False), ({"type": 0}, False)],
)
def test_the_icmp_probe_is_an_echo_request(cluster: World, icmp: dict[str, int], matches: bool) -> None:
    c = cluster(*base(), gnp("p", selector="app == 'a'", ingress=[rule("Allow", protocol="ICMP", icmp=icmp)]))
    side = ingress(c, "dev/b", "dev/a", "ICMP")
    if matches:
        by_rule(side, "GlobalNetworkPolicy p ingress[0]")
    else:
        isolated(side)
    isolated(ingress(c, "dev/b", "dev/a", "80/TCP"))


def test_not_icmp_excludes_the_echo_request(cluster: World) -> None:
    rules = [rule("Allow", protocol="ICMP", notICMP={"type": 8}), rule("Deny", protocol="ICMP", notICMP={"type": 0})]
    c = cluster(*base(), gnp("p", selector="app == 'a'", ingress=rules))
    by_rule(ingress(c, "dev/b", "dev/a", "ICMP"), "GlobalNetworkPolicy p ingress[1]", allowed=False)


def test_ip_version_6_never_matches_ipv4_pods(cluster: World) -> None:
    rules = [rule("Deny", ipVersion=6), rule("Allow", ipVersion=4, **source(selector="app == 'b'"))]
    c = cluster(*base(), gnp("p", selector="app == 'a'", ingress=rules))
    by_rule(ingress(c, "dev/b", "dev/a"), "GlobalNetworkPolicy p ingress[1]")
    isolated(ingress(c, "dev/c", "dev/a"))


# --- 2.8.6 ports ------------------------------------------------------------------------------


def test_destination_ports_take_numbers_and_inclusive_ranges(cluster: World) -> None:
    c = cluster(*base(), gnp("p", selector="app == 'a'", ingress=[rule("Allow", protocol="TCP", destination={"ports": [80, "443", "8000:8080"]})]))
    for port, index in (("80/TCP", 0), ("443/TCP", 1), ("8000/TCP", 2), ("8080/TCP", 2)):
        side = ingress(c, "dev/b", "dev/a", port)
        by_rule(side, "GlobalNetworkPolicy p ingress[0]")
        assert side.port_index == index
    for port in ("79/TCP", "7999/TCP", "8081/TCP", "80/UDP", "ICMP"):
        isolated(ingress(c, "dev/b", "dev/a", port))


def test_not_ports_match_every_other_port_of_the_protocol(cluster: World) -> None:
    c = cluster(*base(), gnp("p", selector="app == 'a'", ingress=[rule("Allow", protocol="TCP", destination={"notPorts": [22, "6000:6010"]})]))
    by_rule(ingress(c, "dev/b", "dev/a", "80/TCP"), "GlobalNetworkPolicy p ingress[0]")
    isolated(ingress(c, "dev/b", "dev/a", "22/TCP"))
    isolated(ingress(c, "dev/b", "dev/a", "6005/TCP"))
    isolated(ingress(c, "dev/b", "dev/a", "80/UDP"))


def named_ports() -> list[dict[str, Any]]:
    return [
        namespace("web"),
        pod("web", "client", {"role": "client"}, "10.1.0.9", ports=[("http", 9999, "TCP")]),
        pod("web", "old", {"role": "web"}, "10.1.0.1", ports=[("http", 80, "TCP")]),
        pod("web", "new", {"role": "web"}, "10.1.0.2", ports=[("http", 8080, "TCP"), ("dns", 53, "UDP")]),
    ]


def test_a_named_port_in_an_ingress_rule_resolves_on_the_local_pod(cluster: World) -> None:
    c = cluster(*named_ports(), calico_np("web", "p", selector="role == 'web'", ingress=[rule("Allow", destination={"ports": ["http"]})]))
    by_rule(ingress(c, "web/client", "web/old", "80/TCP"), "CalicoNetworkPolicy web/p ingress[0]")
    by_rule(ingress(c, "web/client", "web/new", "8080/TCP"), "CalicoNetworkPolicy web/p ingress[0]")
    isolated(ingress(c, "web/client", "web/new", "80/TCP"))


def test_a_named_port_in_an_egress_rule_resolves_on_the_destination_peer(cluster: World) -> None:
    c = cluster(*named_ports(), calico_np("web", "p", selector="role == 'client'", egress=[rule("Allow", destination={"ports": ["http"]})]))
    by_rule(egress(c, "web/client", "web/old", "80/TCP"), "CalicoNetworkPolicy web/p egress[0]")
    by_rule(egress(c, "web/client", "web/new", "8080/TCP"), "CalicoNetworkPolicy web/p egress[0]")
    isolated(egress(c, "web/client", "web/new", "80/TCP"))
    isolated(egress(c, "web/client", "web/old", "9999/TCP"))  # the source's own named port is irrelevant
    isolated(egress(c, "web/client", OUTSIDE, "80/TCP"))  # an outside host declares no ports


def test_a_named_port_must_have_the_packet_protocol_and_the_rule_protocol(cluster: World) -> None:
    rules = [rule("Allow", protocol="UDP", destination={"ports": ["http", "dns"]})]
    c = cluster(*named_ports(), calico_np("web", "p", selector="role == 'web'", ingress=rules))
    isolated(ingress(c, "web/client", "web/new", "8080/TCP"))  # http is TCP, the rule is UDP
    by_rule(ingress(c, "web/client", "web/new", "53/UDP"), "CalicoNetworkPolicy web/p ingress[0]")
    isolated(ingress(c, "web/client", "web/new", "53/TCP"))


def test_rules_with_ports_never_match_icmp(cluster: World) -> None:
    c = cluster(*named_ports(), calico_np("web", "p", selector="role == 'web'", ingress=[rule("Allow", destination={"ports": ["http"]})]))
    isolated(ingress(c, "web/client", "web/old", "ICMP"))


def test_a_source_port_criterion_matches_when_it_holds_for_every_ephemeral_port(cluster: World) -> None:
    """The client's source port is one of 32768-60999 (Linux's default ip_local_port_range): a
    criterion holding for all of them matches, one holding for none or only some does not."""
    rules = [
        rule("Deny", protocol="TCP", source={"ports": ["1:1023"]}),  # none of them
        rule("Deny", protocol="TCP", source={"ports": ["40000:50000"]}),  # some: read as not matching
        rule("Deny", protocol="TCP", source={"notPorts": ["32768:40000"]}),  # some
        rule("Allow", protocol="TCP", source={"ports": ["1024:65535"]}),  # all of them
        rule("Allow", protocol="UDP", source={"notPorts": [53, "61000:65535"]}),  # all of them
    ]
    c = cluster(*base(), gnp("p", selector="app == 'a'", types=["Ingress", "Egress"], ingress=rules, egress=rules))
    by_rule(ingress(c, "dev/b", "dev/a"), "GlobalNetworkPolicy p ingress[3]")
    by_rule(egress(c, "dev/a", "dev/b"), "GlobalNetworkPolicy p egress[3]")
    by_rule(ingress(c, "dev/b", "dev/a", "53/UDP"), "GlobalNetworkPolicy p ingress[4]")


def test_a_named_source_port_resolves_on_the_source_endpoint(cluster: World) -> None:
    objects = [
        namespace("web"),
        pod("web", "server", {"role": "web"}, "10.1.0.1"),
        pod("web", "low", {"role": "client"}, "10.1.0.2", ports=[("src", 80, "TCP")]),
        pod("web", "high", {"role": "client"}, "10.1.0.3", ports=[("src", 40000, "TCP")]),
        pod("web", "none", {"role": "client"}, "10.1.0.4"),
    ]
    # notPorts excludes the source's own port of that name: 80 leaves every ephemeral port, 40000
    # splits them (not matching); a source without the name excludes nothing.
    rules = [rule("Allow", protocol="TCP", source={"notPorts": ["src"]})]
    c = cluster(*objects, calico_np("web", "p", selector="role == 'web'", ingress=rules))
    by_rule(ingress(c, "web/low", "web/server"), "CalicoNetworkPolicy web/p ingress[0]")
    by_rule(ingress(c, "web/none", "web/server"), "CalicoNetworkPolicy web/p ingress[0]")
    isolated(ingress(c, "web/high", "web/server"))
    # A named port is one number: it never holds for every ephemeral port.
    c = cluster(*objects, calico_np("web", "p", selector="role == 'web'", ingress=[rule("Allow", source={"ports": ["src"]})]))
    for client in ("web/low", "web/high", "web/none"):
        isolated(ingress(c, client, "web/server"))


# --- 2.8.5 services ---------------------------------------------------------------------------


def services() -> list[dict[str, Any]]:
    return [
        *base(),
        pod("prod", "web-1", {"app": "web"}, "10.0.2.11", ports=[("http", 8080, "TCP")]),
        pod("prod", "web-2", {"app": "web"}, "10.0.2.12", ports=[("http", 9090, "TCP")]),
        service("prod", "web", {"app": "web"}, [{"port": 80, "targetPort": "http", "protocol": "TCP"}]),
        service("prod", "db", {"app": "a"}, [{"port": 5432, "protocol": "TCP"}]),
    ]


def test_egress_to_a_service_matches_its_backends_on_their_target_port(cluster: World) -> None:
    p = calico_np("dev", "p", selector="app == 'b'", egress=[rule("Allow", **destination(services={"name": "db", "namespace": "prod"}))])
    c = cluster(*services(), p)
    by_rule(egress(c, "dev/b", "prod/a", "5432/TCP"), "CalicoNetworkPolicy dev/p egress[0]")
    isolated(egress(c, "dev/b", "prod/a", "80/TCP"))  # not the backend's target port
    isolated(egress(c, "dev/b", "prod/b", "5432/TCP"))  # not a backend


def test_a_named_target_port_of_a_service_resolves_per_backend_pod(cluster: World) -> None:
    p = calico_np("dev", "p", selector="app == 'b'", egress=[rule("Allow", **destination(services={"name": "web", "namespace": "prod"}))])
    c = cluster(*services(), p)
    by_rule(egress(c, "dev/b", "prod/web-1", "8080/TCP"), "CalicoNetworkPolicy dev/p egress[0]")
    by_rule(egress(c, "dev/b", "prod/web-2", "9090/TCP"), "CalicoNetworkPolicy dev/p egress[0]")
    isolated(egress(c, "dev/b", "prod/web-1", "9090/TCP"))
    isolated(egress(c, "dev/b", "prod/web-2", "80/TCP"))


def test_ingress_from_a_service_matches_its_backend_addresses_on_any_port(cluster: World) -> None:
    p = calico_np("dev", "p", selector="app == 'a'", ingress=[rule("Allow", **source(services={"name": "web", "namespace": "prod"}))])
    c = cluster(*services(), p)
    for port in ("80/TCP", "22/TCP", "53/UDP"):
        by_rule(ingress(c, "prod/web-1", "dev/a", port), "CalicoNetworkPolicy dev/p ingress[0]")
    by_rule(ingress(c, "prod/web-2", "dev/a"), "CalicoNetworkPolicy dev/p ingress[0]")
    isolated(ingress(c, "prod/a", "dev/a"))


def test_a_service_backend_on_the_host_network_is_matched_by_its_address(cluster: World) -> None:
    objects = [
        *base(),
        pod("prod", "agent", {"app": "agent"}, "192.168.0.20", ports=[("metrics", 9100, "TCP")], hostNetwork=True),
        service("prod", "agent", {"app": "agent"}, [{"port": 80, "targetPort": "metrics", "protocol": "TCP"}]),
    ]
    to_agent = [rule("Allow", **destination(services={"name": "agent", "namespace": "prod"}))]
    from_agent = [rule("Allow", **source(services={"name": "agent", "namespace": "prod"}))]
    c = cluster(*objects, calico_np("dev", "p", selector="app == 'b'", egress=to_agent, ingress=from_agent))
    by_rule(egress(c, "dev/b", "prod/agent", "9100/TCP"), "CalicoNetworkPolicy dev/p egress[0]")
    isolated(egress(c, "dev/b", "prod/agent", "80/TCP"))
    by_rule(ingress(c, "prod/agent", "dev/b"), "CalicoNetworkPolicy dev/p ingress[0]")


def test_a_service_named_without_namespace_is_in_the_policy_namespace(cluster: World) -> None:
    objects = [*services(), pod("dev", "db", {"app": "db"}, "10.0.1.20"), service("dev", "db", {"app": "db"}, [{"port": 5432, "protocol": "TCP"}])]
    c = cluster(*objects, calico_np("dev", "p", selector="app == 'b'", egress=[rule("Allow", **destination(services={"name": "db"}))]))
    by_rule(egress(c, "dev/b", "dev/db", "5432/TCP"), "CalicoNetworkPolicy dev/p egress[0]")
    isolated(egress(c, "dev/b", "prod/a", "5432/TCP"))


# --- hostNetwork pods -------------------------------------------------------------------------


def test_host_network_pods_are_not_endpoints_and_selectors_never_match_them(cluster: World) -> None:
    objects = [*base(), pod("dev", "agent", {"app": "b"}, "192.168.0.20", hostNetwork=True)]
    c = cluster(*objects, gnp("p", selector="all()", ingress=[rule("Allow", **source(selector="app == 'b'"))]))
    assert c.ruleset.endpoint("dev/agent") is None  # type: ignore[arg-type]
    isolated(ingress(c, "dev/agent", "dev/a"))
    assert flow(c, "dev/a", "dev/agent").ingress.reason is Reason.NOT_AN_ENDPOINT



def test_a_negative_service_account_selector_in_a_rule_also_matches_network_sets(cluster: World) -> None:
    """Calico tests serviceAccounts.selector on the pcsa. labels, which network sets lack:
    `role != 'batch'` holds for a network set, so its addresses match the rule's source."""
    c = cluster(
        *base(),
        {
            "apiVersion": V3,
            "kind": "GlobalNetworkSet",
            "metadata": {"name": "partners", "labels": {"kind": "partner"}},
            "spec": {"nets": ["198.51.100.0/24"]},
        },
        gnp(
            "by-account",
            selector="app == 'a'",
            types=["Ingress"],
            ingress=[{"action": "Allow", "source": {"serviceAccounts": {"selector": "role != 'batch'"}}}],
        ),
    )
    allowed = c.verdict("198.51.100.7", "dev/a")
    assert allowed.allowed and str(allowed.ingress.rule) == "GlobalNetworkPolicy by-account ingress[0]"
    # An address no endpoint and no network set owns never matches a positive selector.
    assert not c.verdict(OUTSIDE, "dev/a").allowed
