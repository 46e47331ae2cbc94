"""`netfence suggest`: the suggested policies as manifests, and the report of the check beside them.

NetworkPolicies are written by manifests.py; Calico NetworkPolicies here, as projectcalico.org/v3
objects that the loader reads back to equal values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import IO, Any

from netfence.analysis.suggest import Suggestion, SuggestKind
from netfence.analysis.suggest.check import ExtraFlow
from netfence.analysis.suggest.suggestion import NOTE_LIMIT
from netfence.analysis.suggest.flows import ResolvedFlow, end_name
from netfence.model.calico import CalicoPolicy, CalicoRule, EntityRule, IcmpMatch
from netfence.model.policies import Direction
from netfence.output.manifests import manifest_list, object_metadata, v1_list
from netfence.output.render import dump


def write_suggestion(suggestion: Suggestion, fmt: str, out: IO[str]) -> None:
    """One `v1 List` of the policies, as yaml or json, keys sorted."""
    if suggestion.kind is SuggestKind.CALICO:
        data = calico_list(suggestion.calico_policies, suggestion.labels)
    else:
        data = manifest_list(suggestion.policies, suggestion.labels)
    dump(data, fmt, out)


def calico_list(policies: Sequence[CalicoPolicy], labels: Mapping[str, str]) -> dict[str, Any]:
    return v1_list([calico_manifest(p, labels) for p in policies])


def calico_manifest(policy: CalicoPolicy, labels: Mapping[str, str]) -> dict[str, Any]:
    """A projectcalico.org/v3 NetworkPolicy with explicit types (no tier: the default one; no order)."""
    metadata = object_metadata(policy.name, policy.namespace, labels)
    spec: dict[str, Any] = {
        "selector": str(policy.selector),
        "types": [d.value.capitalize() for d in Direction if d in policy.types],
    }
    if policy.order is not None:
        spec["order"] = policy.order
    if policy.ingress:
        spec["ingress"] = [_calico_rule(r) for r in policy.ingress]
    if policy.egress:
        spec["egress"] = [_calico_rule(r) for r in policy.egress]
    return {"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy", "metadata": metadata, "spec": spec}


def _calico_rule(rule: CalicoRule) -> dict[str, Any]:
    data: dict[str, Any] = {"action": str(rule.action)}
    if rule.protocol is not None:
        data["protocol"] = rule.protocol if isinstance(rule.protocol, int) else str(rule.protocol)
    if rule.icmp is not None:
        data["icmp"] = _icmp(rule.icmp)
    for field, side in (("source", rule.source), ("destination", rule.destination)):
        entity = _entity(side)
        if entity:
            data[field] = entity
    return data


def _icmp(icmp: IcmpMatch) -> dict[str, int]:
    data = {}
    if icmp.type is not None:
        data["type"] = icmp.type
    if icmp.code is not None:
        data["code"] = icmp.code
    return data


def _entity(side: EntityRule) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if side.nets:
        data["nets"] = [str(n) for n in side.nets]
    if side.selector is not None:
        data["selector"] = str(side.selector)
    if side.namespace_selector is not None:
        data["namespaceSelector"] = str(side.namespace_selector)
    if side.ports:
        data["ports"] = [p.start if p.start == p.end and p.start is not None else str(p) for p in side.ports]
    return data


# --- the report ------------------------------------------------------------------------------


def suggestion_report(suggestion: Suggestion) -> list[str]:
    """What was read, what was written and what the analyzer found, one line each, for stderr."""
    check = suggestion.check
    namespaces = {w.namespace for w in suggestion.workloads}
    kind = "Calico NetworkPolicies" if suggestion.kind is SuggestKind.CALICO else "NetworkPolicies"
    lines = [
        *suggestion.notes,
        f"suggest: {_count(suggestion.records, 'flow record')}, {_count(len(suggestion.flows), 'distinct flow')};"
        f" {_count(len(suggestion.workloads), 'workload')} in {_count(len(namespaces), 'namespace')};"
        f" {suggestion.policy_count} {kind}",
    ]
    if check.denied:
        lines.append(f"error: {_count(len(check.denied), 'observed flow')} not allowed by the suggestion:")
        lines += [f"  {_flow(f)}" for f in check.denied]
    else:
        lines.append(f"check: every observed flow is allowed ({len(suggestion.flows)})")
    generalized = check.generalized
    if generalized:
        count = sum(len(g.pairs) for g in generalized)
        lines.append(
            f"check: {_count(count, 'flow')} allowed but not observed, each between pods of the two workloads"
            " of an observed flow (a policy admits a workload, not one replica):"
        )
        for g in generalized:
            shown = ", ".join(f"{s} -> {d}" for s, d in g.pairs[:NOTE_LIMIT])
            more = f", and {len(g.pairs) - NOTE_LIMIT} more" if len(g.pairs) > NOTE_LIMIT else ""
            lines.append(f"  workloads {g.source} -> {g.destination} {g.port} (observed: {_flow(g.like)}): {shown}{more}")
    unexpected = check.unexpected
    if unexpected:
        lines.append(
            f"warning: {_count(len(unexpected), 'flow')} allowed but not observed, and not between replicas"
            " of an observed flow's workloads:"
        )
        lines += [f"  {_extra(e)}" for e in unexpected]
    else:
        lines.append(
            f"check: no other flow between pods is allowed (judged {check.judged} pod pairs and ports)"
        )
    return lines


def _count(n: int, what: str) -> str:
    return f"1 {what}" if n == 1 else f"{n} {what}s"


def _flow(flow: ResolvedFlow) -> str:
    return f"{end_name(flow.source)} -> {end_name(flow.destination)} {flow.port}"


def _extra(extra: ExtraFlow) -> str:
    return f"{extra.source} -> {extra.destination} {extra.port}"
