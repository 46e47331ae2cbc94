"""Workloads: the pods of a namespace that share their stable labels, and a selector for each.

A workload is what a Deployment, StatefulSet or DaemonSet makes: replicas that differ only in
labels a controller sets per pod or per rollout (PER_POD_LABELS, and the keys the user names).
Policies are written on workloads, so a replica that comes back with another
name and address is still covered.

Each workload's selector is chosen to match exactly its pods among the pods of its namespace
(the scope of a NetworkPolicy's podSelector, and of a peer's podSelector with its
namespaceSelector): one label it carries, preferring the keys that name an application
(IDENTITY_KEYS), then more of its labels until no other workload matches, and when another
workload carries all of them and more, `DoesNotExist` on a key only that one has. Version-like
keys (LAST_RESORT_KEYS) come last: they change on every upgrade.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from netfence.model.endpoints import EndpointId, Pod
from netfence.model.labels import Labels, LabelSelector, Operator, Requirement

#: Labels a controller sets per pod or per rollout; replicas differ in them.
PER_POD_LABELS = (
    "pod-template-hash",
    "controller-revision-hash",
    "pod-template-generation",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "batch.kubernetes.io/job-completion-index",
    "controller-uid",
    "batch.kubernetes.io/controller-uid",
    "job-name",
    "batch.kubernetes.io/job-name",
)
#: Keys that name an application, in the order a selector prefers them.
IDENTITY_KEYS = (
    "app.kubernetes.io/name",
    "app",
    "k8s-app",
    "name",
    "app.kubernetes.io/instance",
    "release",
    "app.kubernetes.io/component",
    "component",
    "tier",
    "role",
)
#: Keys a selector uses only when nothing else tells the workloads apart.
LAST_RESORT_KEYS = (
    "app.kubernetes.io/version",
    "version",
    "helm.sh/chart",
    "chart",
    "app.kubernetes.io/managed-by",
    "heritage",
)
UNLABELLED_NAME = "unlabelled"


@dataclass(frozen=True, slots=True, eq=False)
class Workload:
    """Compared and hashed by identity: group_workloads makes one per group, and its pods may be many."""

    namespace: str
    #: The stable labels its pods share.
    labels: Labels
    #: Sorted.
    pods: tuple[EndpointId, ...]
    #: Matches exactly these pods among the namespace's pods (in the inventory).
    selector: LabelSelector
    #: Unique in the namespace; a DNS label, part of the policy names.
    name: str

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"


def stable_labels(pod: Pod, ignored: Iterable[str] = ()) -> Labels:
    """The pod's labels without the per-pod ones (PER_POD_LABELS and `ignored`)."""
    drop = set(PER_POD_LABELS) | set(ignored)
    return Labels({k: v for k, v in pod.labels.items() if k not in drop})


def group_workloads(pods: Sequence[Pod], ignored: Iterable[str] = ()) -> tuple[Workload, ...]:
    """Every non-hostNetwork pod in one workload; sorted by namespace, then name."""
    ignored = tuple(ignored)
    groups: dict[tuple[str, Labels], list[EndpointId]] = {}
    for pod in pods:
        if not pod.host_network:
            groups.setdefault((pod.namespace, stable_labels(pod, ignored)), []).append(pod.id)
    workloads: list[Workload] = []
    for namespace in sorted({ns for ns, _ in groups}):
        label_sets = sorted((labels for ns, labels in groups if ns == namespace), key=lambda labels: str(labels))
        selectors = {labels: exact_selector(labels, [other for other in label_sets if other != labels]) for labels in label_sets}
        names = _names(selectors)
        for labels in label_sets:
            workloads.append(Workload(namespace, labels, tuple(sorted(groups[(namespace, labels)])), selectors[labels], names[labels]))
    return tuple(sorted(workloads, key=lambda w: (w.namespace, w.name)))


def exact_selector(labels: Labels, others: Sequence[Labels]) -> LabelSelector:
    """A selector matching `labels` and none of `others` (all different from `labels`)."""
    order = {key: i for i, key in enumerate(IDENTITY_KEYS)}
    last = {key: i for i, key in enumerate(LAST_RESORT_KEYS)}

    def preference(key: str) -> tuple[int, int, str]:
        if key in order:
            return (0, order[key], key)
        if key in last:
            return (2, last[key], key)
        return (1, 0, key)

    keys = sorted(labels, key=preference)
    chosen: list[Requirement] = []
    if keys:  # at least one label: an empty podSelector would select every pod of the namespace
        chosen.append(Requirement(keys[0], Operator.IN, (labels[keys[0]],)))
    remaining = [o for o in others if all(r.matches(o) for r in chosen)]
    absent = sorted({k for o in others for k in o} - set(labels))
    while remaining:
        candidates = [Requirement(k, Operator.IN, (labels[k],)) for k in keys]
        best = min(candidates, key=lambda r: (-_excluded(r, remaining), keys.index(r.key)), default=None)
        if best is None or _excluded(best, remaining) == 0:
            # Every other workload left carries all of `labels` (and more): exclude by what only it has.
            candidates = [Requirement(k, Operator.DOES_NOT_EXIST) for k in absent]
            best = min(candidates, key=lambda r: (-_excluded(r, remaining), r.key))
        chosen.append(best)
        remaining = [o for o in remaining if best.matches(o)]
    positive = sorted((r for r in chosen if r.operator is Operator.IN), key=lambda r: r.key)
    negative = sorted((r for r in chosen if r.operator is not Operator.IN), key=lambda r: r.key)
    return LabelSelector((*positive, *negative))


def _excluded(requirement: Requirement, others: Sequence[Labels]) -> int:
    return sum(1 for o in others if not requirement.matches(o))


_NOT_IN_NAME = re.compile(r"[^a-z0-9-]+")
_NAME_LIMIT = 40


def _names(selectors: dict[Labels, LabelSelector]) -> dict[Labels, str]:
    """A DNS-label name per workload: its selector's label values, made unique in the namespace."""
    wanted: dict[Labels, str] = {}
    for labels, selector in selectors.items():
        values = [r.values[0] for r in selector.requirements if r.operator is Operator.IN]
        slug = _NOT_IN_NAME.sub("-", "-".join(values).lower()).strip("-")[:_NAME_LIMIT].strip("-")
        wanted[labels] = slug or UNLABELLED_NAME
    counts: dict[str, int] = {}
    for name in wanted.values():
        counts[name] = counts.get(name, 0) + 1
    names = {}
    for labels, name in wanted.items():
        if counts[name] > 1:
            name = f"{name}-{hashlib.sha256(str(labels).encode()).hexdigest()[:8]}"
        names[labels] = name
    return names
