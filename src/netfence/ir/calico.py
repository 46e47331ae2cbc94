"""Calico NetworkPolicy and GlobalNetworkPolicy -> IR policy rules.

A rule's source and destination become the remote peer and the local match (which is which
depends on the direction); selector fields are combined as Calico does it (namespace scope,
service accounts, network sets), ports always test the destination port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import cached_property

from netfence.ir.scope import Member, Scope
from netfence.ir.types import (
    Action,
    AddressGroup,
    CidrBlock,
    EndpointInfo,
    EndpointKind,
    IcmpMatch,
    PeerMatch,
    PolicyRef,
    PolicyRules,
    PortMatch,
    Rule,
    RuleRef,
)
from netfence.model.calico import CalicoAction, CalicoPolicy, CalicoPort, CalicoRule, EntityRule
from netfence.model.calico import IcmpMatch as WireIcmp
from netfence.model.endpoints import EndpointId, IPAddress, Pod
from netfence.model.inventory import Inventory
from netfence.model.labels import Labels
from netfence.model.policies import Direction
from netfence.model.ports import FlowPort, Protocol, RuleProtocol

_NO_LABELS = Labels()

ACTIONS = {
    CalicoAction.ALLOW: Action.ALLOW,
    CalicoAction.DENY: Action.DENY,
    CalicoAction.PASS: Action.PASS,
    CalicoAction.LOG: Action.LOG,
}


class CalicoBuilder:
    def __init__(
        self, inventory: Inventory, scope: Callable[[], Scope], endpoints: dict[EndpointId, EndpointInfo]
    ) -> None:
        self.inventory = inventory
        self._make_scope = scope
        self.endpoints = endpoints

    @cached_property
    def scope(self) -> Scope:
        """Built on first use: a cluster without Calico policies never pays for the labels."""
        return self._make_scope()

    def subjects(self, policy: CalicoPolicy) -> frozenset[EndpointId]:
        scope = self.scope

        def applies(member: Member) -> bool:
            if member.endpoint is None:
                return False  # network sets are never subjects
            if policy.namespace is not None:
                # A namespaced policy selects the pods of its namespace only.
                if not member.is_pod or member.namespace != policy.namespace:
                    return False
            elif (policy.do_not_track or policy.pre_dnat) and (member.is_pod or member.kind == "external"):
                return False  # untracked and pre-DNAT policies apply to host endpoints only
            scoped = policy.namespace_selector is not None or policy.service_account_selector is not None
            if scoped and not member.is_pod:
                return self._selects_host_endpoint(policy, member)
            if not scope.member_matches(policy.selector, member):
                return False
            if policy.namespace_selector is not None:
                labels = member.namespace_labels
                if labels is None or not scope.matches(policy.namespace_selector, labels):
                    return False
            if policy.service_account_selector is not None:
                account = member.account_labels
                if account is None or not scope.matches(policy.service_account_selector, account):
                    return False
            return True

        members = scope.by_namespace.get(policy.namespace, []) if policy.namespace is not None else scope.members
        return frozenset(m.endpoint for m in members if m.endpoint is not None and applies(m))

    def _selects_host_endpoint(self, policy: CalicoPolicy, member: Member) -> bool:
        """Whether a GlobalNetworkPolicy with a namespaceSelector or serviceAccountSelector applies
        to a host endpoint.

        Calico rewrites those selectors onto the pcns./pcsa. labels, which a host endpoint does not
        carry (so `!has(k)` or `k != 'v'` hold for it), and then reads every `all()` of the policy's
        selectors as "has a namespace" or "has a service account", which it has not.
        """
        scope = self.scope
        if policy.selector.expr is not None and not scope.member_matches(policy.selector, member, all_=False):
            return False
        return all(
            scope.matches(selector, Labels(), all_=False)
            for selector in (policy.namespace_selector, policy.service_account_selector)
            if selector is not None
        )

    def policy_rules(self, policy: CalicoPolicy, direction: Direction, ref: PolicyRef) -> PolicyRules:
        rules: list[Rule] = []
        for index, rule in enumerate(policy.rules(direction)):
            rules.extend(self._rule(policy, RuleRef(ref, direction, index), rule))
        return PolicyRules(ref, self.subjects(policy), tuple(rules))

    # --- one rule ---------------------------------------------------------------------------

    def _rule(self, policy: CalicoPolicy, ref: RuleRef, rule: CalicoRule) -> list[Rule]:
        if ref.direction is Direction.INGRESS:
            remote, local = rule.source, rule.destination
        else:
            remote, local = rule.destination, rule.source
        protocol = rule.protocol
        base = Rule(
            ref,
            ACTIONS[rule.action],
            peers=None,
            ports=_ports(rule.destination.ports, protocol),
            not_ports=_ports(rule.destination.not_ports, protocol) or (),
            protocol=protocol,
            not_protocol=rule.not_protocol,
            icmp=_icmp(rule.icmp),
            not_icmp=_icmp(rule.not_icmp),
            source_ports=_ports(rule.source.ports, protocol) or (),
            not_source_ports=_ports(rule.source.not_ports, protocol) or (),
            ip_version=rule.ip_version,
            local=self._side(policy, local),
        )
        if remote.services is not None:
            rules = self._service_rules(base, remote, ref.direction)
            if ref.direction is Direction.EGRESS:
                rules = self._from_outside(policy, base, remote, rules)
            return rules
        peer = self._side(policy, remote)
        return [replace(base, peers=None if peer is None else (peer,))]

    def _side(self, policy: CalicoPolicy, entity: EntityRule) -> PeerMatch | None:
        """The addresses one side of a rule matches; None when the side places no constraint."""
        scope = self.scope
        positive: AddressGroup | None = None
        # The positive selector: namespace part && service accounts && selector (Calico adds the
        # namespace part only when the side has a selector field; a cluster-wide policy has none
        # unless namespaceSelector is given).
        scoped = entity.namespace_selector is not None or policy.namespace is not None
        if (
            entity.selector is not None
            or entity.service_accounts is not None
            or entity.namespace_selector is not None
            or (entity.not_selector is not None and scoped)
        ):
            tests: list[Callable[[Member], bool]] = []
            in_namespaces: Callable[[str | None], bool] | None = None
            if entity.namespace_selector is not None:
                in_namespaces = scope.in_namespaces(entity.namespace_selector)
            elif policy.namespace is not None:
                namespace = policy.namespace
                in_namespaces = lambda ns: ns == namespace  # noqa: E731
            accounts = entity.service_accounts
            if accounts is not None:
                if accounts.names:
                    names = set(accounts.names)
                    tests.append(lambda m: m.service_account in names)
                if accounts.selector is not None:
                    account_selector = accounts.selector
                    # Calico tests it on the pcsa. labels, which only pods carry: a network set or
                    # host endpoint is tested without labels (so `role != 'x'` matches it).
                    tests.append(lambda m: scope.matches(account_selector, m.account_labels or _NO_LABELS))
            if entity.selector is not None:
                selector = entity.selector
                tests.append(lambda m: scope.member_matches(selector, m))
            positive = scope.select(lambda m: all(t(m) for t in tests), in_namespaces)
        nets = AddressGroup(blocks=tuple(CidrBlock(n) for n in entity.nets)) if entity.nets else None
        excluded: list[AddressGroup] = []
        if entity.not_selector is not None:
            not_selector = entity.not_selector
            excluded.append(scope.select(lambda m: scope.member_matches(not_selector, m)))
        if entity.not_nets:
            excluded.append(AddressGroup(blocks=tuple(CidrBlock(n) for n in entity.not_nets)))
        if positive is None and nets is None and not excluded:
            return None
        if positive is not None:
            return PeerMatch(
                0, positive.endpoints, positive.blocks, also=(nets,) if nets else (), excluded=tuple(excluded)
            )
        if nets is not None:
            return PeerMatch(0, blocks=nets.blocks, excluded=tuple(excluded))
        return PeerMatch(0, any_address=True, excluded=tuple(excluded))

    def _service_rules(self, base: Rule, side: EntityRule, direction: Direction) -> list[Rule]:
        assert side.services is not None
        service = self.inventory.service(side.services.namespace, side.services.name)
        backends = self.inventory.backends(service) if service is not None else ()
        if direction is Direction.INGRESS:
            # Traffic from the service's endpoint pods, any source port.
            return [replace(base, peers=(self._backend_peer(backends),))]
        # Egress: traffic to the endpoint pods on their target port and protocol. Split the
        # backends by (protocol, number) so every IR rule pairs addresses with their port.
        assert service is not None or not backends
        groups: dict[tuple[Protocol, int], list[Pod]] = {}
        for pod in backends:
            info = self.endpoints.get(pod.id)
            for port in service.ports if service is not None else ():
                target = port.target_port if port.target_port is not None else port.port
                if isinstance(target, str):
                    number = next(
                        (c.port for c in pod.ports if c.name == target and c.protocol == port.protocol), None
                    )
                else:
                    number = target
                if number is None:
                    continue
                flow = FlowPort(port.protocol, number)
                if base.ports is not None and not any(entry.matches(flow, info) for entry in base.ports):
                    continue  # the rule's own ports leave this one out
                groups.setdefault((port.protocol, number), []).append(pod)
        return [
            replace(
                base,
                peers=(self._backend_peer(pods),),
                ports=(PortMatch(0, protocol, number, number),),
            )
            for (protocol, number), pods in sorted(groups.items())
        ]

    def _from_outside(self, policy: CalicoPolicy, base: Rule, side: EntityRule, rules: list[Rule]) -> list[Rule]:
        """An egress rule to a Service, for the external workloads the policy selects: they reach
        it the way a client outside the cluster does, on every node's address at the nodePort
        (NodePort and LoadBalancer Services; with externalTrafficPolicy Local only the nodes that
        run a backend forward it), on its load-balancer IPs and external IPs at its port. Pods
        and host endpoints keep `rules` (the backends on their target ports), and the workloads
        do not get those: they are not on the pod network's path to the backends.
        """
        assert side.services is not None
        subjects = self.subjects(policy)
        external = frozenset(s for s in subjects if self.endpoints[s].kind is EndpointKind.EXTERNAL)
        if not external:
            return rules
        inside = subjects - external
        out = [replace(rule, local=_also(rule.local, inside)) for rule in rules] if inside else []
        service = self.inventory.service(side.services.namespace, side.services.name)
        if service is None:
            return out
        nodes = self.inventory.nodes
        if service.external_traffic_policy == "Local":
            hosting = {pod.node for pod in self.inventory.backends(service)}
            nodes = tuple(node for node in nodes if node.name in hosting)
        groups: dict[tuple[Protocol, int], list[IPAddress]] = {}
        for port in service.ports:
            if base.protocol is not None and port.protocol != base.protocol:
                continue
            if service.type in ("NodePort", "LoadBalancer") and port.node_port is not None:
                groups.setdefault((port.protocol, port.node_port), []).extend(a for n in nodes for a in n.addresses)
            balancers = service.load_balancer_ips if service.type == "LoadBalancer" else ()
            groups.setdefault((port.protocol, port.port), []).extend((*balancers, *service.external_ips))
        for (protocol, number), addresses in sorted(groups.items()):
            if addresses:
                blocks = tuple(CidrBlock.of(a) for a in dict.fromkeys(addresses))
                out.append(
                    replace(
                        base,
                        peers=(PeerMatch(0, blocks=blocks),),
                        ports=(PortMatch(0, protocol, number, number),),
                        local=_also(base.local, external),
                    )
                )
        return out

    def _backend_peer(self, backends: Iterable[Pod]) -> PeerMatch:
        """The addresses of a Service's endpoint pods: hostNetwork ones (not endpoints) by address."""
        backends = tuple(backends)
        ids = frozenset(p.id for p in backends if p.id in self.endpoints)
        blocks = tuple(CidrBlock.of(ip) for p in backends if p.id not in self.endpoints for ip in p.ips)
        return PeerMatch(0, ids, blocks)


def _also(local: PeerMatch | None, endpoints: frozenset[EndpointId]) -> PeerMatch:
    """`local` narrowed to `endpoints` (the rule then applies to those subjects only)."""
    if local is None:
        return PeerMatch(0, endpoints)
    return replace(local, also=(*local.also, AddressGroup(endpoints)))


def _ports(entries: tuple[CalicoPort, ...], protocol: RuleProtocol | None) -> tuple[PortMatch, ...] | None:
    if not entries:
        return None
    return tuple(PortMatch(i, protocol, e.start, e.end, e.name) for i, e in enumerate(entries))


def _icmp(wire: WireIcmp | None) -> IcmpMatch | None:
    if wire is None or wire.type is None:
        return None
    return IcmpMatch(wire.type, wire.code)
