"""What one ruleset asks of endpoints, and so which endpoints it cannot tell apart.

Every IR criterion about an endpoint is a question of a few kinds: is it in this endpoint set
(subjects, peers, local matches, `also`/`excluded` groups), is this address of it in this CIDR
block, what does a port name resolve to on it, what is its default action. Endpoints with the
same answers meet every rule alike. The sets and blocks are found by walking the rules' fields,
so a criterion added to the IR later is asked too: of both ends of a flow, unless it is a rule's
`peers` (the remote end) or `local` (the local end).

Per direction, the decision at an endpoint depends only on the policies that select it: on what
their rules ask of it (its local key) and of the other end (its remote key, relative to those
policies). `reduced` is the ruleset of just those policies, on which `evaluate` gives that
direction's decision exactly as the whole ruleset would.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum

import numpy as np
import numpy.typing as npt

from netfence.ir.types import CidrBlock, EndpointInfo, PolicyRules, Ruleset, Tier
from netfence.model.endpoints import EndpointId
from netfence.model.policies import Direction

#: Per address of an endpoint: its family and the blocks that contain it (bit i: block i).
AddressKey = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class PolicyQuestions:
    tier: int
    rules: PolicyRules
    subjects: int
    #: What its rules ask of the remote end: endpoint set ids, and blocks (bit i: block i).
    remote_sets: frozenset[int]
    remote_blocks: int


@dataclass(frozen=True)
class Relevant:
    """What the policies selecting one local endpoint ask of the remote end."""

    sets: frozenset[int]
    blocks: int


class Questions:
    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self._set_ids: dict[frozenset[EndpointId], int] = {}
        self._block_ids: dict[CidrBlock, int] = {}
        self.local_sets: dict[Direction, set[int]] = {d: set() for d in Direction}
        self.local_blocks: dict[Direction, int] = {d: 0 for d in Direction}
        self.policies: dict[Direction, list[PolicyQuestions]] = {d: [] for d in Direction}
        #: Whether a rule of the direction names a port (then the destination's named ports count).
        self.named: dict[Direction, bool] = {d: False for d in Direction}
        #: Whether a rule of the direction names a source port (then the source's named ports count).
        self.named_source: dict[Direction, bool] = {d: False for d in Direction}
        for direction in Direction:
            for t, tier in enumerate(ruleset.tiers(direction)):
                for policy in tier.policies:
                    self.policies[direction].append(self._policy(direction, t, policy))
        membership: dict[EndpointId, set[int]] = {}
        for members, set_id in self._set_ids.items():
            for member in members:
                membership.setdefault(member, set()).add(set_id)
        self.membership = {k: frozenset(v) for k, v in membership.items()}
        self._addresses = _address_keys(ruleset.endpoints, list(self._block_ids))
        self._selecting: dict[tuple[Direction, frozenset[int]], tuple[PolicyQuestions, ...]] = {}
        self._reduced: dict[tuple[Direction, frozenset[int]], Ruleset] = {}
        self._relevant: dict[tuple[Direction, frozenset[int]], Relevant] = {}

    def _policy(self, direction: Direction, tier: int, policy: PolicyRules) -> PolicyQuestions:
        subjects = self._set_id(policy.subjects)
        self.local_sets[direction].add(subjects)
        remote_sets: set[int] = set()
        remote_blocks = 0
        for rule in policy.rules:
            for entry in (*(rule.ports or ()), *rule.not_ports):
                self.named[direction] |= entry.name is not None
            self.named_source[direction] |= rule.names_source_port
            for name in _searched_fields(type(rule)):
                sets: set[int] = set()
                blocks: set[int] = set()
                self._collect(getattr(rule, name), sets, blocks)
                bits = sum(1 << i for i in blocks)
                if name != "local":
                    remote_sets |= sets
                    remote_blocks |= bits
                if name != "peers":
                    self.local_sets[direction] |= sets
                    self.local_blocks[direction] |= bits
        return PolicyQuestions(tier, policy, subjects, frozenset(remote_sets), remote_blocks)

    def _set_id(self, members: frozenset[EndpointId]) -> int:
        return self._set_ids.setdefault(members, len(self._set_ids))

    def _collect(self, value: object, sets: set[int], blocks: set[int]) -> None:
        if isinstance(value, frozenset):
            sets.add(self._set_id(value))
        elif isinstance(value, CidrBlock):
            blocks.add(self._block_ids.setdefault(value, len(self._block_ids)))
        elif isinstance(value, tuple | list):
            for item in value:
                self._collect(item, sets, blocks)
        elif is_dataclass(value) and not isinstance(value, type):
            for name in _searched_fields(type(value)):
                self._collect(getattr(value, name), sets, blocks)

    def info(self, endpoint: EndpointId) -> EndpointInfo:
        info = self.ruleset.endpoint(endpoint)
        assert info is not None
        return info

    # --- what tells endpoints apart ---------------------------------------------------------

    def addresses(self, info: EndpointInfo) -> AddressKey:
        return self._addresses.get(info.id, ())

    def signature(self, endpoint: EndpointId) -> Hashable:
        """Everything any rule can ask of the endpoint."""
        info = self.info(endpoint)
        return (
            self.membership.get(endpoint, frozenset()),
            self.addresses(info),
            info.named_ports,
            info.default_action,
        )

    # --- one direction's decision -----------------------------------------------------------

    def local_key(self, direction: Direction, info: EndpointInfo) -> tuple[frozenset[int], Hashable]:
        """What a direction's decision asks of its local endpoint: (its sets, everything else)."""
        sets = self.membership.get(info.id, frozenset()) & self.local_sets[direction]
        blocks = self.local_blocks[direction]
        addresses = tuple((version, found & blocks) for version, found in self.addresses(info))
        ports = info.named_ports if self._named_ports_count(direction, local=True) else ()
        return sets, (addresses, ports, info.default_action)

    def _named_ports_count(self, direction: Direction, *, local: bool) -> bool:
        """Whether the named ports of a direction's local (or remote) endpoint matter: the
        destination's for named ports, the source's for named source ports."""
        destination = (direction is Direction.INGRESS) == local
        return self.named[direction] if destination else self.named_source[direction]

    def selecting(self, direction: Direction, sets: frozenset[int]) -> tuple[PolicyQuestions, ...]:
        """The policies selecting an endpoint with these local sets, in evaluation order."""
        key = (direction, sets)
        found = self._selecting.get(key)
        if found is None:
            found = self._selecting[key] = tuple(p for p in self.policies[direction] if p.subjects in sets)
        return found

    def relevant(self, direction: Direction, sets: frozenset[int]) -> Relevant:
        key = (direction, sets)
        found = self._relevant.get(key)
        if found is None:
            chosen = self.selecting(direction, sets)
            found = Relevant(
                frozenset(s for p in chosen for s in p.remote_sets), _union(p.remote_blocks for p in chosen)
            )
            self._relevant[key] = found
        return found

    def remote_key(self, direction: Direction, relevant: Relevant, info: EndpointInfo) -> Hashable:
        """What the policies behind `relevant` ask of the remote endpoint."""
        addresses = tuple((version, found & relevant.blocks) for version, found in self.addresses(info))
        ports = info.named_ports if self._named_ports_count(direction, local=False) else ()
        return self.membership.get(info.id, frozenset()) & relevant.sets, addresses, ports

    def reduced(self, direction: Direction, sets: frozenset[int]) -> Ruleset:
        """The ruleset of only the policies selecting an endpoint with these local sets."""
        key = (direction, sets)
        found = self._reduced.get(key)
        if found is None:
            tiers = self.ruleset.tiers(direction)
            chosen = self.selecting(direction, sets)
            kept = []
            for t, tier in enumerate(tiers):
                policies = tuple(p.rules for p in chosen if p.tier == t)
                if policies:
                    kept.append(Tier(tier.name, policies, tier.end_action, tier.order))
            ingress = tuple(kept) if direction is Direction.INGRESS else ()
            egress = tuple(kept) if direction is Direction.EGRESS else ()
            found = self._reduced[key] = Ruleset((), ingress, egress, self.ruleset.default_action)
        return found


_PLAIN: tuple[type, ...] = (int, float, str, bool, type(None), Enum)


_SEARCHED: dict[type, tuple[str, ...]] = {}


def _searched_fields(cls: type) -> tuple[str, ...]:
    """The fields of an IR dataclass that may hold endpoint sets or blocks: all but those whose
    declared type is plain (numbers, strings, enums, tuples and dataclasses of those)."""
    found = _SEARCHED.get(cls)
    if found is None:
        try:
            hints = typing.get_type_hints(cls)
        except (NameError, TypeError):
            hints = {}
        found = _SEARCHED[cls] = tuple(f.name for f in fields(cls) if not _plain(hints.get(f.name, object)))
    return found


def _plain(hint: object) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType, tuple):
        return all(arg is Ellipsis or _plain(arg) for arg in typing.get_args(hint))
    if not isinstance(hint, type):
        return False
    if issubclass(hint, _PLAIN):
        return True
    return is_dataclass(hint) and not _searched_fields(hint)


def _union(masks: Iterable[int]) -> int:
    found = 0
    for mask in masks:
        found |= mask
    return found


def _address_keys(endpoints: Sequence[EndpointInfo], blocks: Sequence[CidrBlock]) -> dict[EndpointId, AddressKey]:
    """Every endpoint's addresses with the blocks containing each; IPv4 addresses tested with
    numpy, a block at a time."""
    owners: list[EndpointId] = []
    versions: list[int] = []
    values: list[int] = []
    for endpoint in endpoints:
        for address in endpoint.ips:
            owners.append(endpoint.id)
            versions.append(address.version)
            values.append(int(address))
    bits = [0] * len(values)
    v4 = np.array([i for i, v in enumerate(versions) if v == 4], dtype=np.int64)
    v4_values = np.array([values[i] for i in v4.tolist()], dtype=np.int64)
    chunks: dict[int, npt.NDArray[np.int64]] = {}  # 62 blocks per int64, so the shifts never overflow
    for k, block in enumerate(blocks):
        network = block.network
        excepts = [e for e in block.excepts if e.version == network.version]
        if network.version == 4:
            inside = (v4_values >= int(network.network_address)) & (v4_values <= int(network.broadcast_address))
            for e in excepts:
                inside &= (v4_values < int(e.network_address)) | (v4_values > int(e.broadcast_address))
            chunk = chunks.setdefault(k // 62, np.zeros(len(v4_values), dtype=np.int64))
            chunk |= inside.astype(np.int64) << (k % 62)
            continue
        low, high = int(network.network_address), int(network.broadcast_address)
        for i, version in enumerate(versions):
            value = values[i]
            if version == 6 and low <= value <= high:
                if not any(int(e.network_address) <= value <= int(e.broadcast_address) for e in excepts):
                    bits[i] |= 1 << k
    for c, chunk in chunks.items():
        for i, mask in zip(v4.tolist(), chunk.tolist()):
            bits[i] |= mask << (62 * c)
    found: dict[EndpointId, list[tuple[int, int]]] = {}
    for owner, version, mask in zip(owners, versions, bits):
        found.setdefault(owner, []).append((version, mask))
    return {owner: tuple(sorted(items)) for owner, items in found.items()}
