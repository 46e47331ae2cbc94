"""Audited (staged) policies: evaluated and logged, not enforced.

A policy in audit mode is what Calico calls a staged policy: the dataplane enforces the ruleset
as if the policy were absent, and reports what the policy would have done. So two verdicts
exist for every flow:

- the enforced verdict: the ruleset without the audited policies (`enforced_ruleset`);
- the audit verdict: the ruleset with them, exactly as if they were enforced.

"Absent" is meant fully: an audited policy's Allow and Pass rules do not allow or skip anything,
its Deny rules drop nothing, and it does not make the endpoints it selects isolated, so a tier
that only an audited policy selects for an endpoint is skipped for it. The two verdicts differ
only where an audited policy decides (or where its isolation would).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from netfence.errors import UsageError
from netfence.ir.types import PolicyRef, Ruleset, Tier
from netfence.model.policies import PolicyKind


def policy_refs(ruleset: Ruleset) -> list[PolicyRef]:
    """Every policy the ruleset holds (in either direction), each once, in evaluation order."""
    seen: dict[PolicyRef, None] = {}
    for tiers in (ruleset.ingress, ruleset.egress):
        for tier in tiers:
            for policy in tier.policies:
                seen.setdefault(policy.ref, None)
    return list(seen)


def parse_policy_ref(text: str, known: Iterable[PolicyRef], flag: str = "--audit") -> PolicyRef:
    """The policy `text` names among `known`: `KIND/NAMESPACE/NAME`, `KIND/NAME` (a cluster-scoped
    kind), `NAMESPACE/NAME` (a namespaced policy of any kind) or `NAME` (a cluster-scoped policy
    of any kind). Kinds are matched without regard to case. Raises UsageError when nothing or more
    than one policy matches."""
    refs = list(known)
    kinds = {kind.value.lower(): kind for kind in PolicyKind}
    parts = text.split("/")
    candidates: list[PolicyRef]
    if len(parts) == 3:
        kind = kinds.get(parts[0].lower())
        if kind is None:
            raise UsageError(f"{flag} {text}: unknown kind {parts[0]!r} (expected one of {', '.join(PolicyKind)})")
        candidates = [r for r in refs if r.kind is kind and r.namespace == parts[1] and r.name == parts[2]]
    elif len(parts) == 2 and parts[0].lower() in kinds:
        kind = kinds[parts[0].lower()]
        candidates = [r for r in refs if r.kind is kind and r.name == parts[1]]
    elif len(parts) == 2:
        candidates = [r for r in refs if r.namespace == parts[0] and r.name == parts[1]]
    elif len(parts) == 1 and parts[0]:
        candidates = [r for r in refs if r.namespace is None and r.name == parts[0]]
    else:
        candidates = []
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise UsageError(
            f"{flag} {text}: no such policy (expected KIND/NAMESPACE/NAME, NAMESPACE/NAME, KIND/NAME or NAME"
            " of a policy in the input)"
        )
    listed = ", ".join(_spelled(r) for r in candidates)
    raise UsageError(f"{flag} {text}: names {len(candidates)} policies ({listed}); add the kind")


def _spelled(ref: PolicyRef) -> str:
    return "/".join(x for x in (ref.kind.value, ref.namespace, ref.name) if x)


def parse_audited(texts: Iterable[str], ruleset: Ruleset, flag: str = "--audit") -> frozenset[PolicyRef]:
    """`--audit` arguments resolved against the ruleset's policies."""
    known = policy_refs(ruleset)
    return frozenset(parse_policy_ref(text, known, flag) for text in texts)


def enforced_ruleset(ruleset: Ruleset, audited: Collection[PolicyRef]) -> Ruleset:
    """What the dataplane enforces when `audited` are staged: the ruleset without them."""
    if not audited:
        return ruleset

    def strip(tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
        out = []
        for tier in tiers:
            kept = tuple(p for p in tier.policies if p.ref not in audited)
            out.append(tier if len(kept) == len(tier.policies) else Tier(tier.name, kept, tier.end_action, tier.order))
        return tuple(out)

    return Ruleset(ruleset.endpoints, strip(ruleset.ingress), strip(ruleset.egress), ruleset.default_action)
