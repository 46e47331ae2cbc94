"""The per-endpoint matrix engine netfence used before equivalence classes: the benchmark baseline.

Same semantics as verdict.evaluate (tiers in order, first match, end action, default); for each
local endpoint in turn, each rule is applied to a boolean vector over all remote endpoints. Kept
here, outside the package, only so bench/ladder.py can measure it beside the class engine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from netfence.ir.types import Action, EndpointInfo, PeerMatch, PolicyRules, Rule, Ruleset
from netfence.model.endpoints import IPAddress
from netfence.model.policies import Direction
from netfence.model.ports import FlowPort, Protocol

BoolArray = npt.NDArray[np.bool_]


def compute_matrix_per_endpoint(
    ruleset: Ruleset, ports: Sequence[FlowPort], endpoints: Sequence[EndpointInfo] | None = None
) -> BoolArray:
    """allowed[port, source, destination]: the verdict of every (source, destination, port) among `endpoints` (default: all)."""
    chosen = tuple(ruleset.endpoints if endpoints is None else endpoints)
    engine = _Engine(ruleset, chosen)
    n = len(chosen)
    allowed = np.zeros((len(ports), n, n), dtype=bool)
    for p, port in enumerate(ports):
        egress = engine.direction(Direction.EGRESS, port)  # [source, destination]
        ingress = engine.direction(Direction.INGRESS, port)  # [destination, source]
        allowed[p] = egress & ingress.T
        np.fill_diagonal(allowed[p], True)  # a pod reaching itself is always allowed
    return allowed


class _Engine:
    def __init__(self, ruleset: Ruleset, endpoints: tuple[EndpointInfo, ...]) -> None:
        self.ruleset = ruleset
        self.endpoints = endpoints
        self.index = {e.id: i for i, e in enumerate(endpoints)}
        self.n = len(endpoints)
        self._peer_cache: dict[tuple[int, int | None], BoolArray] = {}
        self._family_cache: dict[int, BoolArray] = {}
        # Endpoints grouped by their named-port map: port criteria that resolve names against
        # the destination are evaluated once per map.
        maps: dict[tuple[tuple[str, Protocol, int], ...], int] = {}
        self.port_map_of = np.array([maps.setdefault(e.named_ports, len(maps)) for e in endpoints], dtype=np.int64)
        first: dict[int, EndpointInfo] = {}
        for e in endpoints:
            first.setdefault(maps[e.named_ports], e)
        self.port_maps = [first[i] for i in range(len(maps))]
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

    def peer_vector(self, peer: PeerMatch, ip_version: int | None) -> BoolArray:
        key = (id(peer), ip_version)
        cached = self._peer_cache.get(key)
        if cached is None:
            if peer.is_plain and ip_version is None:
                cached = np.zeros(self.n, dtype=bool)
                for endpoint in peer.endpoints:
                    i = self.index.get(endpoint)
                    if i is not None:
                        cached[i] = True
                if peer.blocks:
                    for i, e in enumerate(self.endpoints):
                        if not cached[i] and any(b.contains(a) for b in peer.blocks for a in e.ips):
                            cached[i] = True
            else:
                cached = np.array(
                    [peer.matches(e.id, self._addresses(e, ip_version)) for e in self.endpoints], dtype=bool
                )
            self._peer_cache[key] = cached
        return cached

    def _addresses(self, endpoint: EndpointInfo, ip_version: int | None) -> tuple[IPAddress, ...]:
        if ip_version is None:
            return endpoint.ips
        return tuple(a for a in endpoint.ips if a.version == ip_version)

    def family_vector(self, ip_version: int) -> BoolArray:
        cached = self._family_cache.get(ip_version)
        if cached is None:
            cached = np.array([bool(self._addresses(e, ip_version)) for e in self.endpoints], dtype=bool)
            self._family_cache[ip_version] = cached
        return cached

    def _port_ok(self, rule: Rule, port: FlowPort, destination: EndpointInfo | None) -> bool:
        if not rule.matches_port(port, destination):
            return False
        return rule.ports is None or any(entry.matches(port, destination) for entry in rule.ports)

    def rule_vector(self, rule: Rule, direction: Direction, local: int, port: FlowPort) -> BoolArray | bool:
        """Remote endpoints this rule matches for `local`'s side of the flow."""
        me = self.endpoints[local]
        if direction is Direction.INGRESS:  # the local endpoint is the destination
            port_ok: BoolArray | bool = self._port_ok(rule, port, me)
        elif not _depends_on_destination(rule):
            port_ok = self._port_ok(rule, port, None)
        else:  # egress: the remote endpoints are the destinations; evaluate once per named-port map
            per_map = np.array([self._port_ok(rule, port, e) for e in self.port_maps], dtype=bool)
            port_ok = per_map[self.port_map_of]
        if rule.constrains_source_port:  # the source is the local endpoint on egress, the remote one on ingress
            if direction is Direction.EGRESS:
                port_ok = port_ok & rule.matches_source_port(port.protocol, me)
            else:
                port_ok = port_ok & np.array([rule.matches_source_port(port.protocol, e) for e in self.endpoints], dtype=bool)
        if port_ok is False or (not isinstance(port_ok, bool) and not port_ok.any()):
            return False
        if rule.ip_version is not None:
            if not self._addresses(me, rule.ip_version):
                return False
            port_ok = port_ok & self.family_vector(rule.ip_version)
        if rule.local is not None and not rule.local.matches(me.id, self._addresses(me, rule.ip_version)):
            return False
        if rule.peers is None:
            return port_ok
        peers = np.zeros(self.n, dtype=bool)
        for peer in rule.peers:
            peers |= self.peer_vector(peer, rule.ip_version)
        return peers & port_ok

    def direction(self, direction: Direction, port: FlowPort) -> BoolArray:
        """result[local, remote]: the verdict of `direction` judged at `local`."""
        tiers = self.ruleset.tiers(direction)
        out = np.empty((self.n, self.n), dtype=bool)
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
                        if rule.action is Action.LOG:
                            continue
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
            if (self.endpoints[local].default_action or self.ruleset.default_action) is Action.ALLOW:
                result |= ~decided
            out[local] = result
        return out


def _depends_on_destination(rule: Rule) -> bool:
    """Whether the rule's port criteria resolve names against the destination endpoint."""
    entries = (*(rule.ports or ()), *rule.not_ports)
    return any(entry.name is not None for entry in entries)
