"""The checks the differential properties run, shared by the tests here and bench/fuzz.py:
load a generated cluster through the real loader, then compare the per-flow evaluator with the
matrix engine, or with what a kernel lab lets through."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from cluster_strategies import LAB_LAYOUT, LAB_PORTS, ClusterSpec, Layout, to_yaml

from netfence.analysis.matrix import compute_matrix
from netfence.analysis.verdict import Flow, Party, evaluate
from netfence.errors import InputError
from netfence.ir.build import build_ruleset
from netfence.ir.types import EndpointInfo, Ruleset
from netfence.lab.clean import clean
from netfence.lab.control import enforce, up
from netfence.lab.plan import LabPlan, lab_inventory
from netfence.lab.probe import probe
from netfence.model.inventory import Inventory
from netfence.model.ports import FlowPort
from netfence.sources.documents import Source, parse_source
from netfence.sources.load import build_inventory


def load(cluster: ClusterSpec) -> Inventory:
    """The cluster as netfence reads it from YAML; a generated cluster is valid, so any problem
    is a generator or loader bug and fails the example."""
    problems: list[InputError] = []
    documents = parse_source(Source("cluster.yaml", to_yaml(cluster.objects)), problems)
    assert problems == [], [str(p) for p in problems]
    return build_inventory(documents).inventory


def verdict_line(ruleset: Ruleset, source: EndpointInfo, destination: EndpointInfo, port: FlowPort) -> str:
    verdict = evaluate(ruleset, Flow(Party.of(source), Party.of(destination), port))
    return (
        f"{source.id} -> {destination.id} {port}: evaluate {'allowed' if verdict.allowed else 'denied'} "
        f"(egress {verdict.egress.reason} {verdict.egress.rule}, ingress {verdict.ingress.reason} {verdict.ingress.rule})"
    )


def engine_disagreements(ruleset: Ruleset, ports: Sequence[FlowPort]) -> list[str]:
    """Every (source, destination, port) where compute_matrix and evaluate differ."""
    matrix = compute_matrix(ruleset, ports)
    wrong = []
    for p, port in enumerate(matrix.ports):
        for i, source in enumerate(matrix.sources):
            row = matrix.row(p, i)
            for j, destination in enumerate(matrix.destinations):
                verdict = evaluate(ruleset, Flow(Party.of(source), Party.of(destination), port))
                if bool(row[j]) != verdict.allowed:
                    wrong.append(f"matrix {bool(row[j])}; " + verdict_line(ruleset, source, destination, port))
    return wrong


def base_objects(layout: Layout) -> list[dict[str, object]]:
    """The pods of a layout with nothing else: what a lab is built from."""
    objects: list[dict[str, object]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in layout.namespaces
    ]
    for slot in layout.pods:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": slot.name, "namespace": slot.namespace},
                "spec": {"nodeName": slot.node, "containers": [{"name": "c", "image": "busybox"}]},
                "status": {"phase": "Running", "podIP": slot.address},
            }
        )
    return objects


@dataclass
class KernelLab:
    """One lab over LAB_LAYOUT, up once and reused by every scenario: each scenario enforces its
    own ruleset, replacing the last one's tables, and is probed on LAB_PORTS."""

    plan: LabPlan | None = None
    scenarios: int = 0
    _names: itertools.count[int] = field(default_factory=itertools.count)

    def start(self) -> LabPlan:
        if self.plan is None:
            from cluster_strategies import ClusterSpec as Spec

            inventory = load(Spec(LAB_LAYOUT, tuple(base_objects(LAB_LAYOUT))))
            name = f"f{os.getpid()}k{next(self._names)}"
            self.plan = up(inventory, name, LAB_PORTS).state.plan
        return self.plan

    def close(self) -> None:
        if self.plan is not None:
            clean(self.plan.name)
            self.plan = None

    def disagreements(self, cluster: ClusterSpec) -> list[str]:
        """Enforce the cluster's policies in the kernel and probe every pod pair on LAB_PORTS;
        every flow where the kernel and the per-flow evaluator differ."""
        plan = self.start()
        ruleset = build_ruleset(lab_inventory(load(cluster), plan))
        endpoints = [ruleset.endpoint(pod.id) for pod in plan.pods]
        assert all(e is not None for e in endpoints)
        predicted: npt.NDArray[np.bool_] = np.zeros((len(LAB_PORTS), len(endpoints), len(endpoints)), dtype=bool)
        for (p, port), (i, source), (j, destination) in itertools.product(
            enumerate(LAB_PORTS), enumerate(endpoints), enumerate(endpoints)
        ):
            assert source is not None and destination is not None
            predicted[p, i, j] = evaluate(ruleset, Flow(Party.of(source), Party.of(destination), port)).allowed
        enforce(plan, ruleset)
        report = probe(plan, list(LAB_PORTS), expected=predicted)
        self.scenarios += 1
        wrong = []
        for p, i, j in zip(*np.nonzero(report.allowed != predicted), strict=True):
            source, destination = endpoints[i], endpoints[j]
            assert source is not None and destination is not None
            wrong.append(f"kernel {report.outcomes[p, i, j]}; " + verdict_line(ruleset, source, destination, LAB_PORTS[p]))
        return wrong
