"""Isolation policies: the NetworkPolicies that let each group reach only itself.

`isolate_namespaces` gives project isolation the way Rancher's network policy manager does
(rancher/rancher, pkg/controllers/managementuser/networkpolicy/netpol.go): in every namespace
that carries the project label, one policy selecting all pods and admitting ingress only from
namespaces with the same label value and from the system project's namespaces; a second one
admitting the nodes' addresses (Rancher's `hn-nodes`), so hostNetwork pods such as ingress
controllers still reach isolated pods. Namespaces without the label and those of the system
project get nothing, as in Rancher.

`isolate_pods` gives stack isolation (Rancher 1.x's "same stack may talk, all else denied"):
per namespace and label value, a policy selecting the pods of that stack and admitting ingress
from pods of the same stack in any namespace.

Both are pure: Inventory in, frozen values out. They read the model rather than the IR because
they decide what to declare, not what is reachable; the reachability of what they generate is
judged like any other input, through the IR.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, ip_network

from netfence.model.endpoints import EndpointId, IPAddress
from netfence.model.inventory import Inventory
from netfence.model.labels import Labels, LabelSelector, Operator, Requirement
from netfence.model.policies import Direction, IPBlock, NetworkPolicy, Peer, PolicyRule

#: Put on every generated policy, so `kubectl get netpol -A -l app.kubernetes.io/managed-by=netfence`
#: finds them (and `kubectl apply --prune -l ...` can remove stale ones).
MANAGED_BY = Labels({"app.kubernetes.io/managed-by": "netfence"})

#: Rancher's `np-default`: the namespace's pods admit ingress from their own group only.
NAMESPACE_POLICY_NAME = "netfence-isolation"
#: Rancher's `hn-nodes`: the namespace's pods admit ingress from the nodes' addresses.
NAMESPACE_NODES_POLICY_NAME = "netfence-isolation-nodes"
#: `netfence-stack-<value>`, one per namespace and stack.
STACK_POLICY_PREFIX = "netfence-stack-"
#: The stacked pods of a namespace admit ingress from the nodes' addresses.
STACK_NODES_POLICY_NAME = "netfence-stack-nodes"


class GroupBy(StrEnum):
    """What a group is: namespaces sharing a label value, or pods sharing a label value."""

    NAMESPACE_LABEL = "namespace-label"
    POD_LABEL = "pod-label"


@dataclass(frozen=True, slots=True)
class Isolation:
    """The generated policies and what was left out of them, for the notes shown beside them."""

    by: GroupBy
    key: str
    #: Sorted by namespace, then name.
    policies: tuple[NetworkPolicy, ...]
    #: Metadata labels of every generated policy.
    labels: Labels
    #: Namespaces (by namespace label) or pods (by pod label) without the label: not isolated.
    unlabelled: tuple[str, ...]
    #: Namespaces of the system group (`system` value): not isolated, admitted everywhere.
    exempt: tuple[str, ...] = ()
    #: The `system` value given, when one was.
    system: str | None = None
    #: The addresses the nodes policies admit; empty: no nodes policy was generated.
    node_addresses: tuple[IPAddress, ...] = ()
    #: Whether nodes policies were asked for.
    nodes_requested: bool = True
    #: hostNetwork pods a group holds: NetworkPolicy never selects them, so they stay unisolated.
    host_network: tuple[EndpointId, ...] = ()


def isolate_namespaces(
    inventory: Inventory, key: str, system: str | None = None, *, nodes: bool = True
) -> Isolation:
    """Project isolation: namespaces with label `key` reach only namespaces with the same value.

    Namespaces whose value is `system` are left alone (Rancher exempts its system project) and
    are admitted by every other group.
    """
    names = sorted({ns.name for ns in inventory.namespaces} | {p.namespace for p in inventory.pods})
    addresses = node_addresses(inventory) if nodes else ()
    policies: list[NetworkPolicy] = []
    unlabelled: list[str] = []
    exempt: list[str] = []
    isolated: set[str] = set()
    for name in names:
        value = inventory.namespace(name).labels.get(key)
        if value is None:
            unlabelled.append(name)
            continue
        if value == system:
            exempt.append(name)
            continue
        isolated.add(name)
        # NetworkPolicy: a peer with only namespaceSelector admits every pod of the matching
        # namespaces; listing the system group as a second peer ORs it in.
        peers = [Peer(namespace_selector=LabelSelector.from_labels({key: value}))]
        if system is not None:
            peers.append(Peer(namespace_selector=LabelSelector.from_labels({key: system})))
        policies.append(_ingress_only(name, NAMESPACE_POLICY_NAME, LabelSelector(), tuple(peers)))
        if addresses:
            policies.append(_nodes_policy(name, NAMESPACE_NODES_POLICY_NAME, LabelSelector(), addresses))
    host_network = [p.id for p in inventory.pods if p.host_network and p.namespace in isolated]
    return Isolation(
        by=GroupBy.NAMESPACE_LABEL,
        key=key,
        policies=_sorted(policies),
        labels=MANAGED_BY,
        unlabelled=tuple(unlabelled),
        exempt=tuple(exempt),
        system=system,
        node_addresses=addresses,
        nodes_requested=nodes,
        host_network=tuple(sorted(host_network)),
    )


def isolate_pods(inventory: Inventory, key: str, *, nodes: bool = True) -> Isolation:
    """Stack isolation: pods with label `key` reach only pods with the same value, in any namespace.

    A stack spans namespaces, as a Rancher 1.x stack spanned its environment. Pods without the
    label are not selected, so they stay reachable from everywhere, and no stack admits them.
    """
    addresses = node_addresses(inventory) if nodes else ()
    stacks: dict[str, set[str]] = {}
    unlabelled: list[str] = []
    host_network: list[EndpointId] = []
    for pod in inventory.pods:
        value = pod.labels.get(key)
        if value is None:
            unlabelled.append(pod.id)
        elif pod.host_network:
            host_network.append(pod.id)
        else:
            stacks.setdefault(pod.namespace, set()).add(value)
    policies: list[NetworkPolicy] = []
    for namespace, values in stacks.items():
        for value in values:
            members = LabelSelector.from_labels({key: value})
            # NetworkPolicy: podSelector and namespaceSelector in one peer are ANDed; the empty
            # namespaceSelector widens the podSelector from the policy's namespace to all of them.
            peer = Peer(pod_selector=members, namespace_selector=LabelSelector())
            policies.append(_ingress_only(namespace, stack_policy_name(value), members, (peer,)))
        if addresses:
            stacked = LabelSelector((Requirement(key, Operator.EXISTS),))
            policies.append(_nodes_policy(namespace, STACK_NODES_POLICY_NAME, stacked, addresses))
    return Isolation(
        by=GroupBy.POD_LABEL,
        key=key,
        policies=_sorted(policies),
        labels=MANAGED_BY,
        unlabelled=tuple(sorted(unlabelled)),
        node_addresses=addresses,
        nodes_requested=nodes,
        host_network=tuple(sorted(host_network)),
    )


def node_addresses(inventory: Inventory) -> tuple[IPAddress, ...]:
    """Every node address the input shows: Node status.addresses and hostNetwork pods' IPs.

    A hostNetwork pod's IP is its node's IP, so a dump without Node objects still shows the
    nodes that run one. IPv4 first, each family in address order.
    """
    found: set[IPAddress] = {a for node in inventory.nodes for a in node.addresses}
    found.update(ip for pod in inventory.pods if pod.host_network for ip in pod.ips)
    return tuple(sorted(found, key=lambda a: (a.version, int(a))))


_NOT_IN_NAME = re.compile(r"[^a-z0-9-]+")


def stack_policy_name(value: str) -> str:
    """`netfence-stack-<value>`: a valid object name for any label value, distinct per value.

    A value that is not already lowercase letters, digits and `-` (label values may also hold
    capitals, `_` and `.`), is empty, or is `nodes` (taken by the nodes policy) gets a hash of
    the value appended.
    """
    slug = _NOT_IN_NAME.sub("-", value.lower()).strip("-")
    if slug and slug == value and slug != "nodes":
        return STACK_POLICY_PREFIX + slug
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{STACK_POLICY_PREFIX}{slug}-{digest}" if slug else f"{STACK_POLICY_PREFIX}{digest}"


def _ingress_only(namespace: str, name: str, subject: LabelSelector, peers: tuple[Peer, ...]) -> NetworkPolicy:
    # policyTypes [Ingress] with one rule: the subject is isolated for ingress and admits only
    # `peers`; egress stays unrestricted, as in Rancher's np-default.
    return NetworkPolicy(
        namespace=namespace,
        name=name,
        pod_selector=subject,
        policy_types=frozenset({Direction.INGRESS}),
        ingress=(PolicyRule(peers=peers),),
    )


def _nodes_policy(
    namespace: str, name: str, subject: LabelSelector, addresses: Iterable[IPAddress]
) -> NetworkPolicy:
    blocks = tuple(
        Peer(ip_block=IPBlock(ip_network(f"{a}/{32 if isinstance(a, IPv4Address) else 128}"))) for a in addresses
    )
    return _ingress_only(namespace, name, subject, blocks)


def _sorted(policies: Iterable[NetworkPolicy]) -> tuple[NetworkPolicy, ...]:
    return tuple(sorted(policies, key=lambda p: (p.namespace, p.name)))
