"""A host's firewall (dataplane/host.py) as an nftables table: `table inet netfence` with base
chains on the input and output hooks, the tier chains, and interval sets for peers and for the
host's own addresses. Applied like a node's table (dataplane/apply.py: check, one transaction)."""

from __future__ import annotations

from collections.abc import Sequence

from netfence.dataplane import spans as sp
from netfence.dataplane.host import PREFIX, HostFirewall, HostRule, Match, Range, Verdict
from netfence.dataplane.nft.compile import port_range
from netfence.dataplane.protocols import netfilter_name
from netfence.dataplane.nft.objects import AddressSet, Chain, Rule, Table
from netfence.model.policies import Direction
from netfence.model.ports import Protocol, RuleProtocol

_TYPES = {4: ("ipv4_addr", "ip"), 6: ("ipv6_addr", "ip6")}
_HOOKS = {
    Direction.INGRESS: ("input", "iifname", "daddr"),
    Direction.EGRESS: ("output", "oifname", "saddr"),
}
#: The host's own addresses, per IP version: what the hooks send to the tier chains.
LOCAL_SETS = {4: "local_v4", 6: "local_v6"}


def render_host(firewall: HostFirewall) -> Table:
    own = sp.of_addresses(firewall.addresses)
    sets = [AddressSet(s.name, _TYPES[s.family][0], sp.nft_elements(s.family, s.spans)) for s in firewall.sets]
    sets += [AddressSet(LOCAL_SETS[f], _TYPES[f][0], sp.nft_elements(f, own[f])) for f in (4, 6) if own[f]]
    base = []
    for direction, (hook, interface, field) in _HOOKS.items():
        rules = [
            Rule("ct state established,related accept"),
            Rule("ct state invalid drop"),
            Rule(f'{interface} "lo" accept'),  # the host reaching itself
        ]
        entry = firewall.entry(direction)
        if entry is not None:
            for family in (4, 6):
                if own[family]:
                    rules.append(Rule(f"{_TYPES[family][1]} {field} @{LOCAL_SETS[family]} jump {entry}"))
        base.append(Chain(hook, tuple(rules), f"type filter hook {hook} priority filter; policy accept;"))
    chains = [
        Chain(chain.name, tuple(r for rule in chain.rules for r in _rules(rule, chain.direction)))
        for chain in firewall.chains
    ]
    return Table(tuple(sorted(sets, key=lambda s: s.name)), (), (*base, *chains))


def _rules(rule: HostRule, direction: Direction) -> list[Rule]:
    verdict = {
        Verdict.ACCEPT: "accept",
        Verdict.DROP: "drop",
        Verdict.GOTO: f"goto {rule.target}",
        Verdict.LOG: f'log prefix "netfence {PREFIX[direction]} "',
    }[rule.verdict]
    return [Rule(" ".join((*tests, "counter", verdict)), rule.note) for tests in statements(rule.match, direction)]


def statements(match: Match, direction: Direction) -> list[list[str]]:
    """The nft expressions of a match; several lists are alternatives (one rule each)."""
    remote_field = "saddr" if direction is Direction.INGRESS else "daddr"
    local_field = "daddr" if direction is Direction.INGRESS else "saddr"
    parts: list[str] = []
    if match.family is not None and match.remote is None and match.local is None:
        parts.append(f"meta nfproto {'ipv4' if match.family == 4 else 'ipv6'}")
    for address_set, field in ((match.remote, remote_field), (match.local, local_field)):
        if address_set is not None:
            parts.append(f"{_TYPES[address_set.family][1]} {field} @{address_set.name}")
    if match.protocol is not None:
        parts.append(f"meta l4proto {netfilter_name(match.protocol)}")
    if len(match.not_protocols) == 1:
        parts.append(f"meta l4proto != {netfilter_name(match.not_protocols[0])}")
    elif match.not_protocols:
        parts.append(f"meta l4proto != {{ {', '.join(netfilter_name(p) for p in match.not_protocols)} }}")
    for field, ranges, negate in (
        ("dport", match.dports, False),
        ("dport", match.not_dports, True),
        ("sport", match.sports, False),
        ("sport", match.not_sports, True),
    ):
        if ranges:
            parts.append(f"th {field} {'!= ' if negate else ''}{{ {_ports(ranges, negate and field == 'sport')} }}")
    word = "icmpv6" if match.protocol == Protocol.ICMPV6 else "icmp"
    if match.icmp is not None:
        kind, code = match.icmp
        parts.append(f"{word} type {kind}" + (f" {word} code {code}" if code is not None else ""))
    if match.not_icmp is None:
        return [parts]
    kind, code = match.not_icmp
    if code is None:
        return [[*parts, f"{word} type != {kind}"]]
    # not (type and code): another type, or that type with another code
    return [[*parts, f"{word} type != {kind}"], [*parts, f"{word} type {kind} {word} code != {code}"]]



def _ports(ranges: Sequence[Range], negated_source: bool = False) -> str:
    return ", ".join(port_range(a, b, negated_source) for a, b in ranges)
