"""rules-ignored: rules of a direction the policy's types leave out; they are never enforced."""

from __future__ import annotations

from collections.abc import Iterator

from netfence.analysis.lint.context import Context
from netfence.analysis.lint.finding import Check, Finding, Severity
from netfence.model.calico import CalicoPolicy
from netfence.model.policies import Direction, NetworkPolicy


def run(context: Context) -> Iterator[Finding]:
    for entry in context.entries(NetworkPolicy, CalicoPolicy):
        policy = entry.policy
        assert isinstance(policy, NetworkPolicy | CalicoPolicy)
        if isinstance(policy, NetworkPolicy):
            listed, field = policy.policy_types, "policyTypes"
        else:
            if policy.types_defaulted:
                continue  # the default covers every direction that has rules
            listed, field = policy.types, "types"
        for direction in Direction:
            count = len(policy.rules(direction))
            if count and direction not in listed:
                name = str(direction).capitalize()
                shown = ", ".join(sorted(str(d).capitalize() for d in listed))
                yield CHECK.finding(
                    entry.label,
                    entry.location,
                    f"{count} {direction} rule{'s are' if count > 1 else ' is'} ignored: "
                    f"{field} [{shown}] leaves {name} out",
                    f"add {name} to {field}, or remove the {direction} rules",
                    ("spec", field),
                )


CHECK = Check("rules-ignored", Severity.ERROR, "Rules of a direction the policy types leave out", run, needs_pods=False)
