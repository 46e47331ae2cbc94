"""What every check reads: the inventory (what was declared, with locations), its ruleset (what
is enforced, selectors resolved) and the way between the two."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

from netfence.errors import Location
from netfence.ir.types import EndpointInfo, PolicyRef, PolicyRules, Rule, Ruleset, Tier
from netfence.model.admin import AdminPolicy
from netfence.model.calico import CalicoPolicy
from netfence.model.endpoints import EndpointId, IPAddress, Pod
from netfence.model.inventory import Inventory
from netfence.model.labels import Labels
from netfence.model.policies import Direction, NetworkPolicy

AnyPolicy = NetworkPolicy | CalicoPolicy | AdminPolicy
T = TypeVar("T")


class Origins(Protocol):
    """What the command line knows about an object's text beyond the model."""

    def api_version(self, where: Location) -> str | None:
        """The apiVersion of the object that starts at `where`, if known."""


@dataclass(frozen=True)
class PolicyEntry:
    ref: PolicyRef
    policy: AnyPolicy

    @property
    def location(self) -> Location | None:
        return self.policy.location

    @property
    def label(self) -> str:
        return str(self.ref)


class Context:
    def __init__(self, inventory: Inventory, ruleset: Ruleset, origins: Origins | None = None) -> None:
        self.inventory = inventory
        self.ruleset = ruleset
        self.origins = origins
        self.pods = tuple(p for p in inventory.pods if not p.host_network)
        self.has_pods = bool(self.pods)
        self._pods = {p.id: p for p in inventory.pods}
        entries: list[PolicyEntry] = [
            PolicyEntry(PolicyRef(p.kind, p.namespace, p.name), p) for p in inventory.policies
        ]
        entries += [PolicyEntry(PolicyRef(p.kind, p.namespace, p.name), p) for p in inventory.calico_policies]
        entries += [PolicyEntry(PolicyRef(p.kind, None, p.name), p) for p in inventory.admin_policies]
        self.policies = tuple(entries)
        self._rules: dict[tuple[PolicyRef, Direction], PolicyRules] = {}
        for direction in Direction:
            for tier in ruleset.tiers(direction):
                for policy in tier.policies:
                    self._rules[(policy.ref, direction)] = policy
        self.namespaces = tuple(sorted({ns.name for ns in inventory.namespaces} | {p.namespace for p in inventory.pods}))
        self._memo: dict[str, object] = {}
        self._reduced: dict[tuple[Direction, tuple[int, ...]], Ruleset] = {}

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """What `compute` returns, computed once per context (for analyses two checks share)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]  # type: ignore[return-value]

    def rules(self, ref: PolicyRef, direction: Direction) -> PolicyRules | None:
        """The policy's IR rules for a direction; None when it does not apply in that direction."""
        return self._rules.get((ref, direction))

    def ir_rules(self, ref: PolicyRef, direction: Direction, index: int) -> list[Rule]:
        """The IR rules made of the policy's rule `index` (a Calico rule on a Service may make
        several, or none when the Service has no endpoints)."""
        policy = self._rules.get((ref, direction))
        return [] if policy is None else [r for r in policy.rules if r.ref.index == index]

    def subjects(self, ref: PolicyRef) -> frozenset[EndpointId]:
        """Every endpoint the policy applies to, in either direction."""
        found: frozenset[EndpointId] = frozenset()
        for direction in Direction:
            policy = self._rules.get((ref, direction))
            if policy is not None:
                found |= policy.subjects
        return found

    def applies(self, ref: PolicyRef) -> bool:
        """Whether the ruleset holds the policy in some direction."""
        return any((ref, d) in self._rules for d in Direction)

    def reduced(self, direction: Direction, endpoint: EndpointId) -> Ruleset:
        """The ruleset of only the policies selecting `endpoint` in `direction` (the other
        direction empty): `evaluate` gives that direction's verdict at the endpoint exactly as
        on the whole ruleset, because policies that do not select an endpoint are skipped."""
        chosen = self._selecting(direction).get(endpoint, ())
        key = (direction, tuple(id(p) for _, p in chosen))
        found = self._reduced.get(key)
        if found is None:
            tiers = self.ruleset.tiers(direction)
            kept = []
            for t, tier in enumerate(tiers):
                policies = tuple(p for u, p in chosen if u == t)
                if policies:
                    kept.append(Tier(tier.name, policies, tier.end_action, tier.order))
            both = (tuple(kept), ()) if direction is Direction.INGRESS else ((), tuple(kept))
            found = self._reduced[key] = Ruleset((), both[0], both[1], self.ruleset.default_action)
        return found

    def _selecting(self, direction: Direction) -> dict[EndpointId, list[tuple[int, PolicyRules]]]:
        def build() -> dict[EndpointId, list[tuple[int, PolicyRules]]]:
            found: dict[EndpointId, list[tuple[int, PolicyRules]]] = {}
            for t, tier in enumerate(self.ruleset.tiers(direction)):
                for policy in tier.policies:
                    for subject in policy.subjects:
                        found.setdefault(subject, []).append((t, policy))
            return found

        return self.memo(f"selecting-{direction}", build)

    def endpoint(self, endpoint: EndpointId) -> EndpointInfo | None:
        return self.ruleset.endpoint(endpoint)

    def ips(self, endpoint: EndpointId) -> tuple[IPAddress, ...]:
        info = self.ruleset.endpoint(endpoint)
        return info.ips if info is not None else ()

    def pod(self, endpoint: EndpointId) -> Pod | None:
        return self._pods.get(endpoint)

    def namespace_labels(self, name: str) -> Labels:
        return self.inventory.namespace(name).labels

    def entries(self, *kinds: type) -> Iterator[PolicyEntry]:
        for entry in self.policies:
            if not kinds or isinstance(entry.policy, kinds):
                yield entry


def direction_field(direction: Direction) -> str:
    """`ingress` / `egress`: the spec field of a direction's rules."""
    return str(direction)


def peer_field(direction: Direction) -> str:
    """`from` / `to`: where a NetworkPolicy or AdminNetworkPolicy rule lists its peers."""
    return "from" if direction is Direction.INGRESS else "to"


def sample(items: list[str] | tuple[str, ...], shown: int = 3) -> str:
    """A few items of a list, and how many more there are."""
    head = ", ".join(items[:shown])
    return head if len(items) <= shown else f"{head} and {len(items) - shown} more"
