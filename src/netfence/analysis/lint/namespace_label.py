"""namespace-label-as-pod-label: a Calico selector testing a label that namespaces carry and no
endpoint does.

Calico selectors test an endpoint's own labels (plus the derived `projectcalico.org/*`, `pcns.*`
and `pcsa.*` ones); a namespace's labels are reached through a namespaceSelector or the `pcns.`
prefix. The classic mistake is a GlobalNetworkPolicy `selector: network-policy/ingress == 'nginx'`
where the namespaces, not the pods, carry `network-policy/ingress`: it selects nothing (or, with
`!=` and `!has`, everything). Reported for policy selectors (against pods and host endpoints) and
rule selectors and notSelectors (also against network sets) when pods are loaded.
"""

from __future__ import annotations

from collections.abc import Iterator

from netfence.analysis.lint.context import Context, PolicyEntry, direction_field, sample
from netfence.analysis.lint.finding import Check, Finding, Severity
from netfence.model.calico import CalicoPolicy
from netfence.model.calico_selector import And, Compare, Expr, Has, InSet, Not, Or, Selector
from netfence.model.policies import Direction

DERIVED = ("projectcalico.org/", "pcns.", "pcsa.")


def keys(expr: Expr | None) -> list[str]:
    """The label keys a selector expression tests, in the order written."""
    match expr:
        case Has(key) | Compare(key, _, _) | InSet(key, _, _):
            return [key]
        case Not(inner):
            return keys(inner)
        case And(items) | Or(items):
            return [k for item in items for k in keys(item)]
    return []


def run(context: Context) -> Iterator[Finding]:
    endpoint_keys = {k for p in context.pods for k in p.labels}
    endpoint_keys |= {k for h in context.inventory.host_endpoints for k in h.labels}
    set_keys = {k for s in context.inventory.network_sets for k in s.labels}
    namespaces: dict[str, list[str]] = {}
    for namespace in context.inventory.namespaces:
        for key in namespace.labels:
            namespaces.setdefault(key, []).append(namespace.name)
    for entry in context.entries(CalicoPolicy):
        policy = entry.policy
        assert isinstance(policy, CalicoPolicy)
        if policy.namespace is None:
            hint = "select by namespace with spec.namespaceSelector (or test the label pcns.{key})"
        else:
            hint = "the policy applies to its own namespace only; test the namespace's label as pcns.{key}"
        yield from _judge(entry, policy.selector, ("spec", "selector"), endpoint_keys, namespaces, hint)
        for direction in Direction:
            for index, rule in enumerate(policy.rules(direction)):
                for side in ("source", "destination"):
                    entity = getattr(rule, side)
                    for name in ("selector", "not_selector"):
                        selector = getattr(entity, name)
                        if selector is None:
                            continue
                        written = "selector" if name == "selector" else "notSelector"
                        field = ("spec", direction_field(direction), index, side, written)
                        yield from _judge(
                            entry,
                            selector,
                            field,
                            endpoint_keys | set_keys,
                            namespaces,
                            f"test namespace labels with {side}.namespaceSelector (or the label pcns.{{key}})",
                        )


def _judge(
    entry: PolicyEntry,
    selector: Selector,
    field: tuple[str | int, ...],
    carried: set[str],
    namespaces: dict[str, list[str]],
    hint: str,
) -> Iterator[Finding]:
    for key in dict.fromkeys(keys(selector.expr)):
        if key.startswith(DERIVED) or key in carried or key not in namespaces:
            continue
        holders = sorted(namespaces[key])
        where = ".".join(str(f) if isinstance(f, str) else f"[{f}]" for f in field[1:]).replace(".[", "[")
        yield CHECK.finding(
            entry.label,
            entry.location,
            f"{where} `{selector}` tests label {key}, which namespaces carry ({sample(holders)}) but no "
            "endpoint does: a selector tests the endpoints' own labels",
            hint.format(key=key),
            field,
        )


CHECK = Check(
    "namespace-label-as-pod-label",
    Severity.WARNING,
    "A Calico selector using a namespace label as if it were a pod label",
    run,
)
