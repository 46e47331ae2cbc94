"""An external host's own firewall against the per-flow evaluator, on IR Rulesets drawn directly.

The firewall (dataplane/host.py) is walked here as the kernel walks it, packet by packet: the
hook's gate, the tier chains, every test of every rule. For each draw one endpoint becomes the
host; every flow to and from it on every address pair and port must get the verdict `evaluate`
gives the host's side, whichever ephemeral source port (32768-60999) the client picks. Source-port
criteria that hold for some of those ports only are left out: the analysis reads them as not
matching, the kernel's verdict depends on the pick (lint check source-port-split).
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address

from hypothesis import assume, given, note, settings
from hypothesis import strategies as st
from ir_strategies import IR_FLOW_PORTS, rulesets

from netfence.analysis.verdict import Flow, Party, evaluate
from netfence.dataplane.host import HostFirewall, Match, Verdict, compile_host
from netfence.ir.types import EPHEMERAL_PORTS, EndpointInfo, EndpointKind, Rule, Ruleset, SourcePortMatch, Tier
from netfence.model.endpoints import IPAddress
from netfence.model.policies import Direction
from netfence.model.ports import PORTED_PROTOCOLS, FlowPort, Protocol

DIFFERENTIAL = settings(max_examples=300, deadline=None)
#: Addresses no drawn endpoint may hold, and some that endpoints often hold.
OUTSIDE = tuple(ip_address(a) for a in ("10.0.0.9", "10.0.1.2", "192.0.2.1", "fd00::2", "2001:db8::1"))
ECHO_REQUEST = (8, 0)


#: Source ports a client may pick: the ends and the middle of the ephemeral range.
SOURCE_PORTS = (EPHEMERAL_PORTS[0], 40000, 45000, EPHEMERAL_PORTS[1])


def without_split_source_ports(ruleset: Ruleset) -> Ruleset:
    """The ruleset without the source-port criteria that split the ephemeral range for some
    protocol and source."""
    sources = (None, *ruleset.endpoints)

    def kept(rule: Rule) -> Rule:
        split = any(
            rule.source_port_match(protocol, source) is SourcePortMatch.SOME
            for protocol in PORTED_PROTOCOLS
            for source in sources
        )
        return replace(rule, source_ports=(), not_source_ports=()) if split else rule

    def tiers(items: tuple[Tier, ...]) -> tuple[Tier, ...]:
        return tuple(
            replace(tier, policies=tuple(replace(p, rules=tuple(kept(r) for r in p.rules)) for p in tier.policies))
            for tier in items
        )

    return Ruleset(ruleset.endpoints, tiers(ruleset.ingress), tiers(ruleset.egress), ruleset.default_action)


def as_host(ruleset: Ruleset, host: EndpointInfo) -> Ruleset:
    endpoints = tuple(replace(e, kind=EndpointKind.EXTERNAL) if e.id == host.id else e for e in ruleset.endpoints)
    return Ruleset(endpoints, ruleset.ingress, ruleset.egress, ruleset.default_action)


def holds(match: Match, local: IPAddress, remote: IPAddress, port: FlowPort, source_port: int) -> bool:
    """Whether a packet of the flow passes every test of `match`, as nft and iptables test it."""
    if match.family is not None and match.family != local.version:
        return False
    for address_set, address in ((match.remote, remote), (match.local, local)):
        if address_set is not None:
            if address_set.family != address.version:
                return False
            if not any(lo <= int(address) <= hi for lo, hi in address_set.spans):
                return False
    protocol = port.protocol
    if match.protocol is not None and match.protocol != protocol:
        return False
    if protocol in match.not_protocols:
        return False

    def within(ranges: tuple[tuple[int, int], ...]) -> bool:
        return port.port is not None and any(a <= port.port <= b for a, b in ranges)

    if match.dports and not within(match.dports):
        return False
    if match.not_dports and within(match.not_dports):
        return False
    if match.sports or match.not_sports:
        if port.port is None:
            return False  # a source port test needs a packet with ports
        if match.sports and not any(a <= source_port <= b for a, b in match.sports):
            return False
        if any(a <= source_port <= b for a, b in match.not_sports):
            return False
    for icmp, negate in ((match.icmp, False), (match.not_icmp, True)):
        if icmp is None:
            continue
        if protocol is not Protocol.ICMP:
            return False  # an ICMP header test needs an ICMP packet
        kind, code = icmp
        same = kind == ECHO_REQUEST[0] and (code is None or code == ECHO_REQUEST[1])
        if same == negate:
            return False
    return True


def walk(
    firewall: HostFirewall, direction: Direction, local: IPAddress, remote: IPAddress, port: FlowPort, source_port: int
) -> bool:
    """The verdict of the host's hook for the first packet of the flow."""
    name = firewall.entry(direction)
    if name is None:
        return True
    chains = {chain.name: chain for chain in firewall.chains}
    for _ in range(len(chains) + 1):
        for rule in chains[name].rules:
            if not holds(rule.match, local, remote, port, source_port):
                continue
            if rule.verdict is Verdict.ACCEPT:
                return True
            if rule.verdict is Verdict.DROP:
                return False
            if rule.verdict is Verdict.GOTO:
                assert rule.target is not None
                name = rule.target
                break
        else:
            raise AssertionError(f"chain {name} ended without a verdict")
    raise AssertionError("the chains loop")


@DIFFERENTIAL
@given(rulesets(), st.data())
def test_host_firewall_gives_every_flow_the_evaluators_verdict_for_the_hosts_side(
    ruleset: Ruleset, data: st.DataObject
) -> None:
    candidates = [e for e in ruleset.endpoints if e.ips]
    assume(candidates)
    host = data.draw(st.sampled_from(candidates))
    ruleset = as_host(without_split_source_ports(ruleset), host)
    host = ruleset.endpoint(host.id)  # type: ignore[assignment]
    assert host is not None
    note(repr(ruleset))
    firewall = compile_host(ruleset, host.id)
    owners: dict[IPAddress, list[EndpointInfo]] = {}
    for endpoint in ruleset.endpoints:
        for address in endpoint.ips:
            owners.setdefault(address, []).append(endpoint)
    if any(len(owners[a]) > 1 for a in host.ips):
        return  # another endpoint answers on the host's address: no packet tells them apart
    remotes: list[tuple[Party, IPAddress]] = []
    for address, found in owners.items():
        if len(found) == 1 and found[0].id != host.id:
            remotes.append((Party(found[0].id, found[0], (address,)), address))
    remotes += [(Party.outside(a), a) for a in OUTSIDE if a not in owners]
    wrong = []
    for local in host.ips:
        me = Party(host.id, host, (local,))
        for remote, address in remotes:
            if address.version != local.version:
                continue
            for port in IR_FLOW_PORTS:
                if port.protocol is Protocol.ICMP and local.version == 6:
                    continue  # the evaluator's ICMP is an IPv4 echo request
                egress = evaluate(ruleset, Flow(me, remote, port)).egress.allowed
                ingress = evaluate(ruleset, Flow(remote, me, port)).ingress.allowed
                for source_port in SOURCE_PORTS:
                    got = (walk(firewall, Direction.EGRESS, local, address, port, source_port),
                           walk(firewall, Direction.INGRESS, local, address, port, source_port))  # fmt: skip
                    if got != (egress, ingress):
                        expected = (egress, ingress)
                        wrong.append(
                            f"{local} <-> {remote.label} {address} {port} from port {source_port}: "
                            f"firewall {got}, evaluate {expected}"
                        )
    assert not wrong, "\n".join(wrong)
