"""The class-based matrix engine against the per-flow evaluator, on IR Rulesets drawn directly.

test_policy_properties.py compares the two on clusters loaded from NetworkPolicy YAML; this
covers what only the IR (Calico, AdminNetworkPolicy kinds) expresses: address conjunctions and
exclusions, local matches, not-ports, Pass and Log, tiers without an end action, per-endpoint
default actions. bench/fuzz_matrix.py runs the same properties for thousands of examples.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, note, settings
from hypothesis import strategies as st
from ir_strategies import IR_FLOW_PORTS, rulesets

from netfence.analysis import matrix as matrix_module
from netfence.analysis.matrix import Matrix, compute_matrix
from netfence.analysis.verdict import Flow, Party, evaluate
from netfence.ir.types import EndpointInfo, Ruleset

# A few seconds for the file: the rulesets are small, the pairs few.
DIFFERENTIAL = settings(max_examples=300, deadline=None)
SOME = settings(max_examples=100, deadline=None)


def disagreements(ruleset: Ruleset, matrix: Matrix) -> list[str]:
    """Every (source, destination, port) where the matrix and `evaluate` differ."""
    wrong = []
    for p, port in enumerate(matrix.ports):
        for i, source in enumerate(matrix.sources):
            row = matrix.row(p, i)
            for j, destination in enumerate(matrix.destinations):
                verdict = evaluate(ruleset, Flow(Party.of(source), Party.of(destination), port))
                if bool(row[j]) != verdict.allowed:
                    wrong.append(
                        f"{source.id} -> {destination.id} {port}: matrix {bool(row[j])}, evaluate {verdict.allowed} "
                        f"(egress {verdict.egress.reason} {verdict.egress.rule}, "
                        f"ingress {verdict.ingress.reason} {verdict.ingress.rule})"
                    )
    return wrong


@DIFFERENTIAL
@given(rulesets())
def test_class_engine_agrees_with_per_flow_evaluator_on_every_ir_feature(ruleset: Ruleset) -> None:
    note(repr(ruleset))
    matrix = compute_matrix(ruleset, IR_FLOW_PORTS)
    assert matrix.sources == matrix.destinations == ruleset.endpoints
    wrong = disagreements(ruleset, matrix)
    assert not wrong, "\n".join(wrong)
    # The dense expansion and the row reader agree, and so do the counts.
    dense = matrix.allowed
    for p in range(len(IR_FLOW_PORTS)):
        assert matrix.count_allowed(p) == int(dense[p].sum())
        for i in range(len(matrix.sources)):
            assert np.array_equal(matrix.row(p, i), dense[p, i])


def subsets(data: st.DataObject, endpoints: tuple[EndpointInfo, ...]) -> list[EndpointInfo]:
    order = data.draw(st.permutations(range(len(endpoints))))
    return [endpoints[k] for k in order[: data.draw(st.integers(0, len(order)))]]


@SOME
@given(rulesets(), st.data())
def test_matrix_of_some_sources_and_destinations_is_the_full_matrix_restricted_to_them(
    ruleset: Ruleset, data: st.DataObject
) -> None:
    note(repr(ruleset))
    full = compute_matrix(ruleset, IR_FLOW_PORTS)
    index = {e.id: k for k, e in enumerate(ruleset.endpoints)}
    sources = subsets(data, ruleset.endpoints)
    destinations = subsets(data, ruleset.endpoints)
    part = compute_matrix(ruleset, IR_FLOW_PORTS, sources=sources, destinations=destinations)
    rows = [index[e.id] for e in sources]
    cols = [index[e.id] for e in destinations]
    assert np.array_equal(part.allowed, full.allowed[:, rows][:, :, cols])


@SOME
@given(rulesets(), st.data())
def test_counts_per_group_pair_sum_the_matrix(ruleset: Ruleset, data: st.DataObject) -> None:
    note(repr(ruleset))
    matrix = compute_matrix(ruleset, IR_FLOW_PORTS)
    n = len(ruleset.endpoints)
    source_group = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), dtype=np.int64)
    destination_group = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=np.int64)
    counts = matrix.counts(source_group, 3, destination_group, 2)
    dense = matrix.allowed
    for g in range(3):
        for h in range(2):
            block = dense[:, source_group == g][:, :, destination_group == h]
            assert counts[:, g, h].tolist() == block.sum(axis=(1, 2)).tolist()


@SOME
@given(rulesets())
def test_walking_one_port_at_a_time_gives_the_same_matrix(ruleset: Ruleset) -> None:
    note(repr(ruleset))
    together = compute_matrix(ruleset, IR_FLOW_PORTS)
    saved = matrix_module.WALK_BYTES
    matrix_module.WALK_BYTES = 1
    try:
        apart = compute_matrix(ruleset, IR_FLOW_PORTS)
    finally:
        matrix_module.WALK_BYTES = saved
    assert np.array_equal(apart.class_allowed, together.class_allowed)
