"""A host's firewall (dataplane/host.py) as `ipset restore` and `iptables-restore` input: the
form older hosts and the Rancher/Calico generation of agents use (match-set rules, stateful
RELATED,ESTABLISHED first).

- ipset: one `hash:net` set per peer and per IP version (`netfence-in-<digest>`), plus the
  host's own addresses (`netfence-local-v4`/`-v6`). Each set is filled under a temporary name
  and swapped in, so a set in use is never seen half filled.
- iptables and ip6tables: the whole `filter` table, as a host firewall configuration holds it
  (iptables-restore replaces a table in one commit): INPUT and OUTPUT jump to NETFENCE-INPUT and
  NETFENCE-OUTPUT, which accept established, related and loopback traffic and send the host's
  own traffic to the tier chains (NETFENCE-IN-T0, ..., NETFENCE-EG-END).

Apply the ipset part first: iptables-restore refuses rules naming a set that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from netfence.dataplane import spans as sp
from netfence.dataplane.host import HostFirewall, HostRule, Match, Range, Verdict
from netfence.dataplane.host import AddressSet as HostSet
from netfence.dataplane.protocols import netfilter_name
from netfence.errors import NetfenceError
from netfence.model.policies import Direction
from netfence.model.ports import PORTED_PROTOCOLS, Protocol, RuleProtocol

SET_PREFIX = "netfence-"
#: Suffix of the set a new version is filled in before the swap.
NEW_SUFFIX = "-new"
CHAIN_PREFIX = "NETFENCE-"
BASE_CHAINS = {Direction.INGRESS: ("INPUT", "NETFENCE-INPUT"), Direction.EGRESS: ("OUTPUT", "NETFENCE-OUTPUT")}
#: multiport takes at most 15 ports per match, a range counting as two.
_MULTIPORT = 15
_COMMENT_UNSAFE = re.compile(r"[^A-Za-z0-9 ._/:\[\]()=,-]")


class IptablesError(NetfenceError):
    """A rule iptables cannot express (nft can: use `-o nft`)."""


@dataclass(frozen=True, slots=True)
class IptablesRuleset:
    #: `ipset restore` input.
    ipset: str
    #: `iptables-restore` input (IPv4) and `ip6tables-restore` input (IPv6).
    iptables: str
    ip6tables: str
    #: Every set name the rules use.
    sets: tuple[str, ...]

    def text(self) -> str:
        """All three, each under a comment line naming the command that reads it."""
        return (
            "# ipset restore\n"
            + self.ipset
            + "# iptables-restore\n"
            + self.iptables
            + "# ip6tables-restore\n"
            + self.ip6tables
        )


def set_name(name: str) -> str:
    return SET_PREFIX + name.replace("_", "-")


def chain_name(name: str) -> str:
    return CHAIN_PREFIX + name.upper().replace("_", "-")


def render_iptables(firewall: HostFirewall) -> IptablesRuleset:
    own = sp.of_addresses(firewall.addresses)
    sets = list(firewall.sets)
    local = {f: HostSet(f"local_v{f}", f, tuple(own[f])) for f in (4, 6) if own[f]}
    sets += local.values()
    ipset_lines: list[str] = []
    for item in sorted(sets, key=lambda s: s.name):
        name, family = set_name(item.name), "inet" if item.family == 4 else "inet6"
        new = name + NEW_SUFFIX
        ipset_lines += [
            f"create {name} hash:net family {family} -exist",
            f"create {new} hash:net family {family} -exist",
            f"flush {new}",
            *(f"add {new} {net}" for net in sp.networks(item.family, item.spans)),
            f"swap {new} {name}",
            f"destroy {new}",
        ]
    tables = {family: _table(firewall, family, local.get(family)) for family in (4, 6)}
    return IptablesRuleset(
        "".join(f"{line}\n" for line in ipset_lines),
        tables[4],
        tables[6],
        tuple(sorted(set_name(s.name) for s in sets)),
    )


def _table(firewall: HostFirewall, family: int, local: HostSet | None) -> str:
    chains = [chain.name for chain in firewall.chains]
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [f":{own} - [0:0]" for _, own in BASE_CHAINS.values()]
    lines += [f":{chain_name(name)} - [0:0]" for name in chains]
    for direction, (hook, own) in BASE_CHAINS.items():
        lines.append(f"-A {hook} -j {own}")
        interface = "-i" if direction is Direction.INGRESS else "-o"
        lines += [
            f"-A {own} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            f"-A {own} -m conntrack --ctstate INVALID -j DROP",
            f"-A {own} {interface} lo -j ACCEPT",
        ]
        entry = firewall.entry(direction)
        if entry is not None and local is not None:
            where = "dst" if direction is Direction.INGRESS else "src"
            lines.append(f"-A {own} -m set --match-set {set_name(local.name)} {where} -j {chain_name(entry)}")
    for chain in firewall.chains:
        for rule in chain.rules:
            lines += [f"-A {chain_name(chain.name)} {args}" for args in _rule(rule, chain.direction, family)]
    lines.append("COMMIT")
    return "".join(f"{line}\n" for line in lines)


def _rule(rule: HostRule, direction: Direction, family: int) -> list[str]:
    match = rule.match
    if match.family not in (None, family):
        return []
    for address_set in (match.remote, match.local):
        if address_set is not None and address_set.family != family:
            return []
    verdict = {
        Verdict.ACCEPT: "-j ACCEPT",
        Verdict.DROP: "-j DROP",
        Verdict.GOTO: f"-g {chain_name(rule.target or '')}",
        Verdict.LOG: f'-j LOG --log-prefix "netfence {"in" if direction is Direction.INGRESS else "eg"} "',
    }[rule.verdict]
    note = f"-m comment --comment {_comment(rule.note)}" if rule.note else ""
    return [" ".join(x for x in (*tests, note, verdict) if x) for tests in _tests(match, direction, rule)]


def _tests(match: Match, direction: Direction, rule: HostRule) -> list[list[str]]:
    """The iptables matches of `match`; several lists are alternatives (one rule each)."""
    head: list[str] = []
    if match.protocol is not None:
        head.append(f"-p {netfilter_name(match.protocol)}")
    elif len(match.not_protocols) == 1:
        head.append(f"! -p {netfilter_name(match.not_protocols[0])}")
    elif match.not_protocols:
        shown = ", ".join(netfilter_name(p) for p in match.not_protocols)
        raise IptablesError(
            f"{rule.note}: excluding several protocols ({shown}) cannot be written for iptables; use -o nft"
        )
    remote_side = "src" if direction is Direction.INGRESS else "dst"
    local_side = "dst" if direction is Direction.INGRESS else "src"
    for address_set, side in ((match.remote, remote_side), (match.local, local_side)):
        if address_set is not None:
            head.append(f"-m set --match-set {set_name(address_set.name)} {side}")
    if match.dports or match.not_dports or match.sports or match.not_sports:
        if match.protocol not in PORTED_PROTOCOLS:
            raise IptablesError(
                f"{rule.note}: a port test without the protocol TCP, UDP, SCTP or UDPLite cannot be written"
                " for iptables; use -o nft"
            )
    for flag, ranges in (("--dports", match.not_dports), ("--sports", match.not_sports)):
        head += [f"-m multiport ! {flag} {chunk}" for chunk in _chunks(ranges)]
    if match.icmp is not None or match.not_icmp is not None:
        module, flag = ("icmp6", "--icmpv6-type") if match.protocol == Protocol.ICMPV6 else ("icmp", "--icmp-type")
        for icmp, negate in ((match.icmp, ""), (match.not_icmp, "! ")):
            if icmp is not None:
                kind, code = icmp
                head.append(f"-m {module} {negate}{flag} {kind}" + (f"/{code}" if code is not None else ""))
    alternatives = [head]
    for flag, ranges in (("--dports", match.dports), ("--sports", match.sports)):
        if ranges:
            alternatives = [[*a, f"-m multiport {flag} {chunk}"] for a in alternatives for chunk in _chunks(ranges)]
    return alternatives


def _chunks(ranges: Sequence[Range]) -> list[str]:
    """multiport arguments of at most 15 ports each (a range counts as two)."""
    out: list[list[str]] = [[]]
    used = 0
    for start, end in ranges:
        cost = 1 if start == end else 2
        if used + cost > _MULTIPORT:
            out.append([])
            used = 0
        out[-1].append(str(start) if start == end else f"{start}:{end}")
        used += cost
    return [",".join(chunk) for chunk in out if chunk]



def _comment(text: str) -> str:
    return '"' + _COMMENT_UNSAFE.sub("_", text)[:255] + '"'
