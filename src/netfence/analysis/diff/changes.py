"""What a diff finds: the flows whose verdict changed, in blocks, and what decided them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from netfence.analysis.verdict import Reason
from netfence.ir.types import PolicyRef, RuleRef, Ruleset
from netfence.model.endpoints import EndpointId
from netfence.model.inventory import Inventory
from netfence.model.policies import Direction
from netfence.model.ports import FlowPort


@dataclass(frozen=True)
class Snapshot:
    """One side of a diff: what was loaded and its ruleset."""

    inventory: Inventory
    ruleset: Ruleset



@dataclass(frozen=True, slots=True)
class Decision:
    """What decided one direction of a flow."""

    direction: Direction
    allowed: bool
    reason: Reason
    rule: RuleRef | None = None
    #: Reason ISOLATED: the policies of the deciding tier that select the endpoint; NOT_ISOLATED:
    #: every policy selecting it (all of their tiers passed); otherwise empty.
    policies: tuple[PolicyRef, ...] = ()
    tier: str | None = None

    @property
    def responsible(self) -> str | None:
        """The rule, or the isolating policies, that decided; None when no policy did."""
        if self.reason is Reason.RULE:
            return str(self.rule)
        if self.reason is Reason.ISOLATED:
            who = ", ".join(str(p) for p in self.policies)
            return f"{who} ({self.direction} isolation, end of tier {self.tier})"
        if not self.allowed:
            return f"{self.direction} default deny of a host endpoint"
        return None

    def __str__(self) -> str:
        verb = "allowed" if self.allowed else "denied"
        if self.reason is Reason.RULE:
            return f"{self.direction} {verb} by {self.rule}"
        if self.reason is Reason.ISOLATED:
            who = ", ".join(str(p) for p in self.policies)
            what = "isolated" if not self.allowed else "end of tier"
            return f"{self.direction} {verb}: {what} by {who} (end of tier {self.tier})"
        if not self.allowed:
            return f"{self.direction} {verb}: a host endpoint no policy allows is denied"
        if self.policies:
            return f"{self.direction} {verb}: every tier selecting it passed"
        return f"{self.direction} {verb}: no policy selects it"


@dataclass(frozen=True, slots=True)
class Cause:
    """The decisions of the directions whose verdict changed, before and after."""

    before: tuple[Decision, ...]
    after: tuple[Decision, ...]

    @property
    def before_rule(self) -> str | None:
        return _responsible(self.before)

    @property
    def after_rule(self) -> str | None:
        return _responsible(self.after)


def _responsible(decisions: tuple[Decision, ...]) -> str | None:
    named = [r for r in (d.responsible for d in decisions) if r is not None]
    return "; ".join(named) if named else None


@dataclass(frozen=True, slots=True)
class FlowChange:
    source: EndpointId
    destination: EndpointId
    port: FlowPort
    before: bool
    after: bool
    cause: Cause


@dataclass(frozen=True)
class ChangeBlock:
    """Every flow from `sources` to `destinations` (self pairs excluded) on every port of `ports`
    went from `not allowed` to `allowed`, for the same cause."""

    sources: tuple[EndpointId, ...]
    destinations: tuple[EndpointId, ...]
    ports: tuple[FlowPort, ...]
    #: The verdict after; before, it was the opposite.
    allowed: bool
    cause: Cause

    @property
    def count(self) -> int:
        pairs = len(self.sources) * len(self.destinations) - len(set(self.sources) & set(self.destinations))
        return pairs * len(self.ports)

    def changes(self) -> Iterator[FlowChange]:
        for source in self.sources:
            for destination in self.destinations:
                if source == destination:
                    continue
                for port in self.ports:
                    yield FlowChange(source, destination, port, not self.allowed, self.allowed, self.cause)


@dataclass(frozen=True)
class Diff:
    ports: tuple[FlowPort, ...]
    #: Endpoints both sides have, sorted: only flows between them are compared.
    compared: tuple[EndpointId, ...]
    #: Only in the new ruleset / only in the old one.
    added: tuple[EndpointId, ...]
    removed: tuple[EndpointId, ...]
    blocks: tuple[ChangeBlock, ...]

    @property
    def count(self) -> int:
        return sum(b.count for b in self.blocks)

    @property
    def newly_allowed(self) -> int:
        return sum(b.count for b in self.blocks if b.allowed)

    @property
    def newly_denied(self) -> int:
        return sum(b.count for b in self.blocks if not b.allowed)

    def changes(self) -> list[FlowChange]:
        """Every changed flow, sorted by source, destination, port number and protocol."""
        flows = [change for block in self.blocks for change in block.changes()]
        flows.sort(key=lambda c: (c.source, c.destination, c.port.sort_key))
        return flows
