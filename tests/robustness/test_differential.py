"""Differential fuzzing over random clusters with policies of every kind, loaded from YAML by the
real loader: the per-flow evaluator, the matrix engine and (marked lab) the kernel must agree on
every flow. bench/fuzz.py runs the same properties for thousands of examples and hundreds of
kernel scenarios; regressions found that way are pinned in test_differential_regressions.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cluster_strategies import FLOW_PORTS, LAB_LAYOUT, ClusterSpec, clusters
from differential import KernelLab, engine_disagreements, load
from hypothesis import HealthCheck, event, given, note, settings

from netfence.ir.build import build_ruleset

#: A few hundred examples in well under 20 s.
ENGINES = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: A few dozen kernel scenarios (each enforces a ruleset on two nodes and probes 6 x 6 x 4 flows).
KERNEL = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def kinds(cluster: ClusterSpec) -> None:
    for obj in cluster.objects:
        event(f"kind {obj['kind']}")


@ENGINES
@given(clusters())
def test_per_flow_evaluator_equals_the_matrix_engine_on_random_clusters_of_every_kind(cluster: ClusterSpec) -> None:
    note(str(cluster))
    kinds(cluster)
    ruleset = build_ruleset(load(cluster))
    wrong = engine_disagreements(ruleset, FLOW_PORTS)
    assert not wrong, "\n".join(wrong)


@pytest.fixture(scope="module")
def kernel_lab() -> Iterator[KernelLab]:
    lab = KernelLab()
    try:
        yield lab
    finally:
        lab.close()


@pytest.mark.lab
@KERNEL
@given(cluster=clusters(LAB_LAYOUT, kernel=True, max_policies=6))
def test_per_flow_evaluator_equals_the_kernel_on_random_policies_of_every_kind(
    kernel_lab: KernelLab, cluster: ClusterSpec
) -> None:
    note(str(cluster))
    kinds(cluster)
    wrong = kernel_lab.disagreements(cluster)
    assert not wrong, "\n".join(wrong)
