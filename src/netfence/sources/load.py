"""load_inventory(paths): documents -> checked model objects -> one Inventory."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from netfence.errors import InputError, InputErrors
from netfence.model.admin import AdminPolicy
from netfence.model.calico import (
    ADMIN_TIER,
    BASELINE_TIER,
    DEFAULT_TIER,
    CalicoPolicy,
    HostEndpoint,
    NetworkSet,
    Tier,
)
from netfence.model.endpoints import ExternalWorkload, Namespace, Node, Pod, Service, ServiceAccount
from netfence.model.inventory import Inventory
from netfence.model.policies import NetworkPolicy
from netfence.sources.convert import Checker
from netfence.sources.documents import Document, expand_paths, load_documents
from netfence.sources.registry import REGISTRY, known_kinds


@dataclass
class Loaded:
    inventory: Inventory
    #: For stderr: what converters handled conservatively (a line each), then one line per skipped kind.
    warnings: list[str] = field(default_factory=list)
    objects: int = 0


def load_inventory(paths: Sequence[str]) -> Loaded:
    """Load every path; raise InputErrors listing every problem if anything is invalid."""
    problems: list[InputError] = []
    documents = load_documents(paths, problems)
    order = ["<stdin>" if p == "-" else p for p in expand_paths(paths)]
    return build_inventory(documents, problems, order)


def build_inventory(
    documents: Sequence[Document], problems: Sequence[InputError] = (), order: Sequence[str] = ()
) -> Loaded:
    """Convert documents; raise InputErrors with `problems` and every new one, if any.

    Problems are reported by file (in `order`, then as met) and line.
    """
    problems = list(problems)
    skipped: Counter[tuple[str, str]] = Counter()
    notes: list[str] = []
    found: dict[type, list[Any]] = {kind: [] for kind in _FIELDS}
    seen: dict[tuple[str, str, str, str], Document] = {}
    converted = 0
    placed: list[tuple[CalicoPolicy, Document]] = []
    for doc in documents:
        api_version, kind = doc.body.get("apiVersion"), doc.body.get("kind")
        if not isinstance(kind, str) or not kind or not isinstance(api_version, str) or not api_version:
            field, value = ("kind", kind) if not isinstance(kind, str) or not kind else ("apiVersion", api_version)
            if value is None or value == "":
                problems.append(InputError(doc.location(), "required field is missing", obj=doc.label, field=field))
            else:
                problems.append(InputError.expected(doc.location((field,)), field, "a string", value, obj=doc.label))
            continue
        entry = REGISTRY.get((api_version, kind))
        if entry is None:
            close = difflib.get_close_matches(kind, known_kinds(api_version), n=1, cutoff=0.8)
            if close:
                problems.append(
                    InputError(doc.location(("kind",)), f"unknown kind {kind} in {api_version}; expected {close[0]}")
                )
            else:
                skipped[(api_version, kind)] += 1
            continue
        check = Checker(doc)
        wire = check.parse(entry.wire)
        obj = entry.convert(check, wire) if wire is not None else None
        if check.problems:
            problems.extend(check.problems)
            continue
        if obj is None:
            continue
        notes += check.warnings
        namespace = getattr(obj, "namespace", "") if entry.namespaced else ""
        # Keyed by model type too: a Calico NetworkPolicy and a Kubernetes one may share a name.
        key = (type(obj).__name__, kind, namespace, obj.name)
        if key in seen:
            first = seen[key].location()
            problems.append(InputError(doc.location(), f"defined twice (first at {first})", obj=doc.label))
            continue
        seen[key] = doc
        converted += 1
        found[type(obj)].append(obj)
        if isinstance(obj, CalicoPolicy):
            placed.append((obj, doc))
    problems += _unknown_tiers(placed, found[Tier])
    if problems:
        names = [*order, *(p.where.file if p.where else "" for p in problems)]
        files = {name: i for i, name in enumerate(dict.fromkeys(names))}
        problems.sort(key=lambda p: (files[p.where.file if p.where else ""], (p.where and p.where.line) or 0))
        raise InputErrors(problems)
    warnings = notes + [
        f"warning: skipped {count} {kind} object{'s' if count > 1 else ''} ({api_version}): kind not understood"
        for (api_version, kind), count in sorted(skipped.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]
    inventory = Inventory(
        **{name: tuple(sorted(found[kind], key=_sort_key)) for kind, name in _FIELDS.items()}
    )
    return Loaded(inventory, warnings, converted)


def _unknown_tiers(policies: Sequence[tuple[CalicoPolicy, Document]], tiers: Sequence[Tier]) -> list[InputError]:
    """Calico refuses a policy in a tier that does not exist; the built-in tiers always do."""
    known = {DEFAULT_TIER, ADMIN_TIER, BASELINE_TIER} | {tier.name for tier in tiers}
    names = ", ".join([DEFAULT_TIER, *sorted(known - {DEFAULT_TIER})])
    return [
        InputError(
            doc.location(("spec", "tier")),
            f'tier "{policy.tier}" does not exist; expected one of: {names}',
            obj=doc.label,
            field="spec.tier",
        )
        for policy, doc in policies
        if policy.tier not in known
    ]


#: Model type -> the Inventory field that holds it.
_FIELDS: dict[type, str] = {
    Namespace: "namespaces",
    Pod: "pods",
    Service: "services",
    NetworkPolicy: "policies",
    ServiceAccount: "service_accounts",
    Node: "nodes",
    CalicoPolicy: "calico_policies",
    Tier: "tiers",
    NetworkSet: "network_sets",
    HostEndpoint: "host_endpoints",
    AdminPolicy: "admin_policies",
    ExternalWorkload: "external_workloads",
}


def _sort_key(obj: Any) -> tuple[str, str, str]:
    return (str(getattr(obj, "kind", "")), getattr(obj, "namespace", None) or "", obj.name)
