"""compute_matrix(ruleset, ports) -> Matrix: the verdict of every endpoint pair and port at once.

Same semantics as verdict.evaluate: a flow needs the source's egress and the destination's
ingress; each side walks its direction's tiers in order, the first rule that matches decides, a
tier selecting the endpoint with no matching rule applies its end action, and the endpoint's
(or the ruleset's) default applies when no tier decided; an endpoint reaching itself is allowed.

The work is done on equivalence classes (classes.py), not endpoints: sources are grouped by
what egress and ingress rules ask about a source, destinations by what they ask about a
destination (named ports included: a destination's for destination ports, a source's for named
source ports). Each direction is one pass over the rules in order, every
rule applied to the block of (local class, remote class) pairs it matches, for as many ports at
once as fit in WALK_BYTES; the two directions are composed with one `&` and kept as packed bits
(100,000 pods make about 8,000 x 24,000 classes: 190 MB a port unpacked, 24 MB packed).
Endpoints appear only when the matrix is read.
A property test holds this engine and the per-flow evaluator to identical results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from netfence.analysis.classes import BoolArray, ByteArray, Classes, IntArray, Questions, Universe
from netfence.ir.types import Action, EndpointInfo, Rule, Ruleset
from netfence.model.policies import Direction
from netfence.model.ports import FlowPort

CountArray = npt.NDArray[np.int64]

#: About how many bytes each of the walk's [port, class, class] arrays may take: ports are walked
#: in passes of as many as fit (all of them for 10,000 pods; one at a time for 100,000).
WALK_BYTES = 256 * 2**20


class Matrix:
    """allowed[port, source, destination] for every source and destination.

    Built from a dense array (`Matrix(endpoints, ports, allowed)`, sources and destinations the
    same endpoints) or, by `compute_matrix`, per class pair: the verdict of every (port, source
    class, destination class) as bits packed along the destination classes (`class_allowed`
    unpacks them), with `source_class`/`destination_class` mapping endpoints to classes and every
    endpoint allowed to reach itself. `row` and `counts` read the bits without expanding them;
    `allowed` expands them (for small matrices: it is ports x sources x destinations bytes).
    """

    def __init__(self, endpoints: Sequence[EndpointInfo], ports: Sequence[FlowPort], allowed: BoolArray) -> None:
        self.sources = tuple(endpoints)
        self.destinations = self.sources
        self.ports = tuple(ports)
        n = len(self.sources)
        self.source_class: IntArray = np.arange(n, dtype=np.int64)
        self.destination_class: IntArray = self.source_class
        self.class_bits: ByteArray = np.packbits(allowed, axis=-1)
        self.class_shape: tuple[int, int, int] = (len(self.ports), n, n)
        #: Per source, the column of the same endpoint among the destinations (-1: none); None
        #: when self pairs are stored like any other (a dense matrix, e.g. what a lab measured).
        self.self_column: IntArray | None = None
        self._dense: BoolArray | None = allowed

    @classmethod
    def of_classes(
        cls,
        sources: Sequence[EndpointInfo],
        destinations: Sequence[EndpointInfo],
        ports: Sequence[FlowPort],
        source_class: IntArray,
        destination_class: IntArray,
        class_bits: ByteArray,
        destination_classes: int,
    ) -> Matrix:
        """`class_bits[port, source class]`: the destination classes' verdicts, np.packbits'ed."""
        matrix = cls.__new__(cls)
        matrix.sources = tuple(sources)
        matrix.destinations = tuple(destinations)
        matrix.ports = tuple(ports)
        matrix.source_class = source_class
        matrix.destination_class = destination_class
        matrix.class_bits = class_bits
        matrix.class_shape = (len(matrix.ports), class_bits.shape[1], destination_classes)
        column = {e.id: j for j, e in enumerate(matrix.destinations)}
        matrix.self_column = np.array([column.get(e.id, -1) for e in matrix.sources], dtype=np.int64)
        matrix._dense = None
        return matrix

    @property
    def endpoints(self) -> tuple[EndpointInfo, ...]:
        """The sources (for a square matrix, also the destinations)."""
        return self.sources

    @property
    def class_allowed(self) -> BoolArray:
        """allowed[port, source class, destination class], unpacked (ports x classes² bytes)."""
        return self._unpack(self.class_bits)

    def _unpack(self, bits: ByteArray) -> BoolArray:
        unpacked: BoolArray = np.unpackbits(bits, axis=-1, count=self.class_shape[2]).view(np.bool_)
        return unpacked

    def _bit(self, port: int, source_class: IntArray, destination_class: IntArray) -> BoolArray:
        """The verdicts of some (source class, destination class) pairs, read from the packed bits."""
        byte = self.class_bits[port, source_class, destination_class >> 3]
        # np.packbits puts the first element in the high bit.
        bit: BoolArray = ((byte >> (7 - (destination_class & 7)).astype(np.uint8)) & 1).astype(bool)
        return bit

    @property
    def allowed(self) -> BoolArray:
        """The dense array allowed[port, source, destination] (expanded once, then kept)."""
        if self._dense is None:
            dense = np.empty((len(self.ports), len(self.sources), len(self.destinations)), dtype=bool)
            for p in range(len(self.ports)):
                dense[p] = self._unpack(self.class_bits[p])[self.source_class[:, None], self.destination_class[None, :]]
            if self.self_column is not None:
                rows = np.flatnonzero(self.self_column >= 0)
                dense[:, rows, self.self_column[rows]] = True
            self._dense = dense
        return self._dense

    def row(self, port: int, source: int) -> BoolArray:
        """Which destinations `source` may reach on `port` (a fresh array)."""
        if self._dense is not None:
            dense_row: BoolArray = self._dense[port, source].copy()
            return dense_row
        row: BoolArray = self._unpack(self.class_bits[port, self.source_class[source]])[self.destination_class]
        if self.self_column is not None and self.self_column[source] >= 0:
            row[self.self_column[source]] = True
        return row

    def counts(
        self, source_group: IntArray, groups_from: int, destination_group: IntArray, groups_to: int
    ) -> CountArray:
        """allowed[port, g, h]: how many flows from sources of group g to destinations of group h
        are allowed, without expanding the matrix.

        Per port, a few source classes at a time: the allowed (or, where fewer, the denied)
        destination classes of each, weighted by how many endpoints of each destination group
        they hold and counted per group with one bincount; then the source classes summed into
        their groups. The work follows the class pairs, never a classes² float matrix.
        """
        ports, source_classes, destination_classes = self.class_shape
        out = np.zeros((ports, groups_from, groups_to), dtype=np.int64)
        # Destination class -> its (group, endpoint count) pairs, as offsets into pair arrays.
        to_keys, to_weight = np.unique(
            self.destination_class.astype(np.int64) * groups_to + destination_group, return_counts=True
        )
        to_class, to_group = np.divmod(to_keys, max(1, groups_to))
        to_offset = np.searchsorted(to_class, np.arange(destination_classes + 1))
        group_size = np.bincount(destination_group, minlength=groups_to).astype(np.int64)
        from_class, from_weight, from_group, from_starts = _group_pairs(source_group, self.source_class, source_classes)
        selves = np.zeros(0, dtype=np.int64) if self.self_column is None else np.flatnonzero(self.self_column >= 0)
        step = max(1, 2**24 // max(1, destination_classes))
        for p in range(ports):
            per_class = np.zeros((source_classes, groups_to), dtype=np.int64)
            for first in range(0, source_classes, step):
                bits = self._unpack(self.class_bits[p, first : first + step])
                denied = np.count_nonzero(bits) * 2 > bits.size
                rows, columns = np.nonzero(~bits if denied else bits)
                degree = to_offset[columns + 1] - to_offset[columns]
                pair = np.repeat(to_offset[columns], degree) + _ranks(degree)
                cell = np.repeat(rows, degree) * groups_to + to_group[pair]
                found = np.bincount(cell, weights=to_weight[pair], minlength=len(bits) * groups_to)
                found = np.rint(found).astype(np.int64).reshape(len(bits), groups_to)
                per_class[first : first + len(bits)] = group_size - found if denied else found
            if from_starts.size:
                by_pair = per_class[from_class] * from_weight[:, None]
                summed = np.add.reduceat(by_pair, from_starts, axis=0)
                out[p][from_group[from_starts]] = summed
            if selves.size:
                columns = self.self_column[selves]  # type: ignore[index]
                denied_self = ~self._bit(p, self.source_class[selves], self.destination_class[columns])
                np.add.at(out[p], (source_group[selves[denied_self]], destination_group[columns[denied_self]]), 1)
        return out

    def count_allowed(self, port: int) -> int:
        zeros = np.zeros(len(self.sources), dtype=np.int64)
        return int(self.counts(zeros, 1, np.zeros(len(self.destinations), dtype=np.int64), 1)[port, 0, 0])


def _ranks(lengths: IntArray) -> IntArray:
    """0, 1, ..., n-1 for each n in `lengths`, concatenated."""
    total = int(lengths.sum())
    if (lengths == 1).all():  # the usual case
        return np.zeros(total, dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    ranks: IntArray = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)
    return ranks


def _group_pairs(group: IntArray, klass: IntArray, classes: int) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """The distinct (group, class) pairs of some endpoints, sorted by group: each pair's class,
    how many endpoints it holds, its group, and where each group's run of pairs starts."""
    if not len(group):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    keys, weight = np.unique(group.astype(np.int64) * max(1, classes) + klass, return_counts=True)
    pair_group, pair_class = np.divmod(keys, max(1, classes))
    starts = np.flatnonzero(np.r_[True, pair_group[1:] != pair_group[:-1]])
    return pair_class, weight.astype(np.int64), pair_group, starts


@dataclass(frozen=True, slots=True)
class GroupCount:
    """Flows from the sources of one group to the destinations of another, on one port."""

    source_group: str
    destination_group: str
    port: FlowPort
    allowed: int
    total: int

    @property
    def denied(self) -> int:
        return self.total - self.allowed


@dataclass(frozen=True)
class NamespaceCounts:
    """allowed[port, g, h] flows from namespace from_names[g] to to_names[h], out of
    total[g, h] per port."""

    from_names: tuple[str, ...]
    to_names: tuple[str, ...]
    allowed: CountArray
    total: CountArray


def namespace_count_arrays(matrix: Matrix) -> NamespaceCounts:
    """Allowed and total flows per (port, source namespace, destination namespace), as arrays;
    computed on classes, never listing pairs."""
    from_names = sorted({e.namespace for e in matrix.sources})
    to_names = sorted({e.namespace for e in matrix.destinations})
    from_index = {name: g for g, name in enumerate(from_names)}
    to_index = {name: h for h, name in enumerate(to_names)}
    source_group = np.array([from_index[e.namespace] for e in matrix.sources], dtype=np.int64)
    destination_group = np.array([to_index[e.namespace] for e in matrix.destinations], dtype=np.int64)
    allowed = matrix.counts(source_group, len(from_names), destination_group, len(to_names))
    total = np.outer(
        np.bincount(source_group, minlength=len(from_names)), np.bincount(destination_group, minlength=len(to_names))
    )
    return NamespaceCounts(tuple(from_names), tuple(to_names), allowed, total)


def namespace_counts(matrix: Matrix) -> list[GroupCount]:
    """Allowed and total flows per (source namespace, destination namespace, port), sorted by
    namespaces then in port order."""
    counts = namespace_count_arrays(matrix)
    return [
        GroupCount(from_name, to_name, port, int(counts.allowed[p, g, h]), int(counts.total[g, h]))
        for g, from_name in enumerate(counts.from_names)
        for h, to_name in enumerate(counts.to_names)
        for p, port in enumerate(matrix.ports)
    ]


def compute_matrix(
    ruleset: Ruleset,
    ports: Sequence[FlowPort],
    endpoints: Sequence[EndpointInfo] | None = None,
    *,
    sources: Sequence[EndpointInfo] | None = None,
    destinations: Sequence[EndpointInfo] | None = None,
) -> Matrix:
    """The verdict of every (source, destination, port).

    Sources and destinations are `endpoints` (default: every endpoint of the ruleset) unless
    given apart; only they are classified and evaluated, so a narrower matrix is less work.
    """
    chosen = tuple(ruleset.endpoints if endpoints is None else endpoints)
    froms = chosen if sources is None else tuple(sources)
    tos = chosen if destinations is None else tuple(destinations)
    members = {e.id: e for e in froms}
    for e in tos:
        members.setdefault(e.id, e)
    universe = Universe(tuple(members.values()))
    source_rows = np.array([universe.index[e.id] for e in froms], dtype=np.int64)
    destination_rows = np.array([universe.index[e.id] for e in tos], dtype=np.int64)

    asked_of_sources, asked_of_destinations = _questions(ruleset)
    source_names = _source_port_names(ruleset)
    source = Classes(universe, source_rows, asked_of_sources, ruleset.default_action, source_names)
    destination = Classes(universe, destination_rows, asked_of_destinations, ruleset.default_action, True)
    port_vectors = _PortVectors(ports, destination)
    source_vectors = _SourcePortVectors(ports, source)
    bits = np.zeros((len(ports), source.count, (destination.count + 7) // 8), dtype=np.uint8)
    # A few ports per pass, so that the walk's arrays stay near WALK_BYTES each.
    per_pass = max(1, WALK_BYTES // max(1, source.count * destination.count))
    for first in range(0, len(ports), per_pass):
        pass_ports = slice(first, min(len(ports), first + per_pass))
        vectors = (port_vectors, source_vectors)
        egress = _walk(ruleset, Direction.EGRESS, source, destination, vectors, pass_ports)  # [port, src, dst]
        ingress = _walk(ruleset, Direction.INGRESS, destination, source, vectors, pass_ports)  # [port, dst, src]
        _and_transposed(egress, ingress)
        del ingress
        bits[pass_ports] = np.packbits(egress, axis=-1)
        del egress
    return Matrix.of_classes(froms, tos, ports, source.class_of, destination.class_of, bits, destination.count)


def _decides(rule: Rule) -> bool:
    """Log never decides."""
    return rule.action is not Action.LOG


def _source_port_names(ruleset: Ruleset) -> frozenset[str]:
    """The names of named source ports: the sources' named ports of these tell them apart."""
    return frozenset(
        entry.name
        for direction in Direction
        for tier in ruleset.tiers(direction)
        for policy in tier.policies
        for rule in policy.rules
        if _decides(rule)
        for entry in (*rule.source_ports, *rule.not_source_ports)
        if entry.name is not None
    )


def _questions(ruleset: Ruleset) -> tuple[Questions, Questions]:
    """What the rules ask of a source, and of a destination.

    Egress is judged at the source (its subjects and local matches are about the source, its
    peers about the destination); ingress the other way round.
    """
    of_sources, of_destinations = Questions(), Questions()
    for direction, local, remote in (
        (Direction.EGRESS, of_sources, of_destinations),
        (Direction.INGRESS, of_destinations, of_sources),
    ):
        for tier in ruleset.tiers(direction):
            for policy in tier.policies:
                local.add_set(policy.subjects)
                for rule in policy.rules:
                    if not _decides(rule):
                        continue
                    if rule.local is not None:
                        local.add_peer(rule.local)
                    for peer in rule.peers or ():
                        remote.add_peer(peer)
    return of_sources, of_destinations


def _walk(
    ruleset: Ruleset,
    direction: Direction,
    local: Classes,
    remote: Classes,
    vectors: tuple[_PortVectors, _SourcePortVectors],
    ports: slice,
) -> BoolArray:
    """verdict[port, local class, remote class] of `direction` for the `ports` of `port_vectors`,
    judged at the local side.

    One pass over the rules in tier and policy order. `decided` marks the pairs some rule (or a
    tier's end action) has decided, `passed` those a Pass rule sent on to the next tier; a rule
    only takes the pairs still open, which is first-match for every pair at once.
    """
    port_vectors, source_vectors = vectors
    shape = (len(range(*ports.indices(len(port_vectors.ports)))), local.count, remote.count)
    decided = np.zeros(shape, dtype=bool)
    result = np.zeros(shape, dtype=bool)
    if not local.count or not remote.count:
        return result
    every_remote = np.ones(remote.count, dtype=bool)
    at_destination = direction is Direction.INGRESS  # whether the local side is the destination
    for tier in ruleset.tiers(direction):
        selected = np.zeros(local.count, dtype=bool)
        passed: BoolArray | None = None
        for policy in tier.policies:
            subjects = local.in_set(policy.subjects)
            if not subjects.any():
                continue
            selected |= subjects
            for rule in policy.rules:
                if not _decides(rule):
                    continue
                port_ok = port_vectors.of(rule)  # [port, destination class]
                if port_ok is None:
                    continue
                port_ok = port_ok[ports]
                if not port_ok.any():
                    continue
                source_ok = source_vectors.of(rule)  # [port, source class]; None: every one
                if source_ok is not None:
                    source_ok = source_ok[ports]
                    if not source_ok.any():
                        continue
                rows = subjects
                if rule.ip_version is not None:
                    rows = rows & local.has_family(rule.ip_version)
                if rule.local is not None:
                    rows = rows & local.matching(rule.local, rule.ip_version)
                if rule.peers is None:
                    cols = every_remote if rule.ip_version is None else remote.has_family(rule.ip_version)
                else:
                    cols = np.zeros(remote.count, dtype=bool)
                    for peer in rule.peers:
                        cols |= remote.matching(peer, rule.ip_version)
                row_index, col_index = np.flatnonzero(rows), np.flatnonzero(cols)
                if not row_index.size or not col_index.size:
                    continue
                if at_destination:
                    hit = port_ok[:, row_index][:, :, None]
                    if source_ok is not None:
                        hit = hit & source_ok[:, col_index][:, None, :]
                else:
                    hit = port_ok[:, col_index][:, None, :]
                    if source_ok is not None:
                        hit = hit & source_ok[:, row_index][:, :, None]
                block = _block(row_index, col_index, local.count, remote.count)
                taken = decided[block] if passed is None else decided[block] | passed[block]
                fresh = hit & ~taken
                if rule.action is Action.PASS:
                    if passed is None:
                        passed = np.zeros(shape, dtype=bool)
                    passed[block] |= fresh
                    continue
                decided[block] |= fresh
                if rule.action is Action.ALLOW:
                    result[block] |= fresh
        if tier.end_action is not None and selected.any():
            _close(selected, tier.end_action is Action.ALLOW, decided, passed, result)
    if local.default_allows.any():
        _close(local.default_allows, True, decided, None, result, last=True)
    return result


def _close(
    rows: BoolArray, allow: bool, decided: BoolArray, passed: BoolArray | None, result: BoolArray, last: bool = False
) -> None:
    """Decide every pair of the local classes `rows` that is still open (and allow it, if
    `allow`); `last`: nothing reads `decided` afterwards. These cover most rows, so they are done
    a slice of rows at a time, in place (indexing the rows would copy the whole array twice)."""
    step = max(1, 2**24 // max(1, decided.shape[0] * decided.shape[2]))
    for first in range(0, len(rows), step):
        part = slice(first, first + step)
        chosen = rows[part]
        if chosen.all():
            done, out = decided[:, part], result[:, part]
            if passed is None:
                if allow:
                    np.greater_equal(out, done, out=out)  # out | ~done
                if not last:
                    done[...] = True
                continue
            rest = ~(done | passed[:, part])
            if allow:
                out |= rest
            if not last:
                done |= rest
        elif chosen.any():
            index = (slice(None), first + np.flatnonzero(chosen))
            rest = ~decided[index] if passed is None else ~(decided[index] | passed[index])
            if allow:
                result[index] |= rest
            if not last:
                decided[index] |= rest


def _and_transposed(into: BoolArray, other: BoolArray) -> None:
    """into[p] &= other[p].T, in square tiles: a plain `&` with a transposed operand reads it a
    byte per cache line, which took longer than the walk on 100,000 pods."""
    tile = 512
    for p in range(into.shape[0]):
        for i in range(0, into.shape[1], tile):
            for j in range(0, into.shape[2], tile):
                into[p, i : i + tile, j : j + tile] &= other[p, j : j + tile, i : i + tile].T


Block = tuple[slice | IntArray, ...]


def _block(rows: IntArray, cols: IntArray, row_count: int, col_count: int) -> Block:
    """An index of [:, rows, cols] (all ports), with slices where the indices run contiguously:
    those read and write in place of copying."""
    row_slice = _as_slice(rows)
    col_slice = _as_slice(cols)
    if row_slice is None and col_slice is None:
        return (slice(None), rows[:, None], cols[None, :])
    return (slice(None), rows if row_slice is None else row_slice, cols if col_slice is None else col_slice)


def _as_slice(index: IntArray) -> slice | None:
    first, last = int(index[0]), int(index[-1])
    return slice(first, last + 1) if last - first + 1 == len(index) else None


class _PortVectors:
    """ok[port, destination class] of a rule's protocol, port and ICMP criteria; None when no port
    matches. Named ports resolve against the destination, once per distinct named-port map.
    Rules with the same criteria (most of them, in practice) share one computation."""

    def __init__(self, ports: Sequence[FlowPort], destination: Classes) -> None:
        self.ports = tuple(ports)
        self.destination = destination
        self._known: dict[tuple[object, ...], BoolArray | None] = {}

    def of(self, rule: Rule) -> BoolArray | None:
        key = (rule.ports, rule.not_ports, rule.protocol, rule.not_protocol, rule.icmp, rule.not_icmp)
        if key not in self._known:
            self._known[key] = self._compute(rule)
        return self._known[key]

    def _compute(self, rule: Rule) -> BoolArray | None:
        ports, destination = self.ports, self.destination
        if any(entry.name is not None for entry in (*(rule.ports or ()), *rule.not_ports)):
            maps = destination.port_map_endpoints
            per_map = np.array([[_port_matches(rule, p, e) for e in maps] for p in ports], dtype=bool)
            per_map = per_map.reshape(len(ports), len(maps))
            if not per_map.any():
                return None
            ok: BoolArray = per_map[:, destination.port_map]
            return ok
        flat = np.array([_port_matches(rule, port, None) for port in ports], dtype=bool)
        if not flat.any():
            return None
        return np.broadcast_to(flat[:, None], (len(ports), destination.count))


def _port_matches(rule: Rule, port: FlowPort, endpoint: EndpointInfo | None) -> bool:
    if not rule.matches_port(port, endpoint):
        return False
    return rule.ports is None or any(entry.matches(port, endpoint) for entry in rule.ports)


class _SourcePortVectors:
    """ok[port, source class] of a rule's source-port criterion (Rule.matches_source_port, the
    evaluator's): None when the rule has none. Without names it depends on the protocol only;
    names resolve on the source, once per distinct map of the names in use."""

    def __init__(self, ports: Sequence[FlowPort], source: Classes) -> None:
        self.ports = tuple(ports)
        self.source = source
        self._known: dict[tuple[object, ...], BoolArray | None] = {}

    def of(self, rule: Rule) -> BoolArray | None:
        if not rule.constrains_source_port:
            return None
        key = (rule.source_ports, rule.not_source_ports)
        if key not in self._known:
            self._known[key] = self._compute(rule)
        return self._known[key]

    def _compute(self, rule: Rule) -> BoolArray:
        ports, source = self.ports, self.source
        if rule.names_source_port:
            maps = source.port_map_endpoints
            per_map = np.array(
                [[rule.matches_source_port(p.protocol, e) for e in maps] for p in ports], dtype=bool
            ).reshape(len(ports), len(maps))
            ok: BoolArray = per_map[:, source.port_map]
            return ok
        flat = np.array([rule.matches_source_port(p.protocol, None) for p in ports], dtype=bool)
        return np.broadcast_to(flat[:, None], (len(ports), source.count))
