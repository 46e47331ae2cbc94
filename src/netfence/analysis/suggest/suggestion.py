"""suggest(inventory, records) -> Suggestion: the least-privilege policies for what was observed,
with the notes on what was left out and the analyzer's check of the result."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from netfence.analysis.suggest.build import (
    DNS_NAMESPACE,
    DNS_PORTS,
    Dependencies,
    calico_policies,
    dependency_map,
    network_policies,
)
from netfence.analysis.suggest.check import Check, check, suggested_ruleset
from netfence.analysis.suggest.flows import Ends, FlowRecord, ResolvedFlow, end_name
from netfence.analysis.suggest.workloads import Workload, group_workloads
from netfence.errors import Location
from netfence.model.calico import CalicoPolicy
from netfence.model.endpoints import Pod
from netfence.model.inventory import Inventory
from netfence.model.labels import Labels
from netfence.model.policies import Direction, NetworkPolicy
from netfence.model.ports import Protocol

#: Put on every suggested policy, so `kubectl get netpol -A -l app.kubernetes.io/managed-by=netfence`
#: finds them.
MANAGED_BY = Labels({"app.kubernetes.io/managed-by": "netfence"})
#: Notes name at most this many items; the rest are counted.
NOTE_LIMIT = 5


class SuggestKind(StrEnum):
    NETWORK_POLICY = "networkpolicy"
    CALICO = "calico"


@dataclass(frozen=True, slots=True)
class Suggestion:
    kind: SuggestKind
    workloads: tuple[Workload, ...]
    dependencies: tuple[Dependencies, ...]
    #: Kubernetes NetworkPolicies (kind networkpolicy), sorted by namespace and name.
    policies: tuple[NetworkPolicy, ...]
    #: Calico NetworkPolicies (kind calico), sorted by namespace and name.
    calico_policies: tuple[CalicoPolicy, ...]
    #: The distinct observed flows the policies are written for; sorted.
    flows: tuple[ResolvedFlow, ...]
    #: How many records were read.
    records: int
    #: What was left out or assumed, one line each.
    notes: tuple[str, ...]
    check: Check
    labels: Labels = MANAGED_BY

    @property
    def policy_count(self) -> int:
        return len(self.policies) + len(self.calico_policies)


def suggest(
    inventory: Inventory,
    records: Sequence[tuple[FlowRecord, Location]],
    *,
    kind: SuggestKind = SuggestKind.NETWORK_POLICY,
    egress: bool = False,
    namespaces: Iterable[str] = (),
    ignored_labels: Iterable[str] = (),
) -> Suggestion:
    """Policies allowing exactly the observed flows, per workload, for every workload of the
    inventory (of `namespaces`, when given): ingress always, egress when asked."""
    notes: list[str] = []
    flows = _resolve_all(inventory, records, kind, notes)
    workloads = group_workloads(inventory.pods, ignored_labels)
    scope = set(namespaces) or None
    if scope is not None:
        unknown = sorted(scope - {w.namespace for w in workloads})
        if unknown:
            notes.append(f"note: no pods in namespace{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    directions = (Direction.INGRESS, Direction.EGRESS) if egress else (Direction.INGRESS,)
    dependencies = dependency_map(workloads, flows, directions, scope)
    dns_peer = egress and not any(p.namespace == DNS_NAMESPACE for p in inventory.pods)
    policies: tuple[NetworkPolicy, ...] = ()
    calico: tuple[CalicoPolicy, ...] = ()
    if kind is SuggestKind.CALICO:
        calico = calico_policies(dependencies, dns_peer)
    else:
        policies = network_policies(dependencies, dns_peer)
    notes += _dependency_notes(dependencies, dns_peer)
    if inventory.policy_count:
        notes.append(
            f"note: the inventory's {inventory.policy_count} policies are left out of the check:"
            " the suggestion is judged on its own"
        )
    ruleset = suggested_ruleset(inventory, policies, calico)
    ingress = {d.workload.id for d in dependencies if d.direction is Direction.INGRESS}
    egress_ids = {d.workload.id for d in dependencies if d.direction is Direction.EGRESS}
    result = check(inventory, ruleset, workloads, flows, ingress, egress_ids)
    return Suggestion(kind, workloads, tuple(dependencies), policies, calico, tuple(flows), len(records), tuple(notes), result)


def _resolve_all(
    inventory: Inventory, records: Sequence[tuple[FlowRecord, Location]], kind: SuggestKind, notes: list[str]
) -> list[ResolvedFlow]:
    skipped: dict[str, list[Location]] = {}
    found: dict[tuple[str, str, tuple[int, str]], ResolvedFlow] = {}
    ends = Ends(inventory)
    places: dict[FlowRecord, list[Location]] = {}
    for record, where in records:  # a recording repeats its flows: resolve each once
        places.setdefault(record, []).append(where)
    for record, wheres in places.items():
        resolved = ends.resolve(record)
        if isinstance(resolved, str):
            skipped.setdefault(resolved, []).extend(wheres)
            continue
        for flow in resolved:
            reason = _unusable(flow, kind)
            if reason is not None:
                skipped.setdefault(reason, []).extend(wheres)
                continue
            found.setdefault((end_name(flow.source), end_name(flow.destination), flow.port.sort_key), flow)
    for reason, wheres in sorted(skipped.items(), key=lambda item: (_place(min(item[1], key=_place)), item[0])):
        first = min(wheres, key=_place)
        count = len(wheres)
        notes.append(f"{first}: skipped{f' ({count} records)' if count > 1 else ''}: {reason}")
    return [found[key] for key in sorted(found)]


def _place(where: Location) -> tuple[str, int]:
    return (where.file, where.line or 0)


def _unusable(flow: ResolvedFlow, kind: SuggestKind) -> str | None:
    if not isinstance(flow.source, Pod) and not isinstance(flow.destination, Pod):
        return f"{end_name(flow.source)} -> {end_name(flow.destination)}: neither end is a pod of the inventory"
    if isinstance(flow.source, Pod) and isinstance(flow.destination, Pod) and flow.source.id == flow.destination.id:
        return f"{flow.source.id} -> itself: a pod reaching itself is always allowed"
    if flow.port.protocol is Protocol.ICMP and kind is SuggestKind.NETWORK_POLICY:
        return (
            f"{end_name(flow.source)} -> {end_name(flow.destination)} ICMP: a NetworkPolicy cannot name ICMP"
            " (its ports are TCP, UDP and SCTP), so it stays denied; --kind calico can allow it"
        )
    return None


def _dependency_notes(dependencies: Sequence[Dependencies], dns_peer: bool) -> list[str]:
    notes = []
    for direction in Direction:
        quiet = [d.workload.id for d in dependencies if d.direction is direction and not d.peers]
        if quiet:
            count = len(quiet)
            shown = ", ".join(quiet[:NOTE_LIMIT]) + (f", and {count - NOTE_LIMIT} more" if count > NOTE_LIMIT else "")
            notes.append(
                f"note: {count} workload{'s' if count > 1 else ''} with no observed {direction}: "
                f"{'their policies admit' if count > 1 else 'its policy admits'} nothing ({shown})"
            )
    if dns_peer and any(
        d.direction is Direction.EGRESS
        and any(not isinstance(p, Workload) and ports & set(DNS_PORTS) for p, ports in d.peers.items())
        for d in dependencies
    ):
        notes.append(
            "note: DNS to addresses outside the inventory also admits kube-system pods k8s-app=kube-dns"
            " (the inventory has no kube-system pods; policies see a DNS Service's backends, not its address)"
        )
    return notes
