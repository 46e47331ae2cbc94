"""rule-redundant: a rule an earlier rule with the same action contains (for NetworkPolicies:
another rule of the same policy). Removing it changes nothing. See coverage.py."""

from __future__ import annotations

from collections.abc import Iterator

from netfence.analysis.lint.context import Context, direction_field
from netfence.analysis.lint.coverage import covered_rules
from netfence.analysis.lint.finding import Check, Finding, Severity
from netfence.ir.types import Action


def run(context: Context) -> Iterator[Finding]:
    entries = {entry.ref: entry for entry in context.policies}
    for covered in covered_rules(context):
        entry = entries.get(covered.rule.policy)
        if not covered.redundant or entry is None:
            continue
        rule, by = covered.rule, covered.by
        earlier = f"{by.direction}[{by.index}]" if by.policy == rule.policy else str(by)
        yield CHECK.finding(
            entry.label,
            entry.location,
            f"{rule.direction}[{rule.index}] is redundant: {earlier} ({_name(covered.by_action)}) comes first and "
            "matches every flow it matches",
            "remove it, or narrow the earlier rule if this one was meant to decide",
            ("spec", direction_field(rule.direction), rule.index),
        )


def _name(action: Action) -> str:
    return action.value.capitalize()


CHECK = Check("rule-redundant", Severity.INFO, "A rule contained in an earlier rule with the same action", run)
