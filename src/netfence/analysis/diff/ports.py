"""The ports a diff compares when none are given."""

from __future__ import annotations

from netfence.analysis.diff.changes import Snapshot
from netfence.ir.types import Ruleset
from netfence.model.policies import Direction
from netfence.model.ports import PORT_PROTOCOLS, FlowPort, Protocol

#: Compared by default besides the ports policies mention and pods declare: DNS over UDP and
#: TCP (what a default-deny egress most often breaks), HTTP and HTTPS (the ports most services
#: are reached on, and stand-ins for "some port no rule names").
COMMON_PORTS = (
    FlowPort(Protocol.UDP, 53),
    FlowPort(Protocol.TCP, 53),
    FlowPort(Protocol.TCP, 80),
    FlowPort(Protocol.TCP, 443),
)


def default_ports(*snapshots: Snapshot) -> list[FlowPort]:
    """The ports a diff compares unless told: every port a rule of either side names (numbers,
    both ends of ranges, named ports as the endpoints resolve them, ICMP when a rule asks for
    it), every containerPort a pod declares, and COMMON_PORTS; sorted by number, then protocol."""
    found: set[FlowPort] = set(COMMON_PORTS)
    for snapshot in snapshots:
        pods = [pod for pod in snapshot.inventory.pods if not pod.host_network]
        found.update(FlowPort(p.protocol, p.port) for pod in pods for p in pod.ports)
        found.update(_mentioned_ports(snapshot.ruleset))
    return sorted(found, key=lambda port: port.sort_key)


def _mentioned_ports(ruleset: Ruleset) -> set[FlowPort]:
    named: dict[str, set[FlowPort]] = {}
    for endpoint in ruleset.endpoints:
        for name, protocol, number in endpoint.named_ports:
            named.setdefault(name, set()).add(FlowPort(protocol, number))
    found: set[FlowPort] = set()
    for direction in Direction:
        for tier in ruleset.tiers(direction):
            for policy in tier.policies:
                for rule in policy.rules:
                    if rule.protocol is Protocol.ICMP or rule.icmp is not None:
                        found.add(FlowPort(Protocol.ICMP, None))
                    for entry in (*(rule.ports or ()), *rule.not_ports):
                        if entry.name is not None:
                            found.update(
                                p for p in named.get(entry.name, ()) if entry.protocol in (None, p.protocol)
                            )
                            continue
                        if entry.start is None:
                            continue
                        end = entry.end if entry.end is not None else entry.start
                        for protocol in PORT_PROTOCOLS:
                            if entry.protocol in (None, protocol):
                                found.update((FlowPort(protocol, entry.start), FlowPort(protocol, end)))
    return found
