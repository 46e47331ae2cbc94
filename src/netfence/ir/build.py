"""build_ruleset(inventory) -> Ruleset: selectors resolved, defaults applied, tiers ordered."""

from __future__ import annotations

from collections.abc import Callable

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
from netfence.model.endpoints import EndpointId, Pod
from netfence.model.inventory import Inventory
from netfence.model.labels import Labels, LabelSelector
from netfence.model.policies import Direction, NetworkPolicy, Peer, PolicyPort, PolicyRule

NETWORK_POLICY_TIER = "networkpolicy"


def endpoint_info(pod: Pod) -> EndpointInfo:
    named = tuple(sorted((p.name, p.protocol, p.port) for p in pod.ports if p.name))
    return EndpointInfo(pod.id, pod.namespace, pod.name, pod.ips, pod.node, named)


def build_ruleset(inventory: Inventory) -> Ruleset:
    """The IR of every policy in the inventory.

    hostNetwork pods are not endpoints: policies never select them, and as peers they are only
    their node's address, which ipBlock peers may match.
    """
    pods = [p for p in inventory.pods if not p.host_network]
    resolver = _Resolver(inventory, pods)
    ingress: list[PolicyRules] = []
    egress: list[PolicyRules] = []
    for policy in inventory.policies:
        for direction, out in ((Direction.INGRESS, ingress), (Direction.EGRESS, egress)):
            if direction in policy.policy_types:
                out.append(_policy_rules(resolver, policy, direction))
    # NetworkPolicy: a pod that any policy selects for a direction is isolated for it; what no
    # rule of any of those policies allows is denied.
    return Ruleset(
        endpoints=tuple(endpoint_info(p) for p in pods),
        ingress=(Tier(NETWORK_POLICY_TIER, tuple(ingress), Action.DENY),),
        egress=(Tier(NETWORK_POLICY_TIER, tuple(egress), Action.DENY),),
    )


class _Resolver:
    """Selector -> endpoint sets, evaluating each selector once per distinct label set."""

    def __init__(self, inventory: Inventory, pods: list[Pod]) -> None:
        self.inventory = inventory
        self.by_namespace: dict[str, list[Pod]] = {}
        for pod in pods:
            self.by_namespace.setdefault(pod.namespace, []).append(pod)
        self._cache: dict[tuple[LabelSelector, Labels], bool] = {}

    def _matches(self, selector: LabelSelector, labels: Labels) -> bool:
        key = (selector, labels)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = selector.matches(labels)
        return hit

    def pods(self, namespaces: Callable[[str], bool], selector: LabelSelector | None) -> frozenset[EndpointId]:
        return frozenset(
            pod.id
            for namespace, pods in self.by_namespace.items()
            if namespaces(namespace)
            for pod in pods
            if selector is None or self._matches(selector, pod.labels)
        )

    def namespaces(self, selector: LabelSelector) -> Callable[[str], bool]:
        return lambda name: self._matches(selector, self.inventory.namespace(name).labels)


def _policy_rules(resolver: _Resolver, policy: NetworkPolicy, direction: Direction) -> PolicyRules:
    ref = PolicyRef(policy.kind, policy.namespace, policy.name)
    subjects = resolver.pods(lambda ns: ns == policy.namespace, policy.pod_selector)
    rules = tuple(
        _rule(resolver, policy, RuleRef(ref, direction, index), rule)
        for index, rule in enumerate(policy.rules(direction))
    )
    return PolicyRules(ref, subjects, rules)


def _rule(resolver: _Resolver, policy: NetworkPolicy, ref: RuleRef, rule: PolicyRule) -> Rule:
    peers = None
    if rule.peers is not None:
        peers = tuple(_peer(resolver, policy, i, peer) for i, peer in enumerate(rule.peers))
    ports = None
    if rule.ports is not None:
        ports = tuple(_port(i, port) for i, port in enumerate(rule.ports))
    return Rule(ref, Action.ALLOW, peers, ports)


def _peer(resolver: _Resolver, policy: NetworkPolicy, index: int, peer: Peer) -> PeerMatch:
    if peer.ip_block is not None:
        return PeerMatch(index, blocks=(CidrBlock(peer.ip_block.cidr, peer.ip_block.excepts),))
    if peer.namespace_selector is None:
        # NetworkPolicy: podSelector alone selects pods in the policy's own namespace.
        in_namespaces = lambda ns: ns == policy.namespace  # noqa: E731
    else:
        in_namespaces = resolver.namespaces(peer.namespace_selector)
    # namespaceSelector alone: every pod of the matching namespaces; both: AND.
    return PeerMatch(index, endpoints=resolver.pods(in_namespaces, peer.pod_selector))


def _port(index: int, port: PolicyPort) -> PortMatch:
    if isinstance(port.port, str):
        return PortMatch(index, port.protocol, name=port.port)
    if port.port is None:
        return PortMatch(index, port.protocol)
    return PortMatch(index, port.protocol, port.port, port.end_port if port.end_port is not None else port.port)
