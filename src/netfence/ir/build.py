"""build_ruleset(inventory) -> Ruleset: selectors resolved, defaults applied, tiers ordered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netfence.ir.admin import AdminBuilder
from netfence.ir.calico import CalicoBuilder
from netfence.ir.scope import Scope, host_endpoint_id
from netfence.ir.types import (
    Action,
    CidrBlock,
    EndpointInfo,
    EndpointKind,
    PeerMatch,
    PolicyRef,
    PolicyRules,
    PortMatch,
    Rule,
    RuleRef,
    Ruleset,
    Tier,
)
from netfence.model.admin import AdminTier
from netfence.model.calico import (
    ADMIN_TIER,
    ADMIN_TIER_ORDER,
    BASELINE_TIER,
    BASELINE_TIER_ORDER,
    DEFAULT_TIER,
    DEFAULT_TIER_ORDER,
    NETWORK_POLICY_ORDER,
    HostEndpoint,
    TierDefaultAction,
)
from netfence.model.endpoints import EndpointId, ExternalWorkload, Pod
from netfence.model.inventory import Inventory
from netfence.model.labels import Labels, LabelSelector
from netfence.model.policies import Direction, NetworkPolicy, Peer, PolicyPort, PolicyRule

DEFAULT_ALLOW_PROFILE = "projectcalico-default-allow"


def endpoint_info(pod: Pod) -> EndpointInfo:
    named = tuple(sorted((p.name, p.protocol, p.port) for p in pod.ports if p.name))
    return EndpointInfo(pod.id, pod.namespace, pod.name, pod.ips, pod.node, named)


def host_endpoint_info(hep: HostEndpoint) -> EndpointInfo:
    named = tuple(sorted((p.name, p.protocol, p.port) for p in hep.ports))
    # Unlike a pod, a host endpoint no policy selects is denied, unless it has the
    # default-allow profile (as automatic host endpoints do).
    default = None if DEFAULT_ALLOW_PROFILE in hep.profiles else Action.DENY
    return EndpointInfo(
        host_endpoint_id(hep.name), "", hep.name, hep.expected_ips, hep.node, named, EndpointKind.HOST, default
    )


def external_workload_info(workload: ExternalWorkload) -> EndpointInfo:
    named = tuple(sorted((p.name, p.protocol, p.port) for p in workload.ports if p.name))
    # Like a pod and unlike a HostEndpoint: a workload no policy selects is not restricted.
    # Listing a host in the inventory changes no verdict; a policy selecting it starts its
    # whitelist (what its own firewall then enforces: `netfence compile --host`).
    return EndpointInfo(
        workload.id, "", workload.name, workload.addresses, None, named, EndpointKind.EXTERNAL, Action.ALLOW
    )


@dataclass(frozen=True, slots=True)
class _TierSpec:
    name: str
    order: float | None
    end_action: Action | None


@dataclass
class _Placed:
    """A policy's rules for one direction, with its place inside its tier."""

    tier: str
    order: float | None
    rules: PolicyRules

    @property
    def key(self) -> tuple[bool, float, str, str, str]:
        ref = self.rules.ref
        return (self.order is None, self.order or 0.0, ref.name, ref.namespace or "", str(ref.kind))


def build_ruleset(inventory: Inventory) -> Ruleset:
    """The IR of every policy in the inventory, in one ordered list of tiers per direction.

    The order is Calico's: tiers by `order` (AdminNetworkPolicies in `kube-admin` at 1,000,
    Calico policies without a tier and Kubernetes NetworkPolicies in `default` at 1,000,000,
    the BaselineAdminNetworkPolicy in `kube-baseline` at 10,000,000, user tiers at their own
    order, a tier without order last); policies in a tier by order, then name.

    hostNetwork pods are not endpoints: policies never select them, and as peers they are only
    their node's address, which CIDR peers may match.
    """
    pods = [p for p in inventory.pods if not p.host_network]
    endpoints = [endpoint_info(p) for p in pods] + [host_endpoint_info(h) for h in inventory.host_endpoints]
    endpoints += [external_workload_info(w) for w in inventory.external_workloads]
    by_id = {e.id: e for e in endpoints}
    resolver = _Resolver(inventory, pods)
    calico = CalicoBuilder(inventory, lambda: Scope(inventory, pods), by_id)
    admin = AdminBuilder(inventory, resolver.pods, resolver.namespaces)

    # Calico's built-in tiers always exist (Calico policies may name them too); a tier no policy
    # is placed in is left out below.
    specs = {
        DEFAULT_TIER: _TierSpec(DEFAULT_TIER, DEFAULT_TIER_ORDER, Action.DENY),
        ADMIN_TIER: _TierSpec(ADMIN_TIER, ADMIN_TIER_ORDER, None),
        BASELINE_TIER: _TierSpec(BASELINE_TIER, BASELINE_TIER_ORDER, None),
    }
    for tier in inventory.tiers:
        end = Action.DENY if tier.default_action is TierDefaultAction.DENY else None
        specs[tier.name] = _TierSpec(tier.name, tier.order, end)

    placed: dict[Direction, list[_Placed]] = {Direction.INGRESS: [], Direction.EGRESS: []}
    for policy in inventory.policies:
        for direction in policy.policy_types:
            rules = _policy_rules(resolver, policy, direction)
            placed[direction].append(_Placed(DEFAULT_TIER, NETWORK_POLICY_ORDER, rules))
    for calico_policy in inventory.calico_policies:
        ref = PolicyRef(calico_policy.kind, calico_policy.namespace, calico_policy.name)
        for direction in calico_policy.types:
            rules = calico.policy_rules(calico_policy, direction, ref)
            placed[direction].append(_Placed(calico_policy.tier, calico_policy.order, rules))
    for admin_policy in inventory.admin_policies:
        ref = PolicyRef(admin_policy.kind, None, admin_policy.name)
        tier_name = ADMIN_TIER if admin_policy.tier is AdminTier.ADMIN else BASELINE_TIER
        order = float(admin_policy.priority) if admin_policy.priority is not None else None
        for direction in Direction:
            if admin_policy.rules(direction):
                rules = admin.policy_rules(admin_policy, direction, ref)
                placed[direction].append(_Placed(tier_name, order, rules))

    ordered = sorted(specs.values(), key=lambda t: (t.order is None, t.order or 0.0, t.name))

    def tiers(direction: Direction) -> tuple[Tier, ...]:
        out = []
        for spec in ordered:
            members = sorted((p for p in placed[direction] if p.tier == spec.name), key=lambda p: p.key)
            if members:
                out.append(Tier(spec.name, tuple(p.rules for p in members), spec.end_action, spec.order))
        return tuple(out)

    return Ruleset(endpoints=tuple(endpoints), ingress=tiers(Direction.INGRESS), egress=tiers(Direction.EGRESS))


class _Resolver:
    """Selector -> endpoint sets, evaluating each selector once per distinct label set.

    Pods are grouped by namespace and label set (replicas share one), equal label sets share
    one object, and results are cached per selector by that object's identity: a selector is
    hashed once per question, not once per pod.
    """

    def __init__(self, inventory: Inventory, pods: list[Pod]) -> None:
        self.inventory = inventory
        interned: dict[Labels, Labels] = {}
        groups: dict[str, dict[Labels, list[EndpointId]]] = {}
        for pod in pods:
            labels = interned.setdefault(pod.labels, pod.labels)
            groups.setdefault(pod.namespace, {}).setdefault(labels, []).append(pod.id)
        self.groups = {ns: list(by_labels.items()) for ns, by_labels in groups.items()}
        self._pod_cache: dict[LabelSelector, dict[int, bool]] = {}
        self._namespace_cache: dict[LabelSelector, dict[str, bool]] = {}

    def pods(
        self, namespaces: Callable[[str], bool] | str, selector: LabelSelector | None
    ) -> frozenset[EndpointId]:
        """Pods of the namespaces (one name, or a predicate) whose labels match `selector`
        (None: every pod)."""
        if isinstance(namespaces, str):
            chosen = [(namespaces, self.groups.get(namespaces, []))]
        else:
            chosen = [(ns, groups) for ns, groups in self.groups.items() if namespaces(ns)]
        out: list[EndpointId] = []
        if selector is None or selector.is_empty:
            for _, groups in chosen:
                for _, ids in groups:
                    out.extend(ids)
            return frozenset(out)
        cache = self._pod_cache.setdefault(selector, {})
        for _, groups in chosen:
            for labels, ids in groups:
                hit = cache.get(id(labels))
                if hit is None:
                    hit = cache[id(labels)] = selector.matches(labels)
                if hit:
                    out.extend(ids)
        return frozenset(out)

    def namespaces(self, selector: LabelSelector) -> Callable[[str], bool]:
        cache = self._namespace_cache.setdefault(selector, {})

        def test(name: str) -> bool:
            hit = cache.get(name)
            if hit is None:
                hit = cache[name] = selector.matches(self.inventory.namespace(name).labels)
            return hit

        return test


def _policy_rules(resolver: _Resolver, policy: NetworkPolicy, direction: Direction) -> PolicyRules:
    ref = PolicyRef(policy.kind, policy.namespace, policy.name)
    subjects = resolver.pods(policy.namespace, policy.pod_selector)
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
    in_namespaces: Callable[[str], bool] | str
    if peer.namespace_selector is None:
        # NetworkPolicy: podSelector alone selects pods in the policy's own namespace.
        in_namespaces = policy.namespace
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
