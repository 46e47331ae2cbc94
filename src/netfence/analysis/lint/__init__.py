"""Lint: legal policies that are likely not what was meant, each finding with where it is, what
is wrong and how to fix it. One check per module, each a `CHECK` listed in registry.py; checks
read the inventory (what was declared, with locations) and its ruleset (what is enforced)."""

from netfence.analysis.lint.context import Origins
from netfence.analysis.lint.finding import SEVERITY_ORDER, Check, FieldPath, Finding, Severity
from netfence.analysis.lint.registry import CHECKS, NO_PODS, lint

__all__ = ["CHECKS", "NO_PODS", "SEVERITY_ORDER", "Check", "FieldPath", "Finding", "Origins", "Severity", "lint"]
