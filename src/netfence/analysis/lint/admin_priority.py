"""admin-priority-overlap: two AdminNetworkPolicies (or ClusterNetworkPolicies of one tier) with
the same priority whose rules can match one flow with different actions.

The API leaves the outcome undefined then; netfence, like Calico, orders them by name, which no
cluster should depend on. Reported when the two select a common pod and a rule of each, in the
same direction, matches a common peer on a common port with another action. Without pods loaded,
every pair with the same priority is reported (overlap cannot be ruled out).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

from netfence.analysis.lint.context import Context, PolicyEntry
from netfence.analysis.lint.coverage import PORTED, hit
from netfence.analysis.lint.finding import Check, Finding, Severity
from netfence.ir.types import CidrBlock, EndpointInfo, Rule
from netfence.model.admin import AdminPolicy
from netfence.model.endpoints import EndpointId
from netfence.model.policies import Direction
from netfence.model.ports import FlowPort, Protocol


def run(context: Context) -> Iterator[Finding]:
    groups: dict[tuple[str, int], list[PolicyEntry]] = {}
    for entry in context.entries(AdminPolicy):
        policy = entry.policy
        assert isinstance(policy, AdminPolicy)
        if policy.priority is not None:
            groups.setdefault((str(policy.tier), policy.priority), []).append(entry)
    for (_, priority), entries in sorted(groups.items()):
        for a, b in itertools.combinations(sorted(entries, key=lambda e: e.ref.name), 2):
            if not context.has_pods:
                clash = "their overlap cannot be judged without pods"
            else:
                found = _clash(context, a, b)
                if found is None:
                    continue
                clash = found
            yield CHECK.finding(
                b.label,
                b.location,
                f"priority {priority} is also {a.label}'s; {clash}: which one decides is undefined by the API "
                "(netfence, like Calico, takes them by name)",
                "give the two policies different priorities",
                ("spec", "priority"),
            )


def _clash(context: Context, a: PolicyEntry, b: PolicyEntry) -> str | None:
    common = context.subjects(a.ref) & context.subjects(b.ref)
    if not common:
        return None
    for direction in Direction:
        first, second = context.rules(a.ref, direction), context.rules(b.ref, direction)
        if first is None or second is None:
            continue
        local = first.subjects & second.subjects
        if not local:
            continue
        for x, y in itertools.product(first.rules, second.rules):
            if x.action is y.action:
                continue
            remote, outside = _common_remote(context, x, y)
            if not remote and not outside:
                continue
            chosen = local if direction is Direction.INGRESS else remote
            destinations = _distinct(context, chosen) + ([None] if outside or direction is Direction.INGRESS else [])
            port = _common_port(destinations, x, y)
            if port is not None:
                return (
                    f"both select {sorted(local)[0]}, and {direction}[{x.ref.index}] ({x.action.value.capitalize()}) and "
                    f"{b.ref.name} {direction}[{y.ref.index}] ({y.action.value.capitalize()}) both match some peer on {port}"
                )
    return None


def _matched(context: Context, rule: Rule) -> set[EndpointId]:
    if rule.peers is None:
        return {e.id for e in context.ruleset.endpoints}
    return {e.id for e in context.ruleset.endpoints if any(p.matches(e.id, e.ips) for p in rule.peers)}


def _blocks(rule: Rule) -> list[CidrBlock] | None:
    """The rule's address blocks; None when it matches every address."""
    if rule.peers is None:
        return None
    return [b for p in rule.peers for b in p.blocks]


def _common_remote(context: Context, x: Rule, y: Rule) -> tuple[set[EndpointId], bool]:
    """Endpoints both rules match, and whether they share an address outside the endpoints."""
    endpoints = _matched(context, x) & _matched(context, y)
    first, second = _blocks(x), _blocks(y)
    if first is None or second is None:
        outside = bool(first is None or first) and bool(second is None or second)
    else:
        outside = any(
            b.network.version == c.network.version and b.network.overlaps(c.network) for b in first for c in second
        )
    return endpoints, outside


def _distinct(context: Context, endpoints: Iterable[EndpointId]) -> list[EndpointInfo | None]:
    """One endpoint per distinct set of named ports."""
    chosen: dict[object, EndpointInfo | None] = {}
    for endpoint in sorted(endpoints):
        info = context.endpoint(endpoint)
        if info is not None:
            chosen.setdefault(info.named_ports, info)
    return list(chosen.values())


def _common_port(destinations: list[EndpointInfo | None], x: Rule, y: Rule) -> FlowPort | None:
    numbers = {1}
    for entry in (*(x.ports or ()), *(y.ports or ())):
        if entry.start is not None:
            numbers.update((entry.start, (entry.end if entry.end is not None else entry.start) + 1))
    for d in destinations:
        for _, _, number in d.named_ports if d is not None else ():
            numbers.update((number, number + 1))
    flows = [FlowPort(p, n) for p in PORTED for n in sorted(n for n in numbers if 1 <= n <= 65535)]
    flows.append(FlowPort(Protocol.ICMP, None))
    for d in destinations:
        for port in flows:
            if hit(x, port, d) and hit(y, port, d):
                return port
    return None


CHECK = Check(
    "admin-priority-overlap",
    Severity.WARNING,
    "Two AdminNetworkPolicies with the same priority that overlap",
    run,
    needs_pods=False,
)
