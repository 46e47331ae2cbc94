"""source-port-split: a rule whose source ports hold for some of a client's ephemeral ports only.

A flow's source port is the port its client picks from the ephemeral range (32768-60999, Linux's
default net.ipv4.ip_local_port_range). netfence matches a Calico `source.ports`/`source.notPorts`
criterion when it holds for every port of that range and not when it holds for none; one that
holds for some only (`source: {ports: ["40000:50000"]}`, `notPorts: ["32768:40000"]`, a named
source port whose number lies in the range in notPorts) decides differently from connection to
connection, by the client's pick. netfence reads it as not matching, the kernel matches the real
port: reported once per rule, with the first protocol and source that split.

Named source ports resolve on the source: the endpoints the rule's source side matches (the
remote peers for ingress, the policy's own endpoints for egress).
"""

from __future__ import annotations

from collections.abc import Iterator

from netfence.analysis.lint.context import Context, PolicyEntry, direction_field
from netfence.analysis.lint.finding import Check, Finding, Severity
from netfence.ir.types import EPHEMERAL_PORTS, Action, EndpointInfo, Rule, SourcePortMatch
from netfence.model.calico import CalicoPolicy
from netfence.model.policies import Direction
from netfence.model.ports import PORTED_PROTOCOLS, Protocol


def run(context: Context) -> Iterator[Finding]:
    for entry in context.entries(CalicoPolicy):
        policy = entry.policy
        assert isinstance(policy, CalicoPolicy)
        for direction in Direction:
            if context.rules(entry.ref, direction) is None:
                continue
            for index, calico in enumerate(policy.rules(direction)):
                if not (calico.source.ports or calico.source.not_ports):
                    continue
                for rule in context.ir_rules(entry.ref, direction, index):
                    found = _split(context, entry, direction, rule)
                    if found is not None:
                        yield _finding(entry, direction, index, rule, *found)
                        break


def _split(
    context: Context, entry: PolicyEntry, direction: Direction, rule: Rule
) -> tuple[Protocol, EndpointInfo | None, list[tuple[int, int]]] | None:
    """The first (protocol, source, ephemeral ports it holds for) where the criterion splits."""
    if rule.action is Action.LOG or not rule.constrains_source_port:
        return None
    protocols = [p for p in PORTED_PROTOCOLS if rule.protocol is None or rule.protocol == p]
    sources: list[EndpointInfo | None] = [None]
    if rule.names_source_port:
        sources = list(_sources(context, entry, direction, rule))
    for protocol in protocols:
        for source in sources:
            if rule.source_port_match(protocol, source) is SourcePortMatch.SOME:
                return protocol, source, rule.source_port_spans(protocol, source)
    return None


def _sources(context: Context, entry: PolicyEntry, direction: Direction, rule: Rule) -> Iterator[EndpointInfo]:
    """The endpoints a flow the rule matches can come from (named ports resolve on them)."""
    if direction is Direction.EGRESS:
        rules = context.rules(entry.ref, direction)
        assert rules is not None
        for endpoint in sorted(rules.subjects):
            info = context.endpoint(endpoint)
            if info is not None and (rule.local is None or rule.local.matches(info.id, info.ips)):
                yield info
        return
    for info in context.ruleset.endpoints:
        if rule.peers is None or any(peer.matches(info.id, info.ips) for peer in rule.peers):
            yield info


def _finding(
    entry: PolicyEntry,
    direction: Direction,
    index: int,
    rule: Rule,
    protocol: Protocol,
    source: EndpointInfo | None,
    held: list[tuple[int, int]],
) -> Finding:
    low, high = EPHEMERAL_PORTS
    count = sum(b - a + 1 for a, b in held)
    shown = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in held[:3]) + (", ..." if len(held) > 3 else "")
    field = "ports" if rule.source_ports else "notPorts"
    whose = f" from {source.id}" if source is not None else ""
    return CHECK.finding(
        entry.label,
        entry.location,
        f"{direction}[{index}] source ports hold for {count} of the {high - low + 1} ephemeral ports "
        f"{low}-{high} a client picks from ({shown}; {protocol}{whose}): whether the rule matches depends on "
        "the client's source port; netfence reads it as not matching",
        f"cover all of {low}-{high} (e.g. 1024:65535) or none of it; a source port identifies a "
        "connection, not a client",
        ("spec", direction_field(direction), index, "source", field),
    )


CHECK = Check(
    "source-port-split",
    Severity.WARNING,
    "Source ports that hold for some of a client's ephemeral ports only",
    run,
    needs_pods=False,
)
