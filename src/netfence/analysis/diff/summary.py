"""A diff's blocks as lines people read: split by namespace pair, each side named as briefly as
it can be named exactly.

A side is the endpoint itself when there is one, `ns/*` when it is every compared endpoint of the
namespace, `ns/KEY=VALUE` (or two labels, comma-separated) when exactly the compared endpoints of
the namespace with those labels, `ns/KEY in (V1, V2)` when exactly those with one of the values,
and a short list otherwise. Labels that differ between
replicas of one workload (pod-template-hash and the like) are never used.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from netfence.analysis.diff.changes import Cause, Diff
from netfence.model.endpoints import EndpointId
from netfence.model.inventory import Inventory
from netfence.model.labels import Labels
from netfence.model.ports import FlowPort

#: Labels that tell replicas apart rather than name a workload.
REPLICA_LABELS = frozenset(
    {
        "pod-template-hash",
        "controller-revision-hash",
        "pod-template-generation",
        "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index",
        "batch.kubernetes.io/controller-uid",
        "controller-uid",
        "batch.kubernetes.io/job-name",
        "job-name",
    }
)
#: Label keys tried first when naming a group: the usual workload names.
PREFERRED_KEYS = ("app.kubernetes.io/name", "app", "k8s-app", "app.kubernetes.io/component", "tier", "component", "role")
#: How many endpoint names a side lists before it says how many more there are.
LISTED = 3


@dataclass(frozen=True)
class ChangeGroup:
    """`count` flows from `sources` to `destinations` on `ports` that are now `allowed` (were not
    before), or now denied, for `cause`."""

    sources: str
    destinations: str
    ports: tuple[FlowPort, ...]
    allowed: bool
    count: int
    cause: Cause


def summarize(diff: Diff, inventory: Inventory) -> list[ChangeGroup]:
    """Every block split by source and destination namespace, then, within a namespace pair,
    products that share their sources (or destinations), cause and ports joined, and named;
    newly denied first, then by size, largest first."""
    namer = _Namer(diff.compared, inventory)
    parts: list[_Part] = []
    for block in diff.blocks:
        for source_space, from_space in _by_namespace(block.sources):
            for destination_space, to_space in _by_namespace(block.destinations):
                head = (block.allowed, block.cause, block.ports, source_space, destination_space)
                parts.append((head, frozenset(from_space), frozenset(to_space)))
    # A product's flows are every source to every destination: joining two products with the
    # same sources (or destinations) is a product again, of the flows of both (they are disjoint:
    # a flow on a port belongs to one block).
    parts = _join(parts, by_sources=True)
    parts = _join(parts, by_sources=False)
    groups = []
    for (allowed, cause, ports, source_space, destination_space), sources, destinations in parts:
        pairs = len(sources) * len(destinations) - len(sources & destinations)
        if pairs:
            groups.append(
                ChangeGroup(
                    namer.name(source_space, tuple(sorted(sources))),
                    namer.name(destination_space, tuple(sorted(destinations))),
                    ports,
                    allowed,
                    pairs * len(ports),
                    cause,
                )
            )
    groups.sort(key=lambda g: (g.allowed, -g.count, g.sources, g.destinations, [p.sort_key for p in g.ports]))
    return groups


_Head = tuple[bool, Cause, tuple[FlowPort, ...], str, str]
_Part = tuple[_Head, frozenset[EndpointId], frozenset[EndpointId]]


def _join(parts: list[_Part], by_sources: bool) -> list[_Part]:
    joined: dict[tuple[_Head, frozenset[EndpointId]], set[EndpointId]] = {}
    for head, sources, destinations in parts:
        shared, other = (sources, destinations) if by_sources else (destinations, sources)
        joined.setdefault((head, shared), set()).update(other)
    if by_sources:
        return [(head, shared, frozenset(other)) for (head, shared), other in joined.items()]
    return [(head, frozenset(other), shared) for (head, shared), other in joined.items()]


def _space(endpoint: EndpointId) -> str:
    """The namespace of a pod, `hep` for a host endpoint (`hep/NAME`)."""
    return endpoint.partition("/")[0]


def _by_namespace(endpoints: Sequence[EndpointId]) -> list[tuple[str, tuple[EndpointId, ...]]]:
    return [(space, tuple(members)) for space, members in itertools.groupby(sorted(endpoints), key=_space)]


class _Namer:
    def __init__(self, compared: Sequence[EndpointId], inventory: Inventory) -> None:
        self.spaces: dict[str, frozenset[EndpointId]] = {
            space: frozenset(members) for space, members in _by_namespace(compared)
        }
        self.labels: dict[EndpointId, Labels] = {pod.id: pod.labels for pod in inventory.pods}
        for hep in inventory.host_endpoints:
            self.labels[EndpointId(f"hep/{hep.name}")] = hep.labels
        self._index: dict[str, dict[tuple[str, str], frozenset[EndpointId]]] = {}

    def name(self, space: str, members: tuple[EndpointId, ...]) -> str:
        if len(members) == 1:
            return members[0]
        if frozenset(members) == self.spaces.get(space):
            return f"{space}/*"
        selector = self._selector(space, members) or self._union(space, members)
        if selector is not None:
            return f"{space}/{selector}"
        names = [m.partition("/")[2] for m in members]
        shown = names if len(names) <= LISTED + 1 else [*names[:LISTED], f"+{len(names) - LISTED} more"]
        return f"{space}/{{{', '.join(shown)}}}"

    def _selector(self, space: str, members: tuple[EndpointId, ...]) -> str | None:
        """One or two labels that exactly the members of the namespace carry, if there are."""
        index = self._labels_of(space)
        wanted = frozenset(members)
        shared = set(self.labels.get(members[0], Labels()).items())
        for member in members[1:]:
            shared &= set(self.labels.get(member, Labels()).items())
        candidates = sorted(
            (item for item in shared if item[0] not in REPLICA_LABELS),
            key=lambda kv: (PREFERRED_KEYS.index(kv[0]) if kv[0] in PREFERRED_KEYS else len(PREFERRED_KEYS), kv),
        )
        for size in (1, 2):
            for chosen in itertools.combinations(candidates, size):
                selected = frozenset.intersection(*(index[item] for item in chosen))
                if selected == wanted:
                    return ",".join(f"{k}={v}" for k, v in chosen)
        return None

    def _union(self, space: str, members: tuple[EndpointId, ...]) -> str | None:
        """`KEY in (V1, V2, ...)`: exactly the members, by the label with the fewest values."""
        index = self._labels_of(space)
        wanted = frozenset(members)
        keys = set(self.labels.get(members[0], Labels())) - REPLICA_LABELS
        for member in members[1:]:
            keys &= set(self.labels.get(member, Labels()))
        found: list[tuple[int, int, str, list[str]]] = []
        for key in keys:
            values = sorted({self.labels[m][key] for m in members})
            if frozenset().union(*(index[(key, v)] for v in values)) == wanted:
                rank = PREFERRED_KEYS.index(key) if key in PREFERRED_KEYS else len(PREFERRED_KEYS)
                found.append((len(values), rank, key, values))
        if not found:
            return None
        _, _, key, values = min(found)
        shown = values if len(values) <= LISTED + 1 else [*values[:LISTED], f"+{len(values) - LISTED} more"]
        return f"{key} in ({', '.join(shown)})"

    def _labels_of(self, space: str) -> dict[tuple[str, str], frozenset[EndpointId]]:
        index = self._index.get(space)
        if index is None:
            found: dict[tuple[str, str], set[EndpointId]] = {}
            for endpoint in self.spaces.get(space, ()):
                for item in self.labels.get(endpoint, Labels()).items():
                    found.setdefault(item, set()).add(endpoint)
            index = self._index[space] = {item: frozenset(s) for item, s in found.items()}
        return index
