"""diff_rulesets(old, new, ports) -> Diff: every flow whose verdict differs between two rulesets.

Only endpoints both sides have are compared; the others are listed as added or removed.

The verdicts come from `compute_matrix`, one matrix per side, computed on representatives and
read a row at a time (memory stays proportional to the representatives, not their pairs).
Endpoints are grouped into joint classes: same namespace and, on each side, the same answers to
every question the ruleset asks of an endpoint (questions.py). Members of a class meet every
rule of either side exactly as any other member does, so the verdict of one flow per class pair (two members for the pairs inside one class) holds for
every flow between their members. Changed flows with the same verdicts, ports and cause are
returned as one block: every flow from its sources to its destinations, self pairs excluded.
Blocks are found with set fingerprints (sums of random 64-bit numbers, two of them: 128 bits),
whose collision would merge two blocks; its odds are below 2**-100 for any diff that fits in
memory.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import numpy.typing as npt

from netfence.analysis.diff.changes import Cause, ChangeBlock, Diff
from netfence.analysis.diff.explain import Explainer
from netfence.analysis.diff.questions import Questions
from netfence.analysis.matrix import compute_matrix
from netfence.ir.types import Ruleset
from netfence.model.endpoints import EndpointId
from netfence.model.ports import FlowPort

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def diff_rulesets(old: Ruleset, new: Ruleset, ports: Sequence[FlowPort]) -> Diff:
    """Every flow between endpoints of both rulesets whose verdict differs, on `ports`."""
    ports = tuple(dict.fromkeys(ports))
    old_ids = {e.id for e in old.endpoints}
    new_ids = {e.id for e in new.endpoints}
    compared = tuple(sorted(old_ids & new_ids))
    added = tuple(sorted(new_ids - old_ids))
    removed = tuple(sorted(old_ids - new_ids))
    if not compared or not ports:
        return Diff(ports, compared, added, removed, ())
    sides = (Questions(old), Questions(new))
    members = _classes(compared, sides)
    first = [m[0] for m in members]
    second = [m[1] if len(m) > 1 else None for m in members]
    p, a, b, after = _changed(sides, ports, first, second)
    if not p.size:
        return Diff(ports, compared, added, removed, ())
    causes, cause_of = Explainer(sides, ports, first, second).causes(p, a, b)
    singles = np.array([s is None for s in second], dtype=bool)
    blocks = _blocks(members, ports, p, a, b, after, causes, cause_of, singles)
    return Diff(ports, compared, added, removed, blocks)


# --- joint classes ------------------------------------------------------------------------------


def _classes(compared: Sequence[EndpointId], sides: Sequence[Questions]) -> list[list[EndpointId]]:
    """The compared endpoints grouped into joint classes, members sorted, classes by first member."""
    index: dict[Hashable, int] = {}
    members: list[list[EndpointId]] = []
    for endpoint in compared:
        namespace = endpoint.rpartition("/")[0]
        key = (namespace, *(side.signature(endpoint) for side in sides))
        k = index.setdefault(key, len(members))
        if k == len(members):
            members.append([])
        members[k].append(endpoint)
    return members


def _changed(
    sides: Sequence[Questions],
    ports: Sequence[FlowPort],
    first: Sequence[EndpointId],
    second: Sequence[EndpointId | None],
) -> tuple[IntArray, IntArray, IntArray, BoolArray]:
    """(port, source class, destination class) of every class pair whose verdict changed, and
    the verdict after. Between two classes: their first members; inside a class: its first and
    second member (a class of one has no pair inside)."""
    count = len(first)
    extra = [e for e in second if e is not None]
    inside = np.full(count, -1, dtype=np.int64)  # the second member's column, per class
    inside[[k for k, e in enumerate(second) if e is not None]] = count + np.arange(len(extra))
    matrices = [
        compute_matrix(side.ruleset, ports, [side.info(e) for e in (*first, *extra)]) for side in sides
    ]
    rows = np.arange(count)
    pairs = np.flatnonzero(inside >= 0)
    found_p, found_a, found_b, found_after = [], [], [], []
    width = count + len(extra)
    old, new = (np.empty((count, width), dtype=bool) for _ in matrices)
    for q in range(len(ports)):
        for buffer, matrix in zip((old, new), matrices):
            for k in range(count):
                buffer[k] = matrix.row(q, k)
        changed = old[:, :count] != new[:, :count]
        after = new[:, :count]
        changed[rows, rows] = False
        changed[pairs, pairs] = old[pairs, inside[pairs]] != new[pairs, inside[pairs]]
        after[pairs, pairs] = new[pairs, inside[pairs]]
        a, b = np.nonzero(changed)
        found_p.append(np.full(a.size, q, dtype=np.int64))
        found_a.append(a.astype(np.int64))
        found_b.append(b.astype(np.int64))
        found_after.append(after[a, b])
    return (
        np.concatenate(found_p),
        np.concatenate(found_a),
        np.concatenate(found_b),
        np.concatenate(found_after).astype(bool),
    )


# --- blocks -------------------------------------------------------------------------------------


def _blocks(
    members: Sequence[Sequence[EndpointId]],
    ports: Sequence[FlowPort],
    p: IntArray,
    a: IntArray,
    b: IntArray,
    after: BoolArray,
    causes: Sequence[Cause],
    cause_of: IntArray,
    singles: BoolArray,
) -> tuple[ChangeBlock, ...]:
    """Changed entries as products of class sets, merged over ports where they agree.

    In a group (cause, verdict after, port), destinations changed from the same set of sources
    form one product; products alike on every port of a cause become one block. A class of one
    endpoint paired with itself is only a self pair, which no block counts: it is taken as
    changed wherever its class is both a source and a destination of the group, so that
    `ns/* -> ns/*` is one product.
    """
    count = len(members)
    group = (cause_of * 2 + after.astype(np.int64)) * len(ports) + p
    sources_in = np.unique(group * count + a)
    lonely = singles[b] & np.isin(group * count + b, sources_in)
    fill = np.unique(group[lonely] * count + b[lonely])
    group = np.concatenate([group, fill // count])
    a = np.concatenate([a, fill % count])
    b = np.concatenate([b, fill % count])

    rng = np.random.default_rng(0x6E657466656E6365)
    marks = rng.integers(0, np.iinfo(np.int64).max, size=(2, count), dtype=np.int64).astype(np.uint64)
    # Segments: one (group, destination) each, holding its sources.
    order = np.lexsort((a, b, group))
    group, a, b = group[order], a[order], b[order]
    starts = np.flatnonzero(np.r_[True, (group[1:] != group[:-1]) | (b[1:] != b[:-1])])
    lengths = np.diff(np.r_[starts, len(a)])
    source_print = np.stack(
        [np.add.reduceat(marks[0][a], starts), np.add.reduceat(marks[1][a], starts)], axis=1
    ).view(np.int64)
    segment_group, segment_destination = group[starts], b[starts]
    # Products: segments of one group with the same sources.
    product_key = np.column_stack([segment_group, source_print, lengths])
    products, segment_product = np.unique(product_key, axis=0, return_inverse=True)
    segment_product = np.asarray(segment_product).reshape(-1)
    by_product = np.argsort(segment_product, kind="stable")
    product_starts = np.flatnonzero(np.r_[True, np.diff(segment_product[by_product]) != 0])
    destinations_of = segment_destination[by_product]
    destination_print = np.stack(
        [
            np.add.reduceat(marks[0][destinations_of], product_starts),
            np.add.reduceat(marks[1][destinations_of], product_starts),
        ],
        axis=1,
    ).view(np.int64)
    destination_count = np.diff(np.r_[product_starts, len(destinations_of)])
    # Blocks: products alike but for the port.
    kind, port_of = np.divmod(products[:, 0], len(ports))
    block_key = np.column_stack([kind, products[:, 1:], destination_print, destination_count])
    _, block_of = np.unique(block_key, axis=0, return_inverse=True)
    block_of = np.asarray(block_of).reshape(-1)
    first_segment = np.full(len(products), -1, dtype=np.int64)
    first_segment[segment_product[::-1]] = np.arange(len(segment_product))[::-1]
    by_block = np.argsort(block_of, kind="stable")
    blocks = []
    for chosen in np.split(by_block, np.flatnonzero(np.diff(block_of[by_block])) + 1):
        product = int(chosen[0])
        segment = int(first_segment[product])
        sources = a[starts[segment] : starts[segment] + lengths[segment]].tolist()
        destinations = destinations_of[product_starts[product] : product_starts[product] + destination_count[product]]
        cause, allowed = divmod(int(kind[product]), 2)
        blocks.append(
            ChangeBlock(
                tuple(sorted(e for c in sources for e in members[c])),
                tuple(sorted(e for c in destinations.tolist() for e in members[c])),
                tuple(sorted((ports[int(q)] for q in port_of[chosen]), key=lambda port: port.sort_key)),
                bool(allowed),
                causes[cause],
            )
        )
    blocks.sort(key=lambda x: (x.allowed, x.sources, x.destinations, [q.sort_key for q in x.ports]))
    return tuple(blocks)
