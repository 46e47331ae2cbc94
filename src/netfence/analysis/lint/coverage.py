"""Rules that never decide: an earlier rule matches every flow they match.

For each IR rule R, in evaluation order, the first earlier rule E that covers it is found: E is
evaluated before R for every endpoint R applies to (an earlier rule of the same policy, a rule of
an earlier policy of the tier, or an Allow/Deny rule of an earlier tier that no Pass rule of its
tier precedes; Pass counts only in R's own tier), and every flow R matches, E matches. Then R never decides anything: it is
shadowed when E's action differs, redundant when it is the same. Rules of two different
Kubernetes NetworkPolicies are not compared: their union is the point.

Covering is judged one earlier rule at a time and on the inventory's endpoints, conservatively
where it cannot be exact (a block must sit inside one block of E; peers with `also`/`excluded`
groups of E cover no block), so a rule covered only by several rules together is not reported.
Ports are compared exactly: both rules' port criteria are constant between the boundaries of
their ranges and of their named ports as the destinations resolve them, so one port of every
such interval, per protocol, decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from netfence.analysis.lint.context import Context
from netfence.ir.types import Action, CidrBlock, EndpointInfo, PeerMatch, PolicyRules, Rule, RuleRef
from netfence.model.endpoints import EndpointId, IPAddress
from netfence.model.policies import Direction, PolicyKind
from netfence.model.ports import FlowPort, Protocol

DECIDING = (Action.ALLOW, Action.DENY, Action.PASS)
PORTED = (Protocol.TCP, Protocol.UDP, Protocol.SCTP, Protocol.UDPLITE)


@dataclass(frozen=True)
class Covered:
    """The model rule `rule` never decides: `by` matches every flow it matches, first."""

    rule: RuleRef
    action: Action
    by: RuleRef
    by_action: Action

    @property
    def redundant(self) -> bool:
        return self.action is self.by_action


def covered_rules(context: Context) -> list[Covered]:
    return context.memo("coverage", lambda: _covered(context))


@dataclass(frozen=True)
class _Placed:
    tier: int
    policy: PolicyRules
    rule: Rule
    #: A Pass rule comes before it in its tier: flows that Pass skip it and reach later tiers.
    after_pass: bool
    #: The endpoints the rule applies to (its policy's subjects that its local match admits).
    local: frozenset[EndpointId]


def _covered(context: Context) -> list[Covered]:
    found: list[Covered] = []
    for direction in Direction:
        earlier: list[_Placed] = []
        verdicts: dict[RuleRef, list[tuple[Rule, _Placed | None]]] = {}
        for t, tier in enumerate(context.ruleset.tiers(direction)):
            passed = False
            for policy in tier.policies:
                for rule in policy.rules:
                    if rule.action not in DECIDING:
                        continue
                    if rule.constrains_source_port:
                        # Neither judged nor covering (its source ports are not compared), but a
                        # Pass on source ports still lets flows skip the rest of its tier.
                        passed |= rule.action is Action.PASS
                        continue
                    placed = _Placed(t, policy, rule, passed, _local(context, policy, rule))
                    passed |= rule.action is Action.PASS
                    if placed.local and _matches_some(context, placed, direction):
                        by = next((e for e in earlier if _covers(context, e, placed, direction)), None)
                        verdicts.setdefault(rule.ref, []).append((rule, by))
                    earlier.append(placed)
        for ref, judged in verdicts.items():
            if all(by is not None for _, by in judged):
                rule, by = judged[0]
                assert by is not None
                found.append(Covered(ref, rule.action, by.rule.ref, by.rule.action))
    return found


def _ips(context: Context, endpoint: EndpointId, version: int | None) -> tuple[IPAddress, ...]:
    return tuple(a for a in context.ips(endpoint) if version is None or a.version == version)


def _local(context: Context, policy: PolicyRules, rule: Rule) -> frozenset[EndpointId]:
    chosen = set()
    for subject in policy.subjects:
        addresses = _ips(context, subject, rule.ip_version)
        if rule.ip_version is not None and not addresses:
            continue
        if rule.local is None or rule.local.matches(subject, addresses):
            chosen.add(subject)
    return frozenset(chosen)


def _empty(peer: PeerMatch) -> bool:
    return not peer.any_address and not peer.endpoints and not peer.blocks


def _matches_some(context: Context, placed: _Placed, direction: Direction) -> bool:
    rule = placed.rule
    if rule.peers is not None and all(_empty(p) for p in rule.peers):
        return False
    space = PortSpace(context, direction, placed, (rule,))
    return any(hit(rule, port, d) for d in space.destinations for port in space.flows)


def _eligible(earlier: _Placed, later: _Placed) -> bool:
    if earlier.tier != later.tier and (earlier.rule.action is Action.PASS or earlier.after_pass):
        return False  # a Pass of an earlier tier hands over to later tiers, past what follows it
    kinds = (earlier.policy.ref.kind, later.policy.ref.kind)
    if kinds == (PolicyKind.NETWORK_POLICY,) * 2 and earlier.policy.ref != later.policy.ref:
        return False  # NetworkPolicies add up; a rule of another one is not a mistake
    return True


def _covers(context: Context, e: _Placed, r: _Placed, direction: Direction) -> bool:
    if not _eligible(e, r) or not r.local <= e.policy.subjects:
        return False
    rule, earlier = r.rule, e.rule
    if earlier.ip_version is not None and earlier.ip_version != rule.ip_version:
        return False
    if earlier.local is not None:
        local = earlier.local
        if not all(local.matches(s, _ips(context, s, earlier.ip_version)) for s in r.local):
            return False
    if not _covers_remote(context, earlier, rule):
        return False
    space = PortSpace(context, direction, r, (rule, earlier))
    return all(
        hit(earlier, port, d) for d in space.destinations for port in space.flows if hit(rule, port, d)
    )


def _covers_remote(context: Context, earlier: Rule, rule: Rule) -> bool:
    if earlier.peers is None or any(_universal(p) for p in earlier.peers):
        return True
    if rule.peers is None:
        return False
    for peer in rule.peers:
        if peer.any_address:
            return False
        for endpoint in peer.endpoints:
            addresses = _ips(context, endpoint, earlier.ip_version)
            if not any(e.matches(endpoint, addresses) for e in earlier.peers):
                return False
        for block in peer.blocks:
            if not any(_block_within(block, e) for e in earlier.peers):
                return False
    return True


def _universal(peer: PeerMatch) -> bool:
    return peer.any_address and not peer.also and not peer.excluded


def _block_within(block: CidrBlock, peer: PeerMatch) -> bool:
    if peer.also or peer.excluded:
        return False
    return peer.any_address or any(_subset(block, outer) for outer in peer.blocks)


def _subset(inner: CidrBlock, outer: CidrBlock) -> bool:
    """inner minus its excepts lies inside outer minus its excepts (sufficient test)."""
    a, b = inner.network, outer.network
    if a.version != b.version or not a.subnet_of(b):  # type: ignore[arg-type]
        return False
    for hole in outer.excepts:
        if hole.version != a.version or not hole.overlaps(a):
            continue
        if not any(e.version == hole.version and hole.subnet_of(e) for e in inner.excepts):  # type: ignore[arg-type]
            return False
    return True


# --- ports ----------------------------------------------------------------------------------------


def hit(rule: Rule, port: FlowPort, destination: EndpointInfo | None) -> bool:
    """Whether the rule's protocol, port and ICMP criteria admit the flow's port."""
    if not rule.matches_port(port, destination):
        return False
    return rule.ports is None or any(entry.matches(port, destination) for entry in rule.ports)


class PortSpace:
    """Flow ports and destinations enough to compare some rules' port criteria exactly, for the
    flows one placed rule matches: destinations are the endpoints named ports resolve on (the
    local endpoints for ingress, the remote ones for egress; None for an address outside), one
    per distinct set of named ports."""

    def __init__(self, context: Context, direction: Direction, placed: _Placed, rules: Sequence[Rule]) -> None:
        entries = [e for rule in rules for e in (*(rule.ports or ()), *rule.not_ports)]
        named = any(e.name is not None for e in entries)
        self.destinations: list[EndpointInfo | None] = [None]
        if named:
            self.destinations = _distinct(context, _destination_ids(context, direction, placed))
        numbers = {1}
        for entry in entries:
            if entry.name is not None:
                for d in self.destinations:
                    for name, protocol, number in d.named_ports if d is not None else ():
                        if name == entry.name:
                            numbers.update((number, number + 1))
            elif entry.start is not None:
                numbers.update((entry.start, (entry.end if entry.end is not None else entry.start) + 1))
        ports = sorted(n for n in numbers if 1 <= n <= 65535)
        self.flows = [FlowPort(p, n) for p in PORTED for n in ports]
        self.flows += [FlowPort(Protocol.ICMP, None), FlowPort(Protocol.ICMPV6, None)]


def _destination_ids(context: Context, direction: Direction, placed: _Placed) -> Iterable[EndpointId | None]:
    if direction is Direction.INGRESS:
        return placed.local
    peers = placed.rule.peers
    every = [e.id for e in context.ruleset.endpoints]
    if peers is None:
        return [*every, None]
    found: list[EndpointId | None] = []
    for peer in peers:
        if peer.any_address or peer.blocks:
            found += [e for e in every if peer.matches(e, context.ips(e))] + [None]
        else:
            found += sorted(peer.endpoints)
    return found


def _distinct(context: Context, ids: Iterable[EndpointId | None]) -> list[EndpointInfo | None]:
    chosen: dict[object, EndpointInfo | None] = {}
    for endpoint in ids:
        info = context.endpoint(endpoint) if endpoint is not None else None
        key = info.named_ports if info is not None else None
        chosen.setdefault(key, info)
    return list(chosen.values()) or [None]
