"""diff_rulesets against the per-flow evaluator, on IR Rulesets drawn directly: exactly the flows
whose verdict differs, each with the cause `evaluate` gives it."""

from __future__ import annotations

from hypothesis import given, settings
from ir_strategies import IR_FLOW_PORTS, rulesets

from netfence.analysis.diff import change_cause, diff_rulesets
from netfence.analysis.verdict import Flow, Party, evaluate
from netfence.ir.types import Ruleset

SOME = settings(max_examples=200, deadline=None)


def expected_changes(old: Ruleset, new: Ruleset) -> list[tuple[str, str, str, bool, bool, object]]:
    common = sorted({e.id for e in old.endpoints} & {e.id for e in new.endpoints})
    found = []
    for source in common:
        for destination in common:
            if source == destination:
                continue
            for port in sorted(IR_FLOW_PORTS, key=lambda p: p.sort_key):
                flows = [
                    Flow(Party.of(r.endpoint(source)), Party.of(r.endpoint(destination)), port)  # type: ignore[arg-type]
                    for r in (old, new)
                ]
                before, after = evaluate(old, flows[0]), evaluate(new, flows[1])
                if before.allowed != after.allowed:
                    cause = change_cause(old, new, before, after)
                    found.append((source, destination, str(port), before.allowed, after.allowed, cause))
    return found


@SOME
@given(rulesets(), rulesets())
def test_diff_lists_exactly_the_flows_whose_verdict_differs_with_their_cause(old: Ruleset, new: Ruleset) -> None:
    diff = diff_rulesets(old, new, IR_FLOW_PORTS)
    got = [(c.source, c.destination, str(c.port), c.before, c.after, c.cause) for c in diff.changes()]
    assert got == expected_changes(old, new)
    assert diff.count == len(got)


@SOME
@given(rulesets())
def test_a_ruleset_compared_with_itself_has_no_change(ruleset: Ruleset) -> None:
    diff = diff_rulesets(ruleset, ruleset, IR_FLOW_PORTS)
    assert diff.blocks == () and diff.added == () and diff.removed == ()
