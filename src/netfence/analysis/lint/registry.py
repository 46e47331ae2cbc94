"""Every check, in the order the documentation lists them, and the run over all of them."""

from __future__ import annotations

from collections.abc import Collection

from netfence.analysis.lint import (
    admin_priority,
    block_covers_pods,
    calico_types,
    dns_egress,
    ingress_snat,
    named_ports,
    namespace_label,
    peer_matches_nothing,
    redundant_rule,
    rules_ignored,
    selects_nothing,
    shadowed_rule,
    source_port_split,
    split_peers,
    tier_order,
)
from netfence.analysis.lint.context import Context, Origins
from netfence.analysis.lint.finding import Check, Finding, Severity
from netfence.ir.types import Ruleset
from netfence.model.inventory import Inventory

CHECKS: tuple[Check, ...] = (
    selects_nothing.CHECK,
    peer_matches_nothing.CHECK,
    split_peers.CHECK,
    dns_egress.CHECK,
    named_ports.CHECK,
    source_port_split.CHECK,
    shadowed_rule.CHECK,
    redundant_rule.CHECK,
    ingress_snat.CHECK,
    block_covers_pods.CHECK,
    rules_ignored.CHECK,
    tier_order.CHECK,
    admin_priority.CHECK,
    namespace_label.CHECK,
    calico_types.CHECK,
)

#: Reported when no pod is loaded, so the checks that judge policies against pods did not run.
NO_PODS = Check("no-pods", Severity.INFO, "No pods loaded: checks against pods skipped", lambda context: ())


def lint(
    inventory: Inventory,
    ruleset: Ruleset,
    origins: Origins | None = None,
    *,
    skip: Collection[str] = (),
) -> list[Finding]:
    """Every finding of every check not in `skip`, sorted by file, line and code."""
    context = Context(inventory, ruleset, origins)
    findings: list[Finding] = []
    skipped = [c.code for c in CHECKS if c.needs_pods and c.code not in skip]
    if not context.has_pods and skipped and NO_PODS.code not in skip:
        findings.append(
            NO_PODS.finding(
                "inventory",
                None,
                f"no pods are loaded, so these checks did not run: {', '.join(skipped)}",
                "load the pods and namespaces with the policies (kubectl get ns,pods,svc -A -o yaml)",
            )
        )
    for check in CHECKS:
        if check.code in skip or (check.needs_pods and not context.has_pods):
            continue
        findings.extend(check.run(context))
    findings.sort(key=lambda f: f.sort_key)
    return findings
