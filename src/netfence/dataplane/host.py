"""IR -> the firewall of one host outside the cluster (an external workload), for any backend.

A host enforces its own side of every flow: its ingress on traffic addressed to it (the input
hook) and its egress on traffic it sends (the output hook). compile_host() walks the tiers as
the evaluator does and produces backend-neutral chains of rules; nft/host.py writes them as an
nftables table, iptables/render.py as `ipset restore` and `iptables-restore` input.

Layout, per direction that some policy restricts:

- the hook accepts established and related packets first (the firewall is stateful), drops
  invalid ones, accepts loopback (a host reaching itself is always allowed), and sends packets
  to (ingress) or from (egress) one of the host's addresses to the first tier chain;
- one chain per tier selecting the host, rules in tier order: allow accepts, deny drops, pass
  goes to the next tier's chain, log logs and goes on; the end of a tier is its end action
  (NetworkPolicy isolation: drop) or the next tier;
- after the last tier, `<direction>_end` applies the host's default (an external workload:
  allow). Every chain ends in a verdict, so nothing ever falls back to a hook.

Peers are address sets (the peer's addresses, `except` and exclusions subtracted) per IP
version. Named ports resolve against the host on ingress and against each destination on egress;
named source ports against each source on ingress (the peer split by the sources' named ports, as
destinations are on egress) and against the host on egress. Source ports are the packet's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from netfence.dataplane import spans as sp
from netfence.dataplane.spans import Spans
from netfence.errors import NetfenceError
from netfence.ir.types import (
    Action,
    by_named_ports,
    CidrBlock,
    EndpointInfo,
    EndpointKind,
    PeerMatch,
    PortMatch,
    Rule,
    RuleRef,
    Ruleset,
    port_spans,
    resolve_named_ports,
)
from netfence.model.endpoints import EndpointId, IPAddress
from netfence.model.policies import Direction
from netfence.model.ports import PORTED_PROTOCOLS, Protocol, RuleProtocol

PREFIX = {Direction.INGRESS: "in", Direction.EGRESS: "eg"}
#: What a packet's own address is on each side: its destination on ingress, its source on egress.
LOCAL_FIELD = {Direction.INGRESS: "daddr", Direction.EGRESS: "saddr"}
REMOTE_FIELD = {Direction.INGRESS: "saddr", Direction.EGRESS: "daddr"}

Range = tuple[int, int]


class Verdict(StrEnum):
    ACCEPT = "accept"
    DROP = "drop"
    #: Continue in `target` (a pass to the next tier, or the end of the walk).
    GOTO = "goto"
    #: Log and go on with the next rule.
    LOG = "log"


@dataclass(frozen=True, slots=True)
class AddressSet:
    name: str
    family: int
    spans: tuple[Range, ...]


@dataclass(frozen=True, slots=True)
class Match:
    """Every test of one kernel rule (all must hold); empty fields test nothing."""

    #: 4 or 6 when the rule is for one IP version only (address tests imply theirs).
    family: int | None = None
    #: The other end's address (source on ingress, destination on egress).
    remote: AddressSet | None = None
    #: The host's own address, when the rule holds for some of them only.
    local: AddressSet | None = None
    protocol: RuleProtocol | None = None
    #: None of these (only without `protocol`).
    not_protocols: tuple[RuleProtocol, ...] = ()
    #: With `protocol` one of PORTED_PROTOCOLS (a header with ports).
    dports: tuple[Range, ...] = ()
    not_dports: tuple[Range, ...] = ()
    sports: tuple[Range, ...] = ()
    not_sports: tuple[Range, ...] = ()
    #: (type, code or None); the protocol says ICMP or ICMPv6.
    icmp: tuple[int, int | None] | None = None
    not_icmp: tuple[int, int | None] | None = None


@dataclass(frozen=True, slots=True)
class HostRule:
    match: Match
    verdict: Verdict
    #: The chain a GOTO continues in.
    target: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class HostChain:
    name: str
    direction: Direction
    rules: tuple[HostRule, ...]


@dataclass(frozen=True, slots=True)
class HostFirewall:
    endpoint: EndpointId
    addresses: tuple[IPAddress, ...]
    sets: tuple[AddressSet, ...]
    chains: tuple[HostChain, ...]
    #: The first chain of each direction; None: the direction is not restricted.
    ingress: str | None
    egress: str | None

    def entry(self, direction: Direction) -> str | None:
        return self.ingress if direction is Direction.INGRESS else self.egress


class HostError(NetfenceError):
    """The host cannot be compiled (it is not an external workload of the ruleset)."""


def compile_host(ruleset: Ruleset, endpoint_id: EndpointId) -> HostFirewall:
    """The firewall enforcing `endpoint_id`'s side of every flow, on that host."""
    host = ruleset.endpoint(endpoint_id)
    if host is None or host.kind is not EndpointKind.EXTERNAL:
        raise HostError(f"{endpoint_id} is not an external workload of the ruleset")
    builder = _Builder(ruleset, host)
    entries = {direction: builder.direction(direction) for direction in (Direction.INGRESS, Direction.EGRESS)}
    return HostFirewall(
        host.id,
        host.ips,
        tuple(sorted(builder.sets.values(), key=lambda s: s.name)),
        tuple(builder.chains),
        entries[Direction.INGRESS],
        entries[Direction.EGRESS],
    )


@dataclass
class _Builder:
    ruleset: Ruleset
    host: EndpointInfo
    sets: dict[str, AddressSet] = field(default_factory=dict)
    chains: list[HostChain] = field(default_factory=list)

    def direction(self, direction: Direction) -> str | None:
        tiers = self.ruleset.tiers(direction)
        selecting = [[p for p in tier.policies if self.host.id in p.subjects] for tier in tiers]
        used = [i for i, policies in enumerate(selecting) if policies]
        default = self.host.default_action or self.ruleset.default_action
        if not used and default is Action.ALLOW:
            return None
        prefix = PREFIX[direction]
        end = f"{prefix}_end"
        names = [f"{prefix}_t{t}" for t in used]
        start = len(self.chains)
        for position, t in enumerate(used):
            onward = names[position + 1] if position + 1 < len(used) else end
            rules: list[HostRule] = []
            for policy in selecting[t]:
                for rule in policy.rules:
                    verdict, target = {
                        Action.ALLOW: (Verdict.ACCEPT, None),
                        Action.DENY: (Verdict.DROP, None),
                        Action.PASS: (Verdict.GOTO, onward),
                        Action.LOG: (Verdict.LOG, None),
                    }[rule.action]
                    note = str(rule.ref)
                    rules.extend(HostRule(m, verdict, target, note) for m in self._matches(direction, rule))
            tier = tiers[t]
            if tier.end_action is Action.DENY:
                rules.append(HostRule(Match(), Verdict.DROP, note=f"{tier.name}: isolated, no rule allowed"))
            elif tier.end_action is Action.ALLOW:
                rules.append(HostRule(Match(), Verdict.ACCEPT, note=f"{tier.name}: end of tier"))
            else:
                rules.append(HostRule(Match(), Verdict.GOTO, onward, f"{tier.name}: no rule decided"))
            self.chains.append(HostChain(names[position], direction, tuple(rules)))
        if not names or any(r.target == end for chain in self.chains[start:] for r in chain.rules):
            verdict = Verdict.ACCEPT if default is Action.ALLOW else Verdict.DROP
            note = f"no tier decided: the default ({default})"
            self.chains.append(HostChain(end, direction, (HostRule(Match(), verdict, note=note),)))
        return names[0] if names else end

    # --- one IR rule ------------------------------------------------------------------------

    def _matches(self, direction: Direction, rule: Rule) -> list[Match]:
        families = (4, 6) if rule.ip_version is None else (rule.ip_version,)
        remote = None if rule.peers is None else self._peers(rule.peers)
        own = sp.of_addresses(self.host.ips)
        local: Spans | None = None
        if rule.local is not None:
            local = sp.intersect(self._peers((rule.local,)), own)
        ingress = direction is Direction.INGRESS
        # The remote end resolves names itself when it is the destination (egress, named ports)
        # or the source (ingress, named source ports): the peer is split by its named ports.
        if not (_names_ports(rule) if not ingress else rule.names_source_port):
            destination = self.host if ingress else None
            source = None if ingress else self.host
            variants = [(remote, _l4(rule, destination, resolve=ingress, source=source))]
        else:
            # Each remote endpoint resolves the names itself; addresses of no endpoint resolve nothing.
            variants = []
            for members in by_named_ports(self.ruleset.endpoints):
                addresses = sp.of_addresses(ip for e in members for ip in e.ips)
                destination, source = (self.host, members[0]) if ingress else (members[0], self.host)
                variants.append((sp.intersect(remote, addresses), _l4(rule, destination, resolve=True, source=source)))
            outside = sp.subtract(remote, sp.of_addresses(ip for e in self.ruleset.endpoints for ip in e.ips))
            destination, source = (self.host, None) if ingress else (None, self.host)
            variants.append((outside, _l4(rule, destination, resolve=True, source=source)))
        out: list[Match] = []
        for part, (peer, alternatives) in enumerate(variants):
            if not alternatives:
                continue
            sides: dict[int, tuple[AddressSet | None, AddressSet | None]] = {}
            for family in families:
                if (peer is not None and not peer.get(family)) or (local is not None and not local.get(family)):
                    continue  # no address of this family can match
                remote_set = local_set = None
                if peer is not None and not sp.is_everything(peer[family], family):
                    remote_set = self._set(direction, rule.ref, f"{part}|peer", family, peer[family])
                if local is not None and local[family] != own.get(family, []):
                    local_set = self._set(direction, rule.ref, f"{part}|local", family, local[family])
                sides[family] = (remote_set, local_set)
            # Only the families the host has addresses in reach the chains at all.
            sides = {f: tests for f, tests in sides.items() if own.get(f)}
            if sides and len(sides) == sum(1 for f in (4, 6) if own.get(f)) and set(sides.values()) == {(None, None)}:
                sides = {0: (None, None)}  # no address test in any family the host has: one rule
            for family, (remote_set, local_set) in sides.items():
                for alternative in alternatives:
                    match = _normal(Match(family or None, remote_set, local_set, **alternative))
                    if match is not None:
                        out.append(match)
        return out

    def _peers(self, peers: Sequence[PeerMatch]) -> Spans:
        return sp.union(*(self._peer(p) for p in peers))

    def _peer(self, peer: PeerMatch) -> Spans:
        found = sp.everything() if peer.any_address else self._group(peer.endpoints, peer.blocks)
        for group in peer.also:
            found = sp.intersect(found, self._group(group.endpoints, group.blocks))
        for group in peer.excluded:
            found = sp.subtract(found, self._group(group.endpoints, group.blocks))
        return found

    def _group(self, endpoints: frozenset[EndpointId], blocks: Sequence[CidrBlock]) -> Spans:
        addresses = [ip for e in endpoints if (info := self.ruleset.endpoint(e)) is not None for ip in info.ips]
        parts = [sp.of_addresses(addresses)]
        parts.extend(sp.without_excepts(block.network, block.excepts) for block in blocks)
        return sp.union(*parts)

    def _set(self, direction: Direction, ref: RuleRef, part: str, family: int, found: Sequence[Range]) -> AddressSet:
        digest = hashlib.sha1(f"{ref}|{part}|{family}".encode()).hexdigest()[:10]  # noqa: S324 - a name
        name = base = f"{PREFIX[direction]}_{digest}"
        # One rule of a policy can become several IR rules with one RuleRef (a Service's ways
        # in, split by port): each keeps its own addresses.
        suffix = 1
        while name in self.sets and self.sets[name].spans != tuple(found):
            suffix += 1
            name = f"{base}_{suffix}"
        made = AddressSet(name, family, tuple(found))
        self.sets[name] = made
        return made


def _names_ports(rule: Rule) -> bool:
    return any(entry.name is not None for entry in (*(rule.ports or ()), *rule.not_ports))


def _ranges(entries: Sequence[PortMatch]) -> tuple[Range, ...]:
    return tuple(sorted({(e.start, e.end if e.end is not None else e.start) for e in entries if e.start is not None}))


def _key(protocol: RuleProtocol | None) -> str:
    return str(protocol)


def _l4(
    rule: Rule, destination: EndpointInfo | None, *, resolve: bool, source: EndpointInfo | None
) -> list[dict[str, Any]]:
    """The protocol, port and ICMP tests of a rule as alternatives (any may match), each with at
    most one protocol, so that every backend can write a port or ICMP test next to it.

    Semantics are the evaluator's (ir/types.py): port entries test their own protocol (None: any
    protocol that has ports), named ones resolve on the destination (source ports: on `source`,
    None resolving none), an ICMP test holds for ICMP packets only, a negated entry excludes only
    packets of its protocol.
    """
    negated = resolve_named_ports(rule.not_ports, destination) if resolve else [p for p in rule.not_ports if p.name is None]
    # Only entries that can match a packet: a port test needs a protocol with ports; an entry
    # without protocol and without port matches nothing.
    negated = [e for e in negated if e.protocol is not None or e.start is not None]
    # Positive alternatives: (protocol or None for any, port ranges or None for any port).
    positive: dict[str, tuple[RuleProtocol | None, list[Range] | None]] = {}
    if rule.ports is None:
        positive[_key(rule.protocol)] = (rule.protocol, None)
    else:
        chosen = resolve_named_ports(rule.ports, destination) if resolve else [p for p in rule.ports if p.name is None]
        for entry in chosen:
            if entry.start is None and entry.protocol is None:
                continue  # matches nothing
            for protocol in (entry.protocol,) if entry.protocol is not None else PORTED_PROTOCOLS:
                if rule.protocol is not None and protocol != rule.protocol:
                    continue
                if entry.start is not None and protocol not in PORTED_PROTOCOLS:
                    continue  # a port test on a protocol without ports never holds
                _, ranges = positive.get(_key(protocol), (protocol, []))
                if entry.start is None or ranges is None:
                    positive[_key(protocol)] = (protocol, None)
                else:
                    ranges.append((entry.start, entry.end if entry.end is not None else entry.start))
                    positive[_key(protocol)] = (protocol, ranges)
    excluded = {rule.not_protocol} if rule.not_protocol is not None else set()
    out: list[dict[str, Any]] = []
    for only, ranges in positive.values():
        if only is not None:
            out.extend(_one_protocol(rule, only, ranges, negated, excluded, source))
            continue
        # Any protocol: the protocols the negations and ICMP tests are about get an alternative
        # of their own; the rest is every other protocol.
        split: list[RuleProtocol] = []
        if any(e.protocol is None for e in negated) or rule.source_ports or rule.not_source_ports:
            split.extend(PORTED_PROTOCOLS)
        split.extend(e.protocol for e in negated if e.protocol is not None)
        if rule.icmp is not None or rule.not_icmp is not None:
            split.append(Protocol.ICMP)
        split = [q for q in dict.fromkeys(split) if q not in excluded]
        for q in split:
            out.extend(_one_protocol(rule, q, None, negated, excluded, source))
        # An ICMP test holds for ICMP packets only, a source port test for protocols with ports.
        if rule.icmp is None and not rule.source_ports:
            out.append({"not_protocols": tuple(sorted({*excluded, *split}, key=_key))})
    return out


def _one_protocol(
    rule: Rule,
    protocol: RuleProtocol,
    ranges: list[Range] | None,
    negated: Sequence[PortMatch],
    excluded: set[RuleProtocol],
    source: EndpointInfo | None,
) -> list[dict[str, Any]]:
    """The alternative for packets of one protocol (nothing when the rule cannot match them)."""
    if protocol in excluded:
        return []
    if rule.icmp is not None and protocol != Protocol.ICMP:
        return []
    if rule.source_ports and protocol not in PORTED_PROTOCOLS:
        return []
    sources = _sources(rule, protocol, source) if isinstance(protocol, Protocol) and protocol in PORTED_PROTOCOLS else {}
    if sources is None:
        return []  # no source port can match
    found: dict[str, Any] = {**sources, "protocol": protocol}
    if ranges is not None:
        found["dports"] = tuple(sorted(set(ranges)))
    if protocol in PORTED_PROTOCOLS:
        mine = [e for e in negated if e.protocol in (None, protocol)]
        if any(e.start is None for e in mine):
            return []  # every port of the protocol is excluded
        if mine:
            found["not_dports"] = _ranges(mine)
    elif any(e.protocol == protocol and e.start is None for e in negated):
        return []
    if protocol == Protocol.ICMP:
        if rule.icmp is not None:
            found["icmp"] = (rule.icmp.type, rule.icmp.code)
        if rule.not_icmp is not None:
            found["not_icmp"] = (rule.not_icmp.type, rule.not_icmp.code)
    return [found]


def _sources(rule: Rule, protocol: Protocol, source: EndpointInfo | None) -> dict[str, Any] | None:
    """The source-port tests for packets of one protocol with ports (names resolved on `source`);
    None when no source port can match."""
    found: dict[str, Any] = {}
    if rule.source_ports:
        ranges = port_spans(rule.source_ports, protocol, source)
        if not ranges:
            return None
        found["sports"] = tuple(sorted(set(ranges)))
    if rule.not_source_ports:
        ranges = port_spans(rule.not_source_ports, protocol, source)
        if ranges:
            found["not_sports"] = tuple(sorted(set(ranges)))
    return found


def _normal(match: Match) -> Match | None:
    """The same tests with the address family an ICMP test implies, or None when nothing can match."""
    icmp_family = None
    if isinstance(match.protocol, Protocol):
        icmp_family = {Protocol.ICMP: 4, Protocol.ICMPV6: 6}.get(match.protocol)
    if icmp_family is not None:
        if match.family is not None and match.family != icmp_family:
            return None
        if match.remote is None and match.local is None:
            match = replace(match, family=icmp_family)
    return match
