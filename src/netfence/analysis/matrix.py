"""compute_matrix(ruleset, ports) -> Matrix: every endpoint pair and port at once, with numpy.

Same semantics as verdict.evaluate (tiers in order, first match, end action, default), but each
rule is applied to a boolean vector over all remote endpoints at once. A property test holds the
two to identical results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from netfence.ir.types import Action, EndpointInfo, PeerMatch, PolicyRules, Rule, Ruleset
from netfence.model.policies import Direction
from netfence.model.ports import FlowPort, Protocol

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Matrix:
    endpoints: tuple[EndpointInfo, ...]
    ports: tuple[FlowPort, ...]
    #: allowed[port, source, destination]
    allowed: BoolArray

    def count_allowed(self, port_index: int) -> int:
        return int(self.allowed[port_index].sum())


def compute_matrix(
    ruleset: Ruleset, ports: Sequence[FlowPort], endpoints: Sequence[EndpointInfo] | None = None
) -> Matrix:
    """The verdict of every (source, destination, port) among `endpoints` (default: all)."""
    chosen = tuple(ruleset.endpoints if endpoints is None else endpoints)
    engine = _Engine(ruleset, chosen)
    n = len(chosen)
    allowed = np.zeros((len(ports), n, n), dtype=bool)
    for p, port in enumerate(ports):
        egress = engine.direction(Direction.EGRESS, port)  # [source, destination]
        ingress = engine.direction(Direction.INGRESS, port)  # [destination, source]
        allowed[p] = egress & ingress.T
        np.fill_diagonal(allowed[p], True)  # a pod reaching itself is always allowed
    return Matrix(chosen, tuple(ports), allowed)


class _Engine:
    def __init__(self, ruleset: Ruleset, endpoints: tuple[EndpointInfo, ...]) -> None:
        self.ruleset = ruleset
        self.endpoints = endpoints
        self.index = {e.id: i for i, e in enumerate(endpoints)}
        self.n = len(endpoints)
        self._peer_cache: dict[int, BoolArray] = {}
        self._named_cache: dict[tuple[str, Protocol], npt.NDArray[np.int32]] = {}
        # Per direction and endpoint: for each tier, the policies selecting it.
        self.selecting: dict[Direction, list[list[list[PolicyRules]]]] = {}
        for direction in Direction:
            tiers = ruleset.tiers(direction)
            table: list[list[list[PolicyRules]]] = [[[] for _ in tiers] for _ in endpoints]
            for t, tier in enumerate(tiers):
                for policy in tier.policies:
                    for subject in policy.subjects:
                        i = self.index.get(subject)
                        if i is not None:
                            table[i][t].append(policy)
            self.selecting[direction] = table

    def peer_vector(self, peer: PeerMatch) -> BoolArray:
        cached = self._peer_cache.get(id(peer))
        if cached is None:
            cached = np.zeros(self.n, dtype=bool)
            for endpoint in peer.endpoints:
                i = self.index.get(endpoint)
                if i is not None:
                    cached[i] = True
            if peer.blocks:
                for i, e in enumerate(self.endpoints):
                    if not cached[i] and any(b.contains(a) for b in peer.blocks for a in e.ips):
                        cached[i] = True
            self._peer_cache[id(peer)] = cached
        return cached

    def named_ports(self, name: str, protocol: Protocol) -> npt.NDArray[np.int32]:
        key = (name, protocol)
        cached = self._named_cache.get(key)
        if cached is None:
            cached = np.array([e.resolve_port(name, protocol) or 0 for e in self.endpoints], dtype=np.int32)
            self._named_cache[key] = cached
        return cached

    def rule_vector(self, rule: Rule, direction: Direction, local: int, port: FlowPort) -> BoolArray | bool:
        """Remote endpoints this rule matches for `local`'s side of the flow."""
        if rule.ports is None:
            port_ok: BoolArray | bool = True
        else:
            port_ok = False
            for entry in rule.ports:
                if entry.protocol != port.protocol or port.port is None:
                    continue
                if entry.name is None:
                    hit = entry.start is None or entry.start <= port.port <= (entry.end or entry.start)
                    port_ok = port_ok | hit
                elif direction is Direction.INGRESS:  # the local endpoint is the destination
                    port_ok = port_ok | (self.endpoints[local].resolve_port(entry.name, entry.protocol) == port.port)
                else:  # egress: the remote endpoints are the destinations
                    port_ok = port_ok | (self.named_ports(entry.name, entry.protocol) == port.port)
        if port_ok is False:
            return False
        if rule.peers is None:
            return port_ok
        peers = np.zeros(self.n, dtype=bool)
        for peer in rule.peers:
            peers |= self.peer_vector(peer)
        return peers & port_ok

    def direction(self, direction: Direction, port: FlowPort) -> BoolArray:
        """result[local, remote]: the verdict of `direction` judged at `local`."""
        tiers = self.ruleset.tiers(direction)
        out = np.empty((self.n, self.n), dtype=bool)
        default_allow = self.ruleset.default_action is Action.ALLOW
        for local in range(self.n):
            decided = np.zeros(self.n, dtype=bool)
            result = np.zeros(self.n, dtype=bool)
            for t, tier in enumerate(tiers):
                policies = self.selecting[direction][local][t]
                if not policies:
                    continue
                passed = np.zeros(self.n, dtype=bool)
                for policy in policies:
                    for rule in policy.rules:
                        hit = self.rule_vector(rule, direction, local, port)
                        if hit is False:
                            continue
                        fresh = np.logical_and(hit, ~(decided | passed))
                        if rule.action is Action.ALLOW:
                            result |= fresh
                            decided |= fresh
                        elif rule.action is Action.DENY:
                            decided |= fresh
                        else:
                            passed |= fresh
                if tier.end_action is not None:
                    rest = ~(decided | passed)
                    if tier.end_action is Action.ALLOW:
                        result |= rest
                    decided |= rest
            if default_allow:
                result |= ~decided
            out[local] = result
        return out
