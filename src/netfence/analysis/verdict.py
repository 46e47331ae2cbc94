"""evaluate(ruleset, flow) -> Verdict: the reference per-flow evaluator, with its reasons.

A flow between two endpoints needs the source's egress AND the destination's ingress. Each side
walks the tiers of its direction in order; the first rule that matches decides; a tier that
selects the endpoint but has no matching rule applies its end action; when no tier decided,
the ruleset's default applies (Kubernetes: allowed, the endpoint is not isolated).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from netfence.ir.types import Action, EndpointInfo, PolicyRef, Rule, RuleRef, Ruleset
from netfence.model.endpoints import IPAddress
from netfence.model.policies import Direction
from netfence.model.ports import FlowPort


@dataclass(frozen=True, slots=True)
class Party:
    """One side of a flow: an endpoint of the ruleset, or just addresses outside it."""

    label: str
    endpoint: EndpointInfo | None
    addresses: tuple[IPAddress, ...]

    @classmethod
    def of(cls, endpoint: EndpointInfo) -> Party:
        return cls(endpoint.id, endpoint, endpoint.ips)

    @classmethod
    def outside(cls, address: IPAddress) -> Party:
        return cls(str(address), None, (address,))


@dataclass(frozen=True, slots=True)
class Flow:
    source: Party
    destination: Party
    port: FlowPort


class Reason(StrEnum):
    #: A rule matched and decided (its action is the verdict).
    RULE = "rule"
    #: Policies select the endpoint, none of their rules matched: the tier's end action.
    ISOLATED = "isolated"
    #: No policy selects the endpoint in this direction.
    NOT_ISOLATED = "not-isolated"
    #: This side is not an endpoint policy applies to (outside the inventory, hostNetwork).
    NOT_AN_ENDPOINT = "not-an-endpoint"
    #: A pod reaching itself is always allowed.
    SELF = "self"


@dataclass(frozen=True, slots=True)
class SideVerdict:
    direction: Direction
    endpoint: str | None
    allowed: bool
    reason: Reason
    #: Every policy selecting the endpoint for this direction, in evaluation order.
    policies: tuple[PolicyRef, ...] = ()
    rule: RuleRef | None = None
    #: Which entry of the rule's from/to and ports matched (None: the rule has none, so all).
    peer_index: int | None = None
    port_index: int | None = None
    tier: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    flow: Flow
    egress: SideVerdict
    ingress: SideVerdict

    @property
    def allowed(self) -> bool:
        return self.egress.allowed and self.ingress.allowed


def evaluate(ruleset: Ruleset, flow: Flow) -> Verdict:
    src, dst = flow.source, flow.destination
    if src.endpoint is not None and dst.endpoint is not None and src.endpoint.id == dst.endpoint.id:
        return Verdict(
            flow,
            SideVerdict(Direction.EGRESS, src.label, True, Reason.SELF),
            SideVerdict(Direction.INGRESS, dst.label, True, Reason.SELF),
        )
    return Verdict(
        flow,
        _side(ruleset, Direction.EGRESS, src, dst, flow),
        _side(ruleset, Direction.INGRESS, dst, src, flow),
    )


def _side(ruleset: Ruleset, direction: Direction, local: Party, remote: Party, flow: Flow) -> SideVerdict:
    if local.endpoint is None:
        return SideVerdict(direction, None, True, Reason.NOT_AN_ENDPOINT)
    me = local.endpoint.id
    destination = flow.destination.endpoint
    source = flow.source.endpoint
    tiers = ruleset.tiers(direction)
    selecting = tuple(p.ref for tier in tiers for p in tier.policies if me in p.subjects)
    for tier in tiers:
        policies = [p for p in tier.policies if me in p.subjects]
        if not policies:
            continue
        passed = False
        for policy in policies:
            for rule in policy.rules:
                if rule.action is Action.LOG:
                    continue  # Log records the packet and never decides
                hit = _match(rule, local, remote, flow.port, destination, source)
                if hit is None:
                    continue
                if rule.action is Action.PASS:
                    passed = True
                    break
                return SideVerdict(
                    direction, me, rule.action is Action.ALLOW, Reason.RULE, selecting, rule.ref, hit[0], hit[1], tier.name
                )
            if passed:
                break
        if not passed and tier.end_action is not None:
            return SideVerdict(direction, me, tier.end_action is Action.ALLOW, Reason.ISOLATED, selecting, tier=tier.name)
    default = local.endpoint.default_action or ruleset.default_action
    return SideVerdict(direction, me, default is Action.ALLOW, Reason.NOT_ISOLATED, selecting)


def _match(
    rule: Rule,
    local: Party,
    remote: Party,
    port: FlowPort,
    destination: EndpointInfo | None,
    source: EndpointInfo | None,
) -> tuple[int | None, int | None] | None:
    """(peer index, port index) of the first matching entries, or None when the rule does not match.

    The source port is the client's ephemeral one: a source-port criterion matches when it holds
    for every ephemeral port (Rule.matches_source_port), named ports resolved on the source."""
    if not rule.matches_port(port, destination):
        return None
    if not rule.matches_source_port(port.protocol, source):
        return None
    remote_addresses = remote.addresses
    local_addresses = local.addresses
    if rule.ip_version is not None:
        remote_addresses = tuple(a for a in remote_addresses if a.version == rule.ip_version)
        local_addresses = tuple(a for a in local_addresses if a.version == rule.ip_version)
        if not remote_addresses or not local_addresses:
            return None
    if rule.local is not None:
        local_id = local.endpoint.id if local.endpoint is not None else None
        if not rule.local.matches(local_id, local_addresses):
            return None
    peer_index: int | None = None
    if rule.peers is not None:
        remote_id = remote.endpoint.id if remote.endpoint is not None else None
        for peer in rule.peers:
            if peer.matches(remote_id, remote_addresses):
                peer_index = peer.index
                break
        else:
            return None
    port_index: int | None = None
    if rule.ports is not None:
        for entry in rule.ports:
            if entry.matches(port, destination):
                port_index = entry.index
                break
        else:
            return None
    return peer_index, port_index
