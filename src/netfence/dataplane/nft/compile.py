"""IR -> nftables objects for one node.

Layout (one `inet netfence` table per node):

- `forward` and `input` base chains: established/related accepted first (the dataplane is
  stateful), invalid dropped, then `iifname vmap @egress_ep` (the source pod's egress) and, on
  forward, `oifname vmap @ingress_ep` (the destination pod's ingress). The node reaching its own
  pods goes through `output`, which netfence leaves alone (kubelet probes always pass).
- Endpoints that no policy selects have no map entry: a verdict-map miss is the base chain's
  `policy accept`.
- Selected endpoints share chains by class: endpoints selected by the same policies (and, for
  ingress, with the same named ports) jump to the same chains, so rules grow with policies and
  classes, and pod churn changes map and set elements, not rules.
- One chain per class and tier; rules in tier order, first match decides: allow is `return`
  on egress (the destination's ingress must still run) and `accept` on ingress; deny is `drop`;
  pass is a `goto` to the class's next tier. The end of a tier that selected the endpoint is
  its end action (NetworkPolicy: drop).
- Peers are named address sets (ipv4_addr / ipv6_addr, interval) holding pod IPs and ipBlock
  CIDRs with `except` already subtracted. Named ports are resolved per destination: on ingress
  against the local pod, on egress by splitting the peer set by the number the name resolves to.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from netfence.dataplane.nft.objects import AddressSet, Chain, Rule, Table, VerdictMap
from netfence.ir.types import Action, EndpointInfo, PeerMatch, PolicyRules, PortMatch, RuleRef, Ruleset
from netfence.ir.types import Rule as IRRule
from netfence.model.endpoints import EndpointId
from netfence.model.policies import Direction, IPNetwork
from netfence.model.ports import Protocol

_L4 = {Protocol.TCP: "tcp", Protocol.UDP: "udp", Protocol.SCTP: "sctp"}
_PREFIX = {Direction.INGRESS: "in", Direction.EGRESS: "eg"}
_MAP = {Direction.INGRESS: "ingress_ep", Direction.EGRESS: "egress_ep"}


def interface_name(endpoint: EndpointId) -> str:
    """The host-side interface netfence assumes for a pod when none is given: `nf` + 11 hex
    digits of sha1("namespace.name") (the scheme Calico uses with its `cali` prefix)."""
    namespace, _, name = endpoint.partition("/")
    return "nf" + hashlib.sha1(f"{namespace}.{name}".encode()).hexdigest()[:11]  # noqa: S324 - a name, not security


def compile_node(ruleset: Ruleset, node: str | None, interfaces: Mapping[EndpointId, str] | None = None) -> Table:
    """The table enforcing the policies of `node`'s endpoints (node None: every endpoint)."""
    local = [e for e in ruleset.endpoints if node is None or e.node == node]
    names = {e.id: (interfaces or {}).get(e.id) or interface_name(e.id) for e in local}
    builder = _Builder(ruleset)
    maps = []
    for direction in (Direction.INGRESS, Direction.EGRESS):
        entries = []
        for endpoint in local:
            chain = builder.endpoint_chain(direction, endpoint)
            if chain is not None:
                entries.append((names[endpoint.id], chain))
        maps.append(VerdictMap(_MAP[direction], tuple(sorted(entries))))
    established = Rule("ct state established,related accept")
    invalid = Rule("ct state invalid drop")
    forward = Chain(
        "forward",
        (established, invalid, Rule("iifname vmap @egress_ep"), Rule("oifname vmap @ingress_ep")),
        "type filter hook forward priority filter; policy accept;",
    )
    # A pod talking to its own node enters through input: it obeys the pod's egress policy.
    input_ = Chain(
        "input",
        (established, Rule("iifname vmap @egress_ep")),
        "type filter hook input priority filter; policy accept;",
    )
    chains = (forward, input_, *sorted(builder.chains.values(), key=lambda c: c.name))
    return Table(tuple(sorted(builder.sets.values(), key=lambda s: s.name)), tuple(maps), chains)


@dataclass
class _Builder:
    ruleset: Ruleset
    sets: dict[str, AddressSet] = field(default_factory=dict)
    chains: dict[str, Chain] = field(default_factory=dict)
    classes: dict[tuple[object, ...], str] = field(default_factory=dict)
    #: A policy's rules are shared by every class it selects: compile them once per variant.
    _compiled: dict[tuple[object, ...], list[Rule]] = field(default_factory=dict)
    _ranges: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)

    def endpoint_chain(self, direction: Direction, endpoint: EndpointInfo) -> str | None:
        """The first chain of `endpoint`'s class, or None when no policy selects it."""
        tiers = self.ruleset.tiers(direction)
        selecting = tuple(tuple(p for p in tier.policies if endpoint.id in p.subjects) for tier in tiers)
        if not any(selecting):
            return None
        named = endpoint.named_ports if direction is Direction.INGRESS else ()
        key = (direction, tuple(tuple(p.ref for p in tier) for tier in selecting), named)
        if key not in self.classes:
            self.classes[key] = f"{_PREFIX[direction]}_c{len([k for k in self.classes if k[0] == direction])}"
            self._class_chains(direction, self.classes[key], selecting, endpoint)
        return f"{self.classes[key]}_t{next(i for i, t in enumerate(selecting) if t)}"

    def _class_chains(
        self, direction: Direction, base: str, selecting: tuple[tuple[PolicyRules, ...], ...], endpoint: EndpointInfo
    ) -> None:
        tiers = self.ruleset.tiers(direction)
        used = [i for i, policies in enumerate(selecting) if policies]
        allow = "accept" if direction is Direction.INGRESS else "return"
        for position, t in enumerate(used):
            later = used[position + 1] if position + 1 < len(used) else None
            onward = f"goto {base}_t{later}" if later is not None else allow
            rules: list[Rule] = []
            for policy in selecting[t]:
                for ir_rule in policy.rules:
                    verdict = {Action.ALLOW: allow, Action.DENY: "drop", Action.PASS: onward}[ir_rule.action]
                    named = endpoint.named_ports if direction is Direction.INGRESS else ()
                    key = (direction, id(ir_rule), named, verdict)
                    if key not in self._compiled:
                        self._compiled[key] = self._rules(direction, ir_rule, endpoint, verdict)
                    rules.extend(self._compiled[key])
            end = tiers[t].end_action
            if end is Action.DENY:
                rules.append(Rule("counter drop", f"{tiers[t].name}: isolated, no rule allowed"))
            elif end is Action.ALLOW:
                rules.append(Rule(f"counter {allow}", f"{tiers[t].name}: end of tier"))
            elif later is not None:
                rules.append(Rule(onward))
            self.chains[f"{base}_t{t}"] = Chain(f"{base}_t{t}", tuple(rules))

    def _rules(self, direction: Direction, rule: IRRule, local: EndpointInfo, verdict: str) -> list[Rule]:
        note = str(rule.ref)
        out: list[Rule] = []
        peers = rule.peers
        if rule.ports is None:
            out.extend(self._with_addresses(direction, rule.ref, "", peers, None, "", verdict, note))
            return out
        numbered: dict[Protocol, list[PortMatch]] = {}
        named: list[PortMatch] = []
        for port in rule.ports:
            (named.append(port) if port.name is not None else numbered.setdefault(port.protocol, []).append(port))
        for protocol, ports in sorted(numbered.items()):
            match = _port_match(protocol, ports)
            out.extend(self._with_addresses(direction, rule.ref, f"{protocol}", peers, None, match, verdict, note))
        for port in named:
            assert port.name is not None
            if direction is Direction.INGRESS:  # the local endpoint is the destination
                number = local.resolve_port(port.name, port.protocol)
                if number is not None:
                    match = f"meta l4proto {_L4[port.protocol]} th dport {number}"
                    out.extend(self._with_addresses(direction, rule.ref, f"{port.name}", peers, None, match, verdict, note))
                continue
            # Egress: each destination resolves the name itself; split the destinations by number.
            by_number: dict[int, set[EndpointId]] = {}
            for endpoint in self.ruleset.endpoints:
                number = endpoint.resolve_port(port.name, port.protocol)
                if number is not None:
                    by_number.setdefault(number, set()).add(endpoint.id)
            for number, endpoints in sorted(by_number.items()):
                match = f"meta l4proto {_L4[port.protocol]} th dport {number}"
                part = f"{port.name}={number}"
                out.extend(self._with_addresses(direction, rule.ref, part, peers, endpoints, match, verdict, note))
        return out

    def _with_addresses(
        self,
        direction: Direction,
        ref: RuleRef,
        part: str,
        peers: Sequence[PeerMatch] | None,
        only: set[EndpointId] | None,
        port_match: str,
        verdict: str,
        note: str,
    ) -> list[Rule]:
        """One rule per address family (or one without an address match for "every peer")."""
        tail = " ".join(s for s in (port_match, "counter", verdict) if s)
        if peers is None and only is None:
            return [Rule(tail, note)]
        ranges = self._address_ranges(peers, only)
        field_ = "saddr" if direction is Direction.INGRESS else "daddr"
        out = []
        for family, nft_type, keyword in ((4, "ipv4_addr", "ip"), (6, "ipv6_addr", "ip6")):
            elements = _elements(family, [(lo, hi) for v, lo, hi in ranges if v == family])
            if not elements:
                continue  # nothing of this family can match
            digest = hashlib.sha1(f"{ref}|{part}|{family}".encode()).hexdigest()[:10]  # noqa: S324
            name = f"{_PREFIX[direction]}_{digest}"
            self.sets[name] = AddressSet(name, nft_type, elements)
            out.append(Rule(f"{keyword} {field_} @{name} {tail}", note))
        return out

    def _address_ranges(
        self, peers: Sequence[PeerMatch] | None, only: set[EndpointId] | None
    ) -> list[tuple[int, int, int]]:
        """(IP version, first, last) address ranges the peers stand for, as integers."""
        if peers is None:
            chosen = [e for e in self.ruleset.endpoints if only is None or e.id in only]
            return [(ip.version, int(ip), int(ip)) for e in chosen for ip in e.ips]
        out: list[tuple[int, int, int]] = []
        for peer in peers:
            if only is None:
                out.extend(self._peer_ranges(peer))
                continue
            # Named ports exist only on pods: of an ipBlock only the pods inside it that resolve
            # the name can match; of a selector peer, its pods that resolve the name.
            for endpoint_id in sorted(only):
                endpoint = self.ruleset.endpoint(endpoint_id)
                if endpoint is None:
                    continue
                if endpoint_id in peer.endpoints or any(b.contains(ip) for b in peer.blocks for ip in endpoint.ips):
                    out.extend((ip.version, int(ip), int(ip)) for ip in endpoint.ips)
        return out

    def _peer_ranges(self, peer: PeerMatch) -> list[tuple[int, int, int]]:
        cached = self._ranges.get(id(peer))
        if cached is None:
            cached = []
            for endpoint_id in peer.endpoints:
                endpoint = self.ruleset.endpoint(endpoint_id)
                if endpoint is not None:
                    cached.extend((ip.version, int(ip), int(ip)) for ip in endpoint.ips)
            for block in peer.blocks:
                cached.extend(
                    (net.version, int(net.network_address), int(net.broadcast_address))
                    for net in _subtract(block.network, block.excepts)
                )
            self._ranges[id(peer)] = cached
        return cached


def _subtract(network: IPNetwork, excepts: Iterable[IPNetwork]) -> list[IPNetwork]:
    remaining = [network]
    for hole in excepts:
        next_round: list[IPNetwork] = []
        for net in remaining:
            if hole.version == net.version and hole.subnet_of(net):  # type: ignore[arg-type]
                next_round.extend(net.address_exclude(hole))  # type: ignore[arg-type]
            elif hole.version == net.version and net.subnet_of(hole):  # type: ignore[arg-type]
                continue
            else:
                next_round.append(net)
        remaining = next_round
    return remaining


def _elements(family: int, ranges: list[tuple[int, int]]) -> tuple[str, ...]:
    """Merged, sorted set elements: an address, a prefix when the range is one, else `a-b`."""
    if not ranges:
        return ()
    ranges.sort()
    merged: list[list[int]] = []
    for lo, hi in ranges:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    make = ipaddress.IPv4Address if family == 4 else ipaddress.IPv6Address
    bits = 32 if family == 4 else 128
    out = []
    for lo, hi in merged:
        size = hi - lo + 1
        if size == 1:
            out.append(str(make(lo)))
        elif size & (size - 1) == 0 and lo % size == 0:
            out.append(f"{make(lo)}/{bits - size.bit_length() + 1}")
        else:
            out.append(f"{make(lo)}-{make(hi)}")
    return tuple(out)


def _port_match(protocol: Protocol, ports: Sequence[PortMatch]) -> str:
    l4 = _L4[protocol]
    if any(p.start is None for p in ports):
        return f"meta l4proto {l4}"
    items = sorted({(p.start or 0, p.end or p.start or 0) for p in ports})
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in items)
    return f"meta l4proto {l4} th dport {{ {text} }}"
