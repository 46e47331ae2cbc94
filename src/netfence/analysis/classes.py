"""Endpoint equivalence classes: the endpoints a ruleset cannot tell apart.

Every criterion of the IR asks one of a few questions about an endpoint: is it in this endpoint
set (a policy's subjects, a peer's or a local match's endpoints, an `also`/`excluded` group's),
is this address of it in this CIDR block (address by address: a peer matches when one address
passes every test), what does this port name resolve to on it, what is its default action.
Endpoints with the same answers to all of them are matched by exactly the same rules, so a
verdict computed for one pair of classes holds for every pair of endpoints drawn from them
(except an endpoint with itself, which is always allowed).

The answers are computed for all endpoints at once: one bit per (endpoint, set), one per
(address, block), rows packed into bytes and made unique with numpy.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from netfence.ir.types import Action, AddressGroup, CidrBlock, EndpointInfo, PeerMatch
from netfence.model.endpoints import EndpointId
from netfence.model.policies import IPNetwork

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
ByteArray = npt.NDArray[np.uint8]

_LOW64 = (1 << 64) - 1


class Universe:
    """The endpoints of a matrix (both sides) with their addresses as numbers.

    An address is a unit: (owner endpoint, family 4 or 6, value as two 64-bit halves). An
    endpoint without addresses has one unit of family 0, which no block contains.
    """

    def __init__(self, endpoints: Sequence[EndpointInfo]) -> None:
        self.endpoints = tuple(endpoints)
        self.index: dict[EndpointId, int] = {e.id: i for i, e in enumerate(self.endpoints)}
        owners: list[int] = []
        families: list[int] = []
        values: list[int] = []
        for i, endpoint in enumerate(self.endpoints):
            if not endpoint.ips:
                owners.append(i)
                families.append(0)
                values.append(0)
            for address in endpoint.ips:
                owners.append(i)
                families.append(address.version)
                values.append(int(address))
        self.unit_owner = np.array(owners, dtype=np.int64)
        self.unit_family = np.array(families, dtype=np.int8)
        self.unit_high = np.array([v >> 64 for v in values], dtype=np.uint64)
        self.unit_low = np.array([v & _LOW64 for v in values], dtype=np.uint64)
        self._members: dict[int, tuple[frozenset[EndpointId], IntArray]] = {}
        self._blocks: dict[CidrBlock, BoolArray] = {}

    def __len__(self) -> int:
        return len(self.endpoints)

    def members(self, endpoints: frozenset[EndpointId]) -> IntArray:
        """Indices of the universe's endpoints in the set (cached per set object)."""
        cached = self._members.get(id(endpoints))
        if cached is None:
            get = self.index.get
            found = np.fromiter(map(get, endpoints, itertools.repeat(-1)), dtype=np.int64, count=len(endpoints))
            # The set is kept with its indices so that its id() is not reused while cached.
            cached = (endpoints, found[found >= 0])
            self._members[id(endpoints)] = cached
        return cached[1]

    def block_units(self, block: CidrBlock) -> BoolArray:
        """Which units the block contains (its network minus its excepts)."""
        cached = self._blocks.get(block)
        if cached is None:
            cached = self._in_network(block.network)
            for excepted in block.excepts:
                cached &= ~self._in_network(excepted)
            self._blocks[block] = cached
        return cached

    def _in_network(self, network: IPNetwork) -> BoolArray:
        first, last = int(network.network_address), int(network.broadcast_address)
        inside: BoolArray = (
            (self.unit_family == network.version)
            & _at_least(self.unit_high, self.unit_low, first)
            & _at_most(self.unit_high, self.unit_low, last)
        )
        return inside


def _at_least(high: npt.NDArray[np.uint64], low: npt.NDArray[np.uint64], bound: int) -> BoolArray:
    h, lo = np.uint64(bound >> 64), np.uint64(bound & _LOW64)
    result: BoolArray = (high > h) | ((high == h) & (low >= lo))
    return result


def _at_most(high: npt.NDArray[np.uint64], low: npt.NDArray[np.uint64], bound: int) -> BoolArray:
    h, lo = np.uint64(bound >> 64), np.uint64(bound & _LOW64)
    result: BoolArray = (high < h) | ((high == h) & (low <= lo))
    return result


class Questions:
    """The endpoint sets and CIDR blocks the rules ask about, each given one column."""

    def __init__(self) -> None:
        self.sets: list[frozenset[EndpointId]] = []
        self.blocks: list[CidrBlock] = []
        self._set_columns: dict[frozenset[EndpointId], int] = {}
        self._set_ids: dict[int, tuple[frozenset[EndpointId], int]] = {}
        self._block_columns: dict[CidrBlock, int] = {}

    def add_set(self, endpoints: frozenset[EndpointId]) -> None:
        if id(endpoints) in self._set_ids:
            return
        column = self._set_columns.setdefault(endpoints, len(self._set_columns))
        if column == len(self.sets):
            self.sets.append(endpoints)
        self._set_ids[id(endpoints)] = (endpoints, column)

    def add_blocks(self, blocks: Iterable[CidrBlock]) -> None:
        for block in blocks:
            if block not in self._block_columns:
                self._block_columns[block] = len(self.blocks)
                self.blocks.append(block)

    def add_group(self, group: AddressGroup | PeerMatch) -> None:
        if group.endpoints:
            self.add_set(group.endpoints)
        self.add_blocks(group.blocks)

    def add_peer(self, peer: PeerMatch) -> None:
        self.add_group(peer)
        for group in (*peer.also, *peer.excluded):
            self.add_group(group)

    def set_column(self, endpoints: frozenset[EndpointId]) -> int:
        known = self._set_ids.get(id(endpoints))
        return known[1] if known is not None else self._set_columns[endpoints]

    def block_column(self, block: CidrBlock) -> int:
        return self._block_columns[block]


class Classes:
    """The classes of one side of a matrix (its sources, or its destinations).

    `class_of[i]` is the class of the side's i-th endpoint; `representative[k]` one endpoint
    (index into the side) of class k. Criteria are answered per class, as vectors over classes.
    """

    def __init__(
        self,
        universe: Universe,
        rows: IntArray,
        questions: Questions,
        default_action: Action,
        with_named_ports: bool | frozenset[str],
    ) -> None:
        """`with_named_ports`: True when the side's named ports matter (the destinations'); a
        set of names when only those do (the sources', for named source ports); False: none."""
        self.universe = universe
        self.questions = questions
        n = len(rows)
        endpoints = [universe.endpoints[r] for r in rows.tolist()]
        position = np.full(len(universe), -1, dtype=np.int64)
        position[rows] = np.arange(n, dtype=np.int64)

        # One bit per (endpoint, set), packed: bit c is byte c >> 3, mask 1 << (c & 7).
        set_bits = np.zeros((n, (len(questions.sets) + 7) // 8), dtype=np.uint8)
        for column, members in enumerate(questions.sets):
            at = position[universe.members(members)]
            at = at[at >= 0]
            set_bits[at, column >> 3] |= np.uint8(1 << (column & 7))

        # The side's address units, one bit per (unit, block), and a number per distinct
        # (family, blocks) row; an endpoint's address signature is the set of its rows' numbers.
        unit_position = position[universe.unit_owner]
        unit_mask = unit_position >= 0
        unit_owner = unit_position[unit_mask]
        block_bits = np.zeros((len(unit_owner), (len(questions.blocks) + 7) // 8), dtype=np.uint8)
        for column, block in enumerate(questions.blocks):
            inside = universe.block_units(block)[unit_mask]
            block_bits[inside, column >> 3] |= np.uint8(1 << (column & 7))
        unit_family = universe.unit_family[unit_mask]
        unit_rows = np.concatenate([unit_family.view(np.uint8)[:, None], block_bits], axis=1)
        _, unit_kind = _unique_rows(unit_rows)
        address_signature = _address_signatures(unit_owner, unit_kind, n)

        # Everything else an endpoint is judged by.
        # Named ports matter where a side holds the destinations (and, for the names of named
        # source ports, the sources); one endpoint stands for each map.
        maps: dict[object, int] = {}
        self.port_map_endpoints: list[EndpointInfo] = []
        port_map = np.zeros(n, dtype=np.int32)
        if with_named_ports:
            names = None if with_named_ports is True else with_named_ports
            for i, e in enumerate(endpoints):
                ports = e.named_ports if names is None else tuple(p for p in e.named_ports if p[0] in names)
                number = maps.setdefault(ports, len(maps))
                if number == len(self.port_map_endpoints):
                    self.port_map_endpoints.append(e)
                port_map[i] = number
        allows = np.array([(e.default_action or default_action) is Action.ALLOW for e in endpoints], dtype=np.uint8)
        kinds: dict[object, int] = {}
        kind = np.array([kinds.setdefault(e.kind, len(kinds)) for e in endpoints], dtype=np.uint8)

        signature = np.concatenate(
            [
                set_bits,
                address_signature.astype(np.int32).view(np.uint8).reshape(n, 4),
                port_map.view(np.uint8).reshape(n, 4),
                allows[:, None],
                kind[:, None],
            ],
            axis=1,
        )
        first, class_of = _unique_rows(signature)
        self.class_of: IntArray = class_of
        self.representative: IntArray = first
        self.count = len(first)
        self.endpoints = endpoints
        self.sizes: IntArray = np.bincount(class_of, minlength=self.count).astype(np.int64)

        # Per class: its representative's set bits, port-map, default, and address units.
        self.set_bits = set_bits[first]
        self.default_allows: BoolArray = allows[first].astype(bool)
        self.port_map: IntArray = port_map[first].astype(np.int64)
        representative_class = np.full(n, -1, dtype=np.int64)
        representative_class[first] = np.arange(self.count, dtype=np.int64)
        unit_class = representative_class[unit_owner]
        keep = unit_class >= 0
        self.unit_class: IntArray = unit_class[keep]
        self.unit_family = unit_family[keep]
        self.unit_blocks = block_bits[keep]
        self._sets: dict[int, BoolArray] = {}
        self._peers: dict[tuple[int, int | None], BoolArray] = {}
        self._families: dict[int, BoolArray] = {}

    # --- criteria, as vectors over classes ---------------------------------------------------

    def in_set(self, endpoints: frozenset[EndpointId]) -> BoolArray:
        column = self.questions.set_column(endpoints)
        cached = self._sets.get(column)
        if cached is None:
            cached = ((self.set_bits[:, column >> 3] >> np.uint8(column & 7)) & np.uint8(1)).astype(bool)
            self._sets[column] = cached
        return cached

    def has_family(self, version: int) -> BoolArray:
        cached = self._families.get(version)
        if cached is None:
            cached = np.zeros(self.count, dtype=bool)
            cached[self.unit_class[self.unit_family == version]] = True
            self._families[version] = cached
        return cached

    def matching(self, peer: PeerMatch, ip_version: int | None) -> BoolArray:
        """Classes with an address (of `ip_version`, when given) that passes every test of the peer."""
        key = (id(peer), ip_version)
        cached = self._peers.get(key)
        if cached is None:
            ok = np.ones(len(self.unit_class), dtype=bool) if peer.any_address else self._unit_group(peer)
            for group in peer.also:
                ok &= self._unit_group(group)
            for group in peer.excluded:
                ok &= ~self._unit_group(group)
            if ip_version is not None:
                ok &= self.unit_family == ip_version
            cached = np.zeros(self.count, dtype=bool)
            cached[self.unit_class[ok]] = True
            self._peers[key] = cached
        return cached

    def _unit_group(self, group: AddressGroup | PeerMatch) -> BoolArray:
        """Units whose endpoint is in the group's endpoints or whose address is in one of its blocks."""
        if group.endpoints:
            ok = self.in_set(group.endpoints)[self.unit_class]
        else:
            ok = np.zeros(len(self.unit_class), dtype=bool)
        for block in group.blocks:
            column = self.questions.block_column(block)
            ok |= ((self.unit_blocks[:, column >> 3] >> np.uint8(column & 7)) & np.uint8(1)).astype(bool)
        return ok


def _unique_rows(rows: ByteArray) -> tuple[IntArray, IntArray]:
    """(index of each distinct row's first occurrence, each row's number): rows numbered in
    order of first occurrence, so classes come out in the order of their first endpoint."""
    n = rows.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    contiguous = np.ascontiguousarray(rows)
    keys = contiguous.view(np.dtype((np.void, contiguous.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    # Renumber by first occurrence.
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order].astype(np.int64), rank[inverse.ravel()].astype(np.int64)


def _address_signatures(unit_owner: IntArray, unit_kind: IntArray, n: int) -> IntArray:
    """A number per endpoint for the set of its units' kinds (most endpoints have one unit)."""
    counts = np.bincount(unit_owner, minlength=n)
    signature = np.zeros(n, dtype=np.int64)
    single = counts[unit_owner] == 1
    signature[unit_owner[single]] = unit_kind[single]
    if not single.all():
        numbers: dict[tuple[int, ...], int] = {}
        base = int(unit_kind.max()) + 1
        several: dict[int, set[int]] = {}
        for owner, kind in zip(unit_owner[~single].tolist(), unit_kind[~single].tolist()):
            several.setdefault(owner, set()).add(kind)
        for owner, kinds in several.items():
            key = tuple(sorted(kinds))
            signature[owner] = kinds.pop() if len(key) == 1 else base + numbers.setdefault(key, len(numbers))
    return signature
