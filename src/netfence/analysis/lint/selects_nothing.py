"""selects-nothing: a policy whose selector matches no pod (or endpoint): it has no effect."""

from __future__ import annotations

from collections.abc import Iterator

from netfence.analysis.lint.context import Context
from netfence.analysis.lint.finding import Check, Finding, Severity
from netfence.model.admin import AdminPolicy
from netfence.model.calico import CalicoPolicy
from netfence.model.policies import NetworkPolicy


def run(context: Context) -> Iterator[Finding]:
    occupied = {p.namespace for p in context.pods}
    for entry in context.entries():
        policy = entry.policy
        if not context.applies(entry.ref) or context.subjects(entry.ref):
            continue
        empty = ""
        if isinstance(policy, NetworkPolicy | CalicoPolicy) and policy.namespace is not None:
            if policy.namespace not in occupied:
                empty = f" (namespace {policy.namespace} has no pods)"
        if isinstance(policy, NetworkPolicy):
            message = f"podSelector {policy.pod_selector} selects no pod in namespace {policy.namespace}{empty}"
            field: tuple[str, ...] = ("spec", "podSelector")
        elif isinstance(policy, CalicoPolicy):
            where = f" in namespace {policy.namespace}" if policy.namespace else ""
            message = f"selector {policy.selector} selects no endpoint{where}{empty}"
            field = ("spec", "selector")
        else:
            assert isinstance(policy, AdminPolicy)
            message = "subject selects no pod"
            field = ("spec", "subject")
        yield CHECK.finding(
            entry.label,
            entry.location,
            message,
            "compare the selector with the pods' labels (kubectl get pods --show-labels); "
            "a policy that selects nothing allows and denies nothing",
            field,
        )


CHECK = Check("selects-nothing", Severity.WARNING, "A policy selects no pod", run)
