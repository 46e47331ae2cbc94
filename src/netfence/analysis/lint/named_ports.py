"""named-port-undeclared: a port name that none of the pods it would resolve on declares.

A named port resolves on the destination of the flow: for an ingress rule the pods the policy
selects, for an egress rule the pods its peers match (every pod when it has no peers). When none
of them declares a containerPort of that name and protocol, the entry matches nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from netfence.analysis.lint.context import Context, PolicyEntry, direction_field
from netfence.analysis.lint.finding import Check, Finding, Severity
from netfence.ir.types import Rule
from netfence.model.admin import AdminPolicy
from netfence.model.calico import CalicoPolicy
from netfence.model.endpoints import EndpointId
from netfence.model.policies import Direction, NetworkPolicy
from netfence.model.ports import Protocol, RuleProtocol


def run(context: Context) -> Iterator[Finding]:
    for entry in context.policies:
        policy = entry.policy
        for direction in Direction:
            if context.rules(entry.ref, direction) is None:
                continue
            for index, named in enumerate(_names(policy, direction)):
                for k, name, protocol, field in named:
                    irs = context.ir_rules(entry.ref, direction, index)
                    if not irs:
                        continue
                    holders = _destinations(context, entry, direction, irs)
                    if not holders:
                        continue  # the rule matches nobody: peer-matches-nothing says so
                    yield from _judge(context, entry, direction, index, k, name, protocol, holders, field)


NamedEntry = tuple[int, str, RuleProtocol | None, tuple[str | int, ...]]


def _names(policy: NetworkPolicy | CalicoPolicy | AdminPolicy, direction: Direction) -> list[list[NamedEntry]]:
    """Per rule: (entry index, name, protocol (None: any), field below the rule) of named ports."""
    found: list[list[NamedEntry]] = []
    if isinstance(policy, NetworkPolicy):
        for rule in policy.rules(direction):
            found.append(
                [(k, p.port, p.protocol, ("ports", k)) for k, p in enumerate(rule.ports or ()) if isinstance(p.port, str)]
            )
    elif isinstance(policy, CalicoPolicy):
        for calico in policy.rules(direction):
            ports = calico.destination.ports
            found.append(
                [(k, p.name, calico.protocol, ("destination", "ports", k)) for k, p in enumerate(ports) if p.name]
            )
    else:
        for admin in policy.rules(direction):
            found.append([(k, p.name, None, ("ports", k)) for k, p in enumerate(admin.ports or ()) if p.name])
    return found


def _destinations(
    context: Context, entry: PolicyEntry, direction: Direction, irs: list[Rule]
) -> frozenset[EndpointId]:
    """The endpoints a named port of these rules resolves on."""
    if direction is Direction.INGRESS:
        rules = context.rules(entry.ref, direction)
        assert rules is not None
        subjects = rules.subjects
        found: set[EndpointId] = set()
        for ir in irs:
            if ir.local is None:
                return subjects
            found |= {s for s in subjects if ir.local.matches(s, context.ips(s))}
        return frozenset(found)
    every = [e.id for e in context.ruleset.endpoints]
    found = set()
    for ir in irs:
        if ir.peers is None:
            return frozenset(every)
        for peer in ir.peers:
            if peer.any_address or peer.blocks:
                found |= {e for e in every if peer.matches(e, context.ips(e))}
            else:
                found |= peer.endpoints
    return frozenset(found)


def _judge(
    context: Context,
    entry: PolicyEntry,
    direction: Direction,
    index: int,
    k: int,
    name: str,
    protocol: RuleProtocol | None,
    holders: frozenset[EndpointId],
    field: tuple[str | int, ...],
) -> Iterator[Finding]:
    declared: dict[Protocol, list[EndpointId]] = {}
    for endpoint in sorted(holders):
        info = context.endpoint(endpoint)
        for port_name, port_protocol, _ in info.named_ports if info is not None else ():
            if port_name == name:
                declared.setdefault(port_protocol, []).append(endpoint)
    if protocol is None and declared or protocol is not None and protocol in declared:
        return
    where = "the pods the policy selects" if direction is Direction.INGRESS else "the pods its peers match"
    count = len(holders)
    message = f"{direction}[{index}] port {name!r}"
    message += f" ({protocol})" if protocol is not None else ""
    message += f": none of {where} ({count} pod{'s' if count != 1 else ''}) declares a containerPort named {name!r}"
    if declared:
        other = ", ".join(f"{p} on {declared[p][0]}" for p in sorted(declared))
        message += f" with that protocol (it is declared as {other})"
    yield CHECK.finding(
        entry.label,
        entry.location,
        message + "; the entry matches nothing",
        "use the port number, or the name the pods declare in spec.containers[].ports[].name"
        + (" with the same protocol" if declared else ""),
        ("spec", direction_field(direction), index, *field),
    )


CHECK = Check("named-port-undeclared", Severity.WARNING, "A named port no pod it resolves on declares", run)
