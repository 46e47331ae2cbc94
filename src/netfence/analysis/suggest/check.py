"""The suggestion checked with the analyzer: every observed flow allowed, and which unobserved
pod pairs it also allows.

The suggested policies are judged on their own (the inventory's endpoints, none of its own
policies), over the ports observed. A flow between two pods that was not observed but is allowed
is a replica generalization when a flow between the same two workloads on the same port was
observed (a policy selects a workload, never one replica); anything else would be a selector
matching more than it should, and is reported as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from netfence.analysis.matrix import compute_matrix
from netfence.analysis.suggest.flows import End, ResolvedFlow, end_name
from netfence.analysis.suggest.workloads import Workload
from netfence.analysis.verdict import Flow, Party, evaluate
from netfence.ir.build import build_ruleset
from netfence.ir.types import EndpointKind, Ruleset
from netfence.model.calico import CalicoPolicy
from netfence.model.endpoints import EndpointId, Pod
from netfence.model.inventory import Inventory
from netfence.model.policies import NetworkPolicy
from netfence.model.ports import FlowPort


@dataclass(frozen=True, slots=True)
class Generalization:
    """Unobserved pod pairs a policy allows because it admits whole workloads: between pods of
    the two workloads of an observed flow, on its port."""

    #: Workload ids.
    source: str
    destination: str
    port: FlowPort
    #: The observed flow between the two workloads on this port (the first, in order).
    like: ResolvedFlow
    #: (source pod, destination pod), sorted.
    pairs: tuple[tuple[EndpointId, EndpointId], ...]


@dataclass(frozen=True, slots=True)
class ExtraFlow:
    """An allowed, unobserved flow between two pods that no observed flow generalizes to."""

    source: EndpointId
    destination: EndpointId
    port: FlowPort


@dataclass(frozen=True, slots=True)
class Check:
    #: Observed flows the suggestion does not allow (a bug if ever non-empty).
    denied: tuple[ResolvedFlow, ...]
    #: Sorted by workloads, then port.
    generalized: tuple[Generalization, ...]
    #: Sorted; a selector matching more than it should if ever non-empty.
    unexpected: tuple[ExtraFlow, ...]
    #: How many (source pod, destination pod, port) the matrix judged.
    judged: int

    @property
    def extra(self) -> list[tuple[EndpointId, EndpointId, FlowPort]]:
        """Every allowed, unobserved flow between two pods, sorted."""
        found = [(s, d, g.port) for g in self.generalized for s, d in g.pairs]
        found += [(e.source, e.destination, e.port) for e in self.unexpected]
        return sorted(found, key=lambda f: (f[0], f[1], f[2].sort_key))


def suggested_ruleset(
    inventory: Inventory, policies: Sequence[NetworkPolicy], calico_policies: Sequence[CalicoPolicy]
) -> Ruleset:
    """The inventory's endpoints under the suggested policies only."""
    alone = replace(inventory, policies=tuple(policies), calico_policies=tuple(calico_policies), admin_policies=())
    return build_ruleset(alone)


def check(
    inventory: Inventory,
    ruleset: Ruleset,
    workloads: Sequence[Workload],
    flows: Sequence[ResolvedFlow],
    ingress: set[str],
    egress: set[str],
) -> Check:
    """Judge `flows`, then every pod pair on the observed ports that the suggestion restricts:
    whose destination is in `ingress` or whose source is in `egress` (workload ids, Workload.id,
    with a policy for that direction)."""
    of_pod = {pod: w for w in workloads for pod in w.pods}
    pods = [e for e in ruleset.endpoints if e.kind is EndpointKind.POD and e.id in of_pod]
    row_of = {e.id: i for i, e in enumerate(pods)}
    ports = sorted({f.port for f in flows}, key=lambda p: p.sort_key)
    port_of = {port: p for p, port in enumerate(ports)}
    names = sorted({w.id for w in workloads})
    workload_of = {name: k for k, name in enumerate(names)}
    column_workload = np.array([workload_of[of_pod[e.id].id] for e in pods], dtype=np.int64)

    # Observed pod pairs per (port, source row), and workload pairs per port with their first flow.
    observed: dict[tuple[int, int], list[int]] = {}
    observed_workloads = np.zeros((len(ports), len(names), len(names)), dtype=bool)
    like: dict[tuple[int, int, int], ResolvedFlow] = {}
    for f in sorted(flows, key=_flow_key):
        if isinstance(f.source, Pod) and isinstance(f.destination, Pod):
            p, i, j = port_of[f.port], row_of[f.source.id], row_of[f.destination.id]
            observed.setdefault((p, i), []).append(j)
            a, b = column_workload[i], column_workload[j]
            observed_workloads[p, a, b] = True
            like.setdefault((p, int(a), int(b)), f)

    matrix = compute_matrix(ruleset, ports, pods) if ports and pods else None
    denied = []
    for f in flows:
        if matrix is not None and isinstance(f.source, Pod) and isinstance(f.destination, Pod):
            allowed = bool(matrix.row(port_of[f.port], row_of[f.source.id])[row_of[f.destination.id]])
        else:
            flow = Flow(_party(f.source, ruleset, inventory), _party(f.destination, ruleset, inventory), f.port)
            allowed = evaluate(ruleset, flow).allowed
        if not allowed:
            denied.append(f)

    as_destination = np.array([of_pod[e.id].id in ingress for e in pods], dtype=bool)
    judged = 0
    groups: dict[tuple[int, int, int], list[tuple[EndpointId, EndpointId]]] = {}
    unexpected: list[ExtraFlow] = []
    for i, source in enumerate(pods if matrix is not None else ()):
        # A pod and itself left out; an unrestricted source only towards restricted destinations.
        considered = np.ones(len(pods), dtype=bool) if of_pod[source.id].id in egress else as_destination.copy()
        considered[i] = False
        judged += len(ports) * int(considered.sum())
        a = int(column_workload[i])
        for p, port in enumerate(ports):
            assert matrix is not None
            row = matrix.row(p, i) & considered
            row[observed.get((p, i), [])] = False
            if not row.any():
                continue
            general = observed_workloads[p, a][column_workload]
            for column in np.flatnonzero(row & ~general).tolist():
                unexpected.append(ExtraFlow(source.id, pods[column].id, port))
            for column in np.flatnonzero(row & general).tolist():
                groups.setdefault((p, a, int(column_workload[column])), []).append((source.id, pods[column].id))
    generalized = [
        Generalization(names[a], names[b], ports[p], like[(p, a, b)], tuple(sorted(pairs)))
        for (p, a, b), pairs in groups.items()
    ]
    generalized.sort(key=lambda g: (g.source, g.destination, g.port.sort_key))
    unexpected.sort(key=lambda e: (e.source, e.destination, e.port.sort_key))
    return Check(tuple(denied), tuple(generalized), tuple(unexpected), judged)


def _party(end: End, ruleset: Ruleset, inventory: Inventory) -> Party:
    if isinstance(end, Pod):
        endpoint = ruleset.endpoint(end.id)
    else:
        workload = inventory.external_by_ip(end)
        endpoint = ruleset.endpoint(workload.id) if workload is not None else None
        if endpoint is None:
            return Party.outside(end)
    assert endpoint is not None, f"{end} is in the inventory but not in its ruleset"
    return Party.of(endpoint)


def _flow_key(flow: ResolvedFlow) -> tuple[str, str, tuple[int, str]]:
    return (end_name(flow.source), end_name(flow.destination), flow.port.sort_key)
