"""rule-shadowed: a rule an earlier rule with another action always pre-empts (an Allow behind a
Deny that matches every flow it matches, a Deny behind such an Allow or Pass). See coverage.py."""

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
        if covered.redundant or entry is None:
            continue
        rule, by = covered.rule, covered.by
        same = by.policy == rule.policy
        earlier = f"{by.direction}[{by.index}]" if same else str(by)
        yield CHECK.finding(
            entry.label,
            entry.location,
            f"{rule.direction}[{rule.index}] ({_name(covered.action)}) never applies: {earlier} "
            f"({_name(covered.by_action)}) comes first and matches every flow it matches",
            "move this rule before the earlier one, or narrow the earlier rule"
            + ("" if same else " (or order the policies the other way)"),
            ("spec", direction_field(rule.direction), rule.index),
        )


def _name(action: Action) -> str:
    return action.value.capitalize()


CHECK = Check("rule-shadowed", Severity.WARNING, "A rule shadowed by an earlier rule with another action", run)
