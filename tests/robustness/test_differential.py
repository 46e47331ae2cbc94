"""Differential fuzzing over random clusters with policies of every kind, loaded from YAML by the
real loader: the per-flow evaluator, the matrix engine and (marked lab) the kernel must agree on
every flow. bench/fuzz.py runs the same properties for thousands of examples and hundreds of
kernel scenarios; regressions found that way are pinned in test_differential_regressions.py.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest
from cluster_strategies import FLOW_PORTS, LAB_LAYOUT, ClusterSpec, clusters
from differential import KernelLab, engine_disagreements, load
from hypothesis import HealthCheck, event, given, note, settings

from netfence.dataplane.apply import run_nft
from netfence.dataplane.nft.compile import compile_node
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
def scratch_netns() -> Iterator[str]:
    name = f"netfence-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.lab
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster=clusters())
def test_every_node_table_of_a_random_cluster_is_accepted_by_nft(scratch_netns: str, cluster: ClusterSpec) -> None:
    """Every feature, IPv6, hostNetwork pods and Calico source ports included: what loads
    compiles to tables the kernel takes (`nft --check` of the whole replacement)."""
    note(str(cluster))
    ruleset = build_ruleset(load(cluster))
    for node in ("node-a", "node-b", None):
        run_nft(["--check", "-f", "-"], scratch_netns, compile_node(ruleset, node).replace_script())


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
