"""calico-types-omitted: a crd.projectcalico.org/v1 policy without `types`.

Calico's API server fills `types` in from the rules (netfence does the same), but an object
written straight into the CRD is enforced by the dataplane for both directions: an ingress-only
policy written that way also isolates its endpoints' egress. The loader warns too; lint makes it a
finding a CI run can fail on.
"""

from __future__ import annotations

from collections.abc import Iterator

from netfence.analysis.lint.context import Context
from netfence.analysis.lint.finding import Check, Finding, Severity
from netfence.model.calico import CalicoPolicy

CRD_GROUP = "crd.projectcalico.org/"


def run(context: Context) -> Iterator[Finding]:
    if context.origins is None:
        return
    for entry in context.entries(CalicoPolicy):
        policy = entry.policy
        assert isinstance(policy, CalicoPolicy)
        if not policy.types_defaulted or entry.location is None:
            continue
        api_version = context.origins.api_version(entry.location)
        if api_version is None or not api_version.startswith(CRD_GROUP):
            continue
        chosen = ", ".join(sorted(str(t).capitalize() for t in policy.types))
        yield CHECK.finding(
            entry.label,
            entry.location,
            f"types omitted in a {api_version} object: the API server's default would be [{chosen}] "
            "(what netfence analyzes), but the dataplane enforces an object written into the CRD for "
            "both directions",
            f"set spec.types: [{chosen}]",
            ("spec",),
        )


CHECK = Check(
    "calico-types-omitted", Severity.WARNING, "A crd.projectcalico.org policy without types", run, needs_pods=False
)
