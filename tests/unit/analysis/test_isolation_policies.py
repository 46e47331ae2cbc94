"""isolate_namespaces / isolate_pods: which policies, and what they mean once analyzed."""

from __future__ import annotations

import dataclasses
import re
from ipaddress import ip_address, ip_network

from hypothesis import given, settings
from hypothesis import strategies as st

from netfence.analysis.isolate import (
    MANAGED_BY,
    NAMESPACE_NODES_POLICY_NAME,
    NAMESPACE_POLICY_NAME,
    STACK_NODES_POLICY_NAME,
    GroupBy,
    isolate_namespaces,
    isolate_pods,
    node_addresses,
    stack_policy_name,
)
from netfence.analysis.matrix import compute_matrix
from netfence.ir.build import build_ruleset
from netfence.model.endpoints import NAMESPACE_NAME_LABEL, Namespace, Node, Pod
from netfence.model.inventory import Inventory
from netfence.model.labels import Labels, LabelSelector, Operator, Requirement
from netfence.model.policies import Direction, IPBlock, NetworkPolicy, Peer, PolicyRule
from netfence.model.ports import FlowPort, Protocol

KEY = "field.cattle.io/projectId"
HTTP = FlowPort(Protocol.TCP, 80)


def ns(name: str, project: str | None = None) -> Namespace:
    labels = {NAMESPACE_NAME_LABEL: name} | ({KEY: project} if project is not None else {})
    return Namespace(name, Labels(labels))


def pod(namespace: str, name: str, ip: str, labels: dict[str, str] | None = None, host_network: bool = False) -> Pod:
    return Pod(namespace, name, Labels(labels or {}), (ip_address(ip),), host_network=host_network)


def reachability(inventory: Inventory, extra: tuple[NetworkPolicy, ...]) -> dict[tuple[str, str], bool]:
    with_policies = dataclasses.replace(inventory, policies=inventory.policies + extra)
    ruleset = build_ruleset(with_policies)
    matrix = compute_matrix(ruleset, [HTTP])
    ids = [e.id for e in matrix.endpoints]
    return {(a, b): bool(matrix.allowed[0, i, j]) for i, a in enumerate(ids) for j, b in enumerate(ids)}


# --- namespace label --------------------------------------------------------------------------


def test_each_project_namespace_gets_one_policy_admitting_its_project_and_the_system_project() -> None:
    inventory = Inventory(
        namespaces=(ns("a1", "p-a"), ns("b1", "p-b"), ns("sys", "p-sys"), ns("plain")),
        pods=(pod("a1", "web", "10.0.1.1"), pod("gone", "x", "10.0.7.1")),
    )
    isolation = isolate_namespaces(inventory, KEY, "p-sys", nodes=False)
    assert isolation.by is GroupBy.NAMESPACE_LABEL
    assert [(p.namespace, p.name) for p in isolation.policies] == [("a1", NAMESPACE_POLICY_NAME), ("b1", NAMESPACE_POLICY_NAME)]
    policy = isolation.policies[0]
    assert policy.pod_selector == LabelSelector()
    assert policy.policy_types == frozenset({Direction.INGRESS})
    assert policy.egress == ()
    assert policy.ingress == (
        PolicyRule(
            peers=(
                Peer(namespace_selector=LabelSelector.from_labels({KEY: "p-a"})),
                Peer(namespace_selector=LabelSelector.from_labels({KEY: "p-sys"})),
            )
        ),
    )
    assert isolation.labels == MANAGED_BY
    # `gone` holds a pod but was not declared: it carries only its name label.
    assert isolation.unlabelled == ("gone", "plain")
    assert isolation.exempt == ("sys",)


def test_without_a_system_project_only_the_own_project_is_admitted() -> None:
    isolation = isolate_namespaces(Inventory(namespaces=(ns("a1", "p-a"),)), KEY, nodes=False)
    assert isolation.policies[0].ingress[0].peers == (Peer(namespace_selector=LabelSelector.from_labels({KEY: "p-a"})),)
    assert isolation.exempt == ()


def test_node_addresses_come_from_nodes_and_host_network_pods_v4_first_in_order() -> None:
    inventory = Inventory(
        pods=(
            pod("kube-system", "proxy", "192.168.0.20", host_network=True),
            pod("a1", "web", "10.0.1.1"),
        ),
        nodes=(
            Node("n2", addresses=(ip_address("fd00::2"), ip_address("192.168.0.3"))),
            Node("n1", addresses=(ip_address("192.168.0.20"),)),
        ),
    )
    assert node_addresses(inventory) == (ip_address("192.168.0.3"), ip_address("192.168.0.20"), ip_address("fd00::2"))


def test_the_nodes_policy_admits_each_node_address_alone() -> None:
    inventory = Inventory(
        namespaces=(ns("a1", "p-a"),),
        nodes=(Node("n1", addresses=(ip_address("192.168.0.3"), ip_address("fd00::2"))),),
    )
    nodes = isolate_namespaces(inventory, KEY).policies[1]
    assert nodes.name == NAMESPACE_NODES_POLICY_NAME
    assert nodes.pod_selector == LabelSelector()
    assert nodes.ingress == (
        PolicyRule(
            peers=(
                Peer(ip_block=IPBlock(ip_network("192.168.0.3/32"))),
                Peer(ip_block=IPBlock(ip_network("fd00::2/128"))),
            )
        ),
    )


def test_no_nodes_policy_without_addresses_or_when_not_asked() -> None:
    inventory = Inventory(namespaces=(ns("a1", "p-a"),), nodes=(Node("n1", addresses=(ip_address("192.168.0.3"),)),))
    assert [p.name for p in isolate_namespaces(inventory, KEY, nodes=False).policies] == [NAMESPACE_POLICY_NAME]
    bare = isolate_namespaces(Inventory(namespaces=(ns("a1", "p-a"),)), KEY)
    assert [p.name for p in bare.policies] == [NAMESPACE_POLICY_NAME]
    assert bare.node_addresses == () and bare.nodes_requested


def test_system_namespaces_get_no_policy_at_all() -> None:
    inventory = Inventory(namespaces=(ns("sys", "p-sys"),), nodes=(Node("n1", addresses=(ip_address("192.168.0.3"),)),))
    assert isolate_namespaces(inventory, KEY, "p-sys").policies == ()


def test_host_network_pods_of_isolated_namespaces_are_reported() -> None:
    inventory = Inventory(
        namespaces=(ns("a1", "p-a"), ns("plain")),
        pods=(pod("a1", "agent", "192.168.0.3", host_network=True), pod("plain", "agent", "192.168.0.4", host_network=True)),
    )
    assert isolate_namespaces(inventory, KEY).host_network == ("a1/agent",)


PROJECTS = st.sampled_from([None, "p-a", "p-b", "p-sys"])


@settings(max_examples=60, deadline=None)
@given(st.lists(PROJECTS, min_size=1, max_size=6), st.booleans())
def test_a_pod_reaches_another_exactly_when_project_isolation_allows_it(
    projects: list[str | None], with_system: bool
) -> None:
    names = [f"ns{i}" for i in range(len(projects))]
    inventory = Inventory(
        namespaces=tuple(ns(n, p) for n, p in zip(names, projects)),
        pods=tuple(pod(n, "web", f"10.0.{i}.1") for i, n in enumerate(names)),
    )
    system = "p-sys" if with_system else None
    reach = reachability(inventory, isolate_namespaces(inventory, KEY, system).policies)
    project = dict(zip(names, projects))
    for (source, destination), allowed in reach.items():
        src, dst = project[source.split("/")[0]], project[destination.split("/")[0]]
        isolated = dst is not None and dst != system
        expected = source == destination or not isolated or src == dst or (system is not None and src == system)
        assert allowed == expected, (source, destination, projects, system)


# --- pod label --------------------------------------------------------------------------------


def test_one_stack_policy_per_namespace_and_value_admitting_the_stack_everywhere() -> None:
    inventory = Inventory(
        pods=(
            pod("ns1", "web", "10.0.1.1", {"stack": "shop"}),
            pod("ns1", "db", "10.0.1.2", {"stack": "shop"}),
            pod("ns2", "api", "10.0.2.1", {"stack": "shop"}),
            pod("ns2", "blog", "10.0.2.2", {"stack": "blog"}),
            pod("ns2", "tool", "10.0.2.3"),
            pod("ns3", "agent", "192.168.0.3", {"stack": "infra"}, host_network=True),
        )
    )
    isolation = isolate_pods(inventory, "stack")
    assert isolation.by is GroupBy.POD_LABEL
    assert [(p.namespace, p.name) for p in isolation.policies] == [
        ("ns1", STACK_NODES_POLICY_NAME),
        ("ns1", "netfence-stack-shop"),
        ("ns2", "netfence-stack-blog"),
        ("ns2", STACK_NODES_POLICY_NAME),
        ("ns2", "netfence-stack-shop"),
    ]
    shop = isolation.policies[1]
    members = LabelSelector.from_labels({"stack": "shop"})
    assert shop.pod_selector == members
    assert shop.ingress == (PolicyRule(peers=(Peer(pod_selector=members, namespace_selector=LabelSelector()),)),)
    nodes = isolation.policies[0]
    assert nodes.pod_selector == LabelSelector((Requirement("stack", Operator.EXISTS),))
    assert nodes.ingress == (PolicyRule(peers=(Peer(ip_block=IPBlock(ip_network("192.168.0.3/32"))),)),)
    assert isolation.unlabelled == ("ns2/tool",)
    assert isolation.host_network == ("ns3/agent",)


def test_stacks_reach_only_themselves_and_unlabelled_pods_are_open_but_admitted_by_none() -> None:
    inventory = Inventory(
        pods=(
            pod("ns1", "web", "10.0.1.1", {"stack": "shop"}),
            pod("ns2", "api", "10.0.2.1", {"stack": "shop"}),
            pod("ns2", "blog", "10.0.2.2", {"stack": "blog"}),
            pod("ns2", "tool", "10.0.2.3"),
        )
    )
    reach = reachability(inventory, isolate_pods(inventory, "stack", nodes=False).policies)
    assert reach[("ns1/web", "ns2/api")] and reach[("ns2/api", "ns1/web")]
    assert not reach[("ns2/blog", "ns2/api")] and not reach[("ns2/api", "ns2/blog")]
    assert not reach[("ns2/tool", "ns1/web")] and reach[("ns1/web", "ns2/tool")]


# --- names ------------------------------------------------------------------------------------

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def test_stack_policy_names_are_the_value_when_it_is_a_name() -> None:
    assert stack_policy_name("shop") == "netfence-stack-shop"
    assert stack_policy_name("shop-2") == "netfence-stack-shop-2"


def test_stack_policy_names_get_a_hash_when_the_value_had_to_change() -> None:
    assert re.fullmatch(r"netfence-stack-my-blog-[0-9a-f]{8}", stack_policy_name("My_Blog"))
    assert re.fullmatch(r"netfence-stack-shop-v2-[0-9a-f]{8}", stack_policy_name("shop.v2"))
    assert re.fullmatch(r"netfence-stack-[0-9a-f]{8}", stack_policy_name(""))
    assert stack_policy_name("nodes") != STACK_NODES_POLICY_NAME
    assert stack_policy_name("a_b") != stack_policy_name("a-b")


@given(st.from_regex(r"(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?", fullmatch=True))
def test_every_label_value_gives_a_valid_policy_name(value: str) -> None:
    name = stack_policy_name(value)
    assert DNS_SUBDOMAIN.fullmatch(name) and len(name) <= 253, name
