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
- Source ports are the packet's (`th sport`), numbers and ranges as written. A named source port
  resolves per source endpoint: a set of address . port pairs (`ip saddr . th sport { 10.0.0.5 .
  53 }`, with `meta l4proto .` in front when the rule has no protocol) over the endpoints the
  source side can be (the peers on ingress, the node's pods on egress) that declare the name; no
  such endpoint: the entry matches nothing (an empty set is never written: nft refuses it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from netfence.dataplane import spans as sp
from netfence.dataplane.nft.flowlog import LoggedChains, LogOptions
from netfence.dataplane.protocols import netfilter_name
from netfence.dataplane.nft.objects import AddressSet, Chain, Rule, Table, VerdictMap
from netfence.ir.types import (
    Action,
    by_named_ports,
    CidrBlock,
    EndpointInfo,
    EndpointKind,
    PeerMatch,
    PolicyRules,
    PortMatch,
    RuleRef,
    Ruleset,
    resolve_named_ports,
)
from netfence.ir.types import Rule as IRRule
from netfence.model.endpoints import EndpointId
from netfence.model.policies import Direction
from netfence.model.ports import PORTED_PROTOCOLS, Protocol, RuleProtocol

_PREFIX = {Direction.INGRESS: "in", Direction.EGRESS: "eg"}
_MAP = {Direction.INGRESS: "ingress_ep", Direction.EGRESS: "egress_ep"}


def interface_name(endpoint: EndpointId) -> str:
    """The host-side interface netfence assumes for a pod when none is given: `nf` + 11 hex
    digits of sha1("namespace.name") (the scheme Calico uses with its `cali` prefix)."""
    namespace, _, name = endpoint.partition("/")
    return "nf" + hashlib.sha1(f"{namespace}.{name}".encode()).hexdigest()[:11]  # noqa: S324 - a name, not security


def compile_node(
    ruleset: Ruleset,
    node: str | None,
    interfaces: Mapping[EndpointId, str] | None = None,
    log: LogOptions | None = None,
) -> Table:
    """The table enforcing the policies of `node`'s endpoints (node None: every endpoint).

    `log`: NFLOG flow logs and audited policies (flowlog.py); None: neither.
    """
    # Pods only: host endpoints are a host's own firewall, not a pod interface.
    local = [e for e in ruleset.endpoints if e.kind is EndpointKind.POD and (node is None or e.node == node)]
    names = {e.id: (interfaces or {}).get(e.id) or interface_name(e.id) for e in local}
    builder = _Builder(ruleset, log=log, node_endpoints=frozenset(names))
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
    _ranges: dict[int, dict[int, list[tuple[int, int]]]] = field(default_factory=dict)
    log: LogOptions | None = None
    #: The pods of the node: the sources of its egress (named source ports resolve on them).
    node_endpoints: frozenset[EndpointId] = frozenset()

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
        if self.log is not None:
            logged = LoggedChains(self.log, self.chains)
            logged.class_chains(direction, base, tiers, selecting, lambda r, v: self._cached(direction, r, endpoint, v))
            return
        used = [i for i, policies in enumerate(selecting) if policies]
        allow = "accept" if direction is Direction.INGRESS else "return"
        for position, t in enumerate(used):
            later = used[position + 1] if position + 1 < len(used) else None
            onward = f"goto {base}_t{later}" if later is not None else allow
            rules: list[Rule] = []
            for policy in selecting[t]:
                for ir_rule in policy.rules:
                    verdict = {
                        Action.ALLOW: allow,
                        Action.DENY: "drop",
                        Action.PASS: onward,
                        Action.LOG: f'log prefix "netfence {_PREFIX[direction]} "',
                    }[ir_rule.action]
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

    def _cached(self, direction: Direction, rule: IRRule, local: EndpointInfo, verdict: str) -> list[Rule]:
        """_rules, compiled once per rule, named-port variant and verdict."""
        named = local.named_ports if direction is Direction.INGRESS else ()
        key = (direction, id(rule), named, verdict)
        if key not in self._compiled:
            self._compiled[key] = self._rules(direction, rule, local, verdict)
        return self._compiled[key]

    def _rules(self, direction: Direction, rule: IRRule, local: EndpointInfo, verdict: str) -> list[Rule]:
        note = str(rule.ref)
        families = (4, 6) if rule.ip_version is None else (rule.ip_version,)
        peer_ranges = None if rule.peers is None else self._peers_ranges(rule.peers)
        local_ranges = None if rule.local is None else self._peers_ranges((rule.local,))
        source_ports = {f: self._source_ports(direction, rule, f) for f in families}
        if direction is Direction.INGRESS or not _resolves_names(rule):
            # The destination is the local endpoint (ingress), or no name needs resolving.
            destination = local if direction is Direction.INGRESS else None
            resolve = direction is Direction.INGRESS
            variants: list[tuple[sp.Spans | None, dict[int, list[str]]]] = [
                (peer_ranges, {f: _port_variants(rule, destination, resolve, source_ports[f]) for f in families})
            ]
        else:
            # Egress with named ports: each destination resolves the names itself. Split the
            # destinations by their named-port map; addresses of no endpoint resolve nothing.
            variants = []
            for members in by_named_ports(self.ruleset.endpoints):
                variants.append(
                    (
                        sp.intersect(peer_ranges, sp.of_addresses(ip for e in members for ip in e.ips)),
                        {f: _port_variants(rule, members[0], True, source_ports[f]) for f in families},
                    )
                )
            outside = sp.subtract(peer_ranges, sp.of_addresses(ip for e in self.ruleset.endpoints for ip in e.ips))
            variants.append((outside, {f: _port_variants(rule, None, True, source_ports[f]) for f in families}))
        remote_field = "saddr" if direction is Direction.INGRESS else "daddr"
        local_field = "daddr" if direction is Direction.INGRESS else "saddr"
        out: list[Rule] = []
        for part, (ranges, per_family) in enumerate(variants):
            for family in families:
                ports = per_family[family]
                addresses: list[str] = []
                skip = False
                for field_, chosen, role in ((remote_field, ranges, "peer"), (local_field, local_ranges, "local")):
                    if chosen is None:
                        continue
                    spans = chosen.get(family, [])
                    if not spans:
                        skip = True
                        break
                    if sp.is_everything(spans, family):
                        continue  # every address of the family
                    addresses.append(self._set_match(direction, rule.ref, f"{part}|{role}", family, field_, spans))
                if skip:
                    continue
                nfproto = "meta nfproto ipv4" if family == 4 else "meta nfproto ipv6"
                if not addresses and len(families) == 2 and per_family[4] == per_family[6]:
                    # No address test: one rule covers both families.
                    if family == 6:
                        continue
                    nfproto = ""
                for port in ports:
                    statement = " ".join(x for x in (nfproto if not addresses else "", *addresses, port, "counter", verdict) if x)
                    out.append(Rule(statement, note))
        return out

    def _source_ports(self, direction: Direction, rule: IRRule, family: int) -> _SourcePorts:
        """The rule's source-port tests for packets of one address family."""
        positive: list[str] | None = None
        if rule.source_ports:
            positive = []
            numbered = _numbered_source_ports(rule, rule.source_ports, negate=False)
            if numbered is not None:
                positive.append(numbered)
            named = self._named_source_ports(direction, rule, rule.source_ports, family, negate=False)
            if named is not None:
                positive.append(named)
        negated = [
            test
            for test in (
                _numbered_source_ports(rule, rule.not_source_ports, negate=True),
                self._named_source_ports(direction, rule, rule.not_source_ports, family, negate=True),
            )
            if test is not None
        ]
        return positive, negated

    def _named_source_ports(
        self, direction: Direction, rule: IRRule, entries: Sequence[PortMatch], family: int, *, negate: bool
    ) -> str | None:
        """`ip saddr . th sport { address . port, ... }` of the named entries, resolved on every
        endpoint the source can be (None: no entry is named, or no such endpoint declares one)."""
        names = [e for e in entries if e.name is not None]
        if not names:
            return None
        if direction is Direction.INGRESS:
            candidates = self.ruleset.endpoints
            side = rule.peers
        else:
            candidates = tuple(e for e in self.ruleset.endpoints if e.id in self.node_endpoints)
            side = None if rule.local is None else (rule.local,)
        elements: set[tuple[str, int, str, int]] = set()
        for endpoint in candidates:
            resolved = [
                p for p in resolve_named_ports(names, endpoint) if rule.protocol is None or p.protocol == rule.protocol
            ]
            if not resolved:
                continue
            for address in endpoint.ips:
                if address.version != family:
                    continue
                if side is not None and not any(peer.matches_address(endpoint.id, address) for peer in side):
                    continue
                for entry in resolved:
                    assert entry.protocol is not None and entry.start is not None
                    elements.add((netfilter_name(entry.protocol), int(address), str(address), entry.start))
        if not elements:
            return None
        keyword = "ip" if family == 4 else "ip6"
        with_protocol = rule.protocol is None
        text = ", ".join(
            f"{name + ' . ' if with_protocol else ''}{address} . {port}" for name, _, address, port in sorted(elements)
        )
        head = f"meta l4proto . {keyword} saddr . th sport" if with_protocol else f"{keyword} saddr . th sport"
        return f"{head} {'!= ' if negate else ''}{{ {text} }}"

    def _set_match(
        self, direction: Direction, ref: RuleRef, part: str, family: int, field_: str, spans: list[tuple[int, int]]
    ) -> str:
        nft_type, keyword = ("ipv4_addr", "ip") if family == 4 else ("ipv6_addr", "ip6")
        digest = hashlib.sha1(f"{ref}|{part}|{family}".encode()).hexdigest()[:10]  # noqa: S324
        name = base = f"{_PREFIX[direction]}_{digest}"
        elements = sp.nft_elements(family, spans)
        # One rule of a policy can become several IR rules with one RuleRef (a Service's
        # backends split by target port): each keeps its own addresses.
        suffix = 1
        while name in self.sets and self.sets[name].elements != elements:
            suffix += 1
            name = f"{base}_{suffix}"
        self.sets[name] = AddressSet(name, nft_type, elements)
        return f"{keyword} {field_} @{name}"

    def _peers_ranges(self, peers: Sequence[PeerMatch]) -> sp.Spans:
        """The addresses any of the peers matches, per IP version, as merged integer spans."""
        out: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for peer in peers:
            for family, spans in self._peer_ranges(peer).items():
                out[family].extend(spans)
        return {family: sp.merge(spans) for family, spans in out.items()}

    def _peer_ranges(self, peer: PeerMatch) -> sp.Spans:
        cached = self._ranges.get(id(peer))
        if cached is None:
            if peer.any_address:
                cached = sp.everything()
            else:
                cached = self._group_ranges(peer.endpoints, peer.blocks)
            for group in peer.also:
                cached = sp.intersect(cached, self._group_ranges(group.endpoints, group.blocks))
            for group in peer.excluded:
                cached = sp.subtract(cached, self._group_ranges(group.endpoints, group.blocks))
            self._ranges[id(peer)] = cached
        return cached

    def _group_ranges(self, endpoints: Iterable[EndpointId], blocks: Iterable[CidrBlock]) -> sp.Spans:
        addresses = [ip for e in endpoints if (info := self.ruleset.endpoint(e)) is not None for ip in info.ips]
        parts = [sp.of_addresses(addresses)]
        parts.extend(sp.without_excepts(block.network, block.excepts) for block in blocks)
        return sp.union(*parts)


def _resolves_names(rule: IRRule) -> bool:
    return any(entry.name is not None for entry in (*(rule.ports or ()), *rule.not_ports))



#: A rule's source-port tests: alternatives of source_ports (None: it has none; empty: none can
#: match), and the not_source_ports tests (all must hold).
_SourcePorts = tuple[list[str] | None, list[str]]


def _numbered_source_ports(rule: IRRule, entries: Sequence[PortMatch], *, negate: bool) -> str | None:
    """`th sport { ... }` of the numbered entries (None: there are none that can match). An entry
    tests its protocol's packets only: with another protocol than the rule's, or without any, the
    protocol is matched with the port (`meta l4proto . th sport { tcp . 1024-65535 }`)."""
    items: set[tuple[str, int, int]] = set()
    for entry in entries:
        if entry.name is not None:
            continue
        protocols = PORTED_PROTOCOLS if entry.protocol is None else (entry.protocol,)
        for protocol in protocols:
            if rule.protocol is not None and protocol != rule.protocol:
                continue  # the rule matches no packet of that protocol
            if protocol not in PORTED_PROTOCOLS:
                continue  # a packet without ports has no source port
            start = entry.start if entry.start is not None else 0
            end = entry.end if entry.end is not None else (entry.start if entry.start is not None else 65535)
            items.add((netfilter_name(protocol), start, end))
    if not items:
        return None
    word = "!= " if negate else ""
    if rule.protocol is not None:
        text = ", ".join(port_range(a, b, negate) for a, b in sorted({(a, b) for _, a, b in items}))
        return f"th sport {word}{{ {text} }}"
    text = ", ".join(f"{name} . {a}" if a == b else f"{name} . {a}-{b}" for name, a, b in sorted(items))
    return f"meta l4proto . th sport {word}{{ {text} }}"


def port_range(first: int, last: int, negated_source: bool = False) -> str:
    """A port or range as nft writes it. A negated source port is always a range (`53-53`): nft
    (1.0.6 at least) merges two single-value `!=` tests of the adjacent source and destination
    port fields (`th sport != 53 th dport != 80`) into one 32-bit `!=`, which holds when either
    port differs; a range test is never merged."""
    return str(first) if first == last and not negated_source else f"{first}-{last}"


def _port_variants(
    rule: IRRule, destination: EndpointInfo | None, resolve: bool, source_ports: _SourcePorts = (None, [])
) -> list[str]:
    """The protocol/port/ICMP statements of the rule; several strings are alternatives (OR)."""
    common: list[str] = []
    if rule.protocol is not None and rule.ports is None:
        common.append(f"meta l4proto {netfilter_name(rule.protocol)}")
    if rule.not_protocol is not None:
        common.append(f"meta l4proto != {netfilter_name(rule.not_protocol)}")
    icmp_word = "icmpv6" if rule.protocol == Protocol.ICMPV6 else "icmp"
    if rule.icmp is not None:
        common.append(f"{icmp_word} type {rule.icmp.type}")
        if rule.icmp.code is not None:
            common.append(f"{icmp_word} code {rule.icmp.code}")
    positive_sources, negated_sources = source_ports
    if positive_sources is not None and not positive_sources:
        return []  # no source port can match
    common.extend(negated_sources)
    negated = resolve_named_ports(rule.not_ports, destination) if resolve else [p for p in rule.not_ports if p.name is None]
    if negated:
        common.append(_negated_ports(rule, negated))
    alternatives: list[str] = [""]
    if rule.not_icmp is not None:
        if rule.not_icmp.code is None:
            alternatives = [f"{icmp_word} type != {rule.not_icmp.type}"]
        else:  # not (type and code): another type, or that type with another code
            alternatives = [
                f"{icmp_word} type != {rule.not_icmp.type}",
                f"{icmp_word} type {rule.not_icmp.type} {icmp_word} code != {rule.not_icmp.code}",
            ]
    if rule.ports is not None:
        chosen = resolve_named_ports(rule.ports, destination) if resolve else [p for p in rule.ports if p.name is None]
        by_protocol: dict[str, list[PortMatch]] = {}
        for entry in chosen:
            assert entry.protocol is not None
            by_protocol.setdefault(netfilter_name(entry.protocol), []).append(entry)
        port_parts = []
        for name, group in sorted(by_protocol.items()):
            if any(p.start is None for p in group):
                port_parts.append(f"meta l4proto {name}")
            else:
                port_parts.append(f"meta l4proto {name} {_port_statement('dport', group, False)}")
        if not port_parts:
            return []  # no entry can match
        alternatives = [f"{a} {p}".strip() for a in alternatives for p in port_parts]
    if positive_sources is not None:
        alternatives = [f"{a} {p}".strip() for a in alternatives for p in positive_sources]
    head = " ".join(common)
    return [f"{head} {a}".strip() for a in alternatives]


def _negated_ports(rule: IRRule, entries: Sequence[PortMatch]) -> str:
    """notPorts. With the rule's protocol, a flow is of that protocol already and the entries are
    its ports. Without one, only named ports can be there, each resolved with its own protocol:
    a named port excludes its protocol's port only, so match protocol and port together (a port
    alone would also exclude the same number of every other protocol, and read an ICMP packet's
    checksum as its port)."""
    if rule.protocol is not None or any(p.protocol is None for p in entries):
        return _port_statement("dport", entries, True)
    items = sorted(
        {
            (netfilter_name(p.protocol), p.start or 0, p.end if p.end is not None else p.start or 0)
            for p in entries
            if p.protocol is not None
        }
    )
    text = ", ".join(f"{name} . {a}" if a == b else f"{name} . {a}-{b}" for name, a, b in items)
    return f"meta l4proto . th dport != {{ {text} }}"


def _port_statement(field_: str, entries: Sequence[PortMatch], negate: bool) -> str:
    items = sorted({(p.start or 0, p.end if p.end is not None else p.start or 0) for p in entries if p.start is not None})
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in items)
    return f"th {field_} {'!= ' if negate else ''}{{ {text} }}"
