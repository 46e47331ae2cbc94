"""The cause of each changed flow: what decided each direction before and after.

Flows whose local endpoints have the same local key, whose remote endpoints answer the selecting
policies' questions alike, and whose ports every rule of those policies treats alike get the
same decision (questions.py). `evaluate` runs once per distinct decision, on the ruleset reduced
to the selecting policies.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import numpy.typing as npt

from netfence.analysis.diff.changes import Cause, Decision
from netfence.analysis.diff.questions import Questions, Relevant
from netfence.analysis.verdict import Flow, Party, Reason, SideVerdict, Verdict, evaluate
from netfence.ir.types import EndpointInfo, PolicyRef, Rule, Ruleset
from netfence.model.endpoints import EndpointId
from netfence.model.policies import Direction
from netfence.model.ports import FlowPort

IntArray = npt.NDArray[np.int64]


class Explainer:
    """Causes of changed entries (port, source class, destination class)."""

    def __init__(
        self,
        sides: Sequence[Questions],
        ports: Sequence[FlowPort],
        first: Sequence[EndpointId],
        second: Sequence[EndpointId | None],
    ) -> None:
        self.sides = sides
        self.ports = ports
        self.first = first
        self.second = second

    def causes(self, p: IntArray, a: IntArray, b: IntArray) -> tuple[list[Cause], IntArray]:
        """The distinct causes and, per entry, the index of its cause."""
        decision_ids: dict[Decision, int] = {}
        columns = []
        for side in self.sides:
            for direction in (Direction.EGRESS, Direction.INGRESS):
                found, inverse = self._decisions(side, direction, p, a, b)
                ids = np.array([decision_ids.setdefault(d, len(decision_ids)) for d in found], dtype=np.int64)
                columns.append(ids[inverse])
        decisions = list(decision_ids)  # in order of their ids
        # One number per combination of the four decisions, then its distinct values.
        before, _, before_of = unique_codes(columns[0] * len(decisions) + columns[1])
        after, _, after_of = unique_codes(columns[2] * len(decisions) + columns[3])
        pairs, _, inverse = unique_codes(before_of * len(after) + after_of)
        causes = []
        for code in pairs.tolist():
            old, new = divmod(code, len(after))
            old_egress, old_ingress = divmod(int(before[old]), len(decisions))
            new_egress, new_ingress = divmod(int(after[new]), len(decisions))
            causes.append(
                _cause((decisions[old_egress], decisions[old_ingress]), (decisions[new_egress], decisions[new_ingress]))
            )
        return causes, inverse

    def _decisions(
        self, side: Questions, direction: Direction, p: IntArray, a: IntArray, b: IntArray
    ) -> tuple[list[Decision], IntArray]:
        """The distinct decisions of one side and direction, and the index of each entry's."""
        local, remote = (a, b) if direction is Direction.EGRESS else (b, a)
        destination = b
        infos = [side.info(e) for e in self.first]
        count = len(infos)

        local_keys: dict[Hashable, int] = {}
        local_sets: list[frozenset[int]] = []
        local_of = np.empty(count, dtype=np.int64)
        relevant_ids: dict[Relevant, int] = {}
        relevant_of = np.empty(count, dtype=np.int64)  # per local key
        for k, info in enumerate(infos):
            key = side.local_key(direction, info)
            local_of[k] = local_keys.setdefault(key, len(local_keys))
            if local_of[k] == len(local_sets):
                local_sets.append(key[0])
                relevant = side.relevant(direction, key[0])
                relevant_of[local_of[k]] = relevant_ids.setdefault(relevant, len(relevant_ids))
        relevants = list(relevant_ids)
        local_key = local_of[local]

        # What the selecting policies ask of the remote end.
        pairs, _, pair_of = unique_codes(relevant_of[local_key] * count + remote)
        remote_keys: dict[Hashable, int] = {}
        remote_ids = np.empty(len(pairs), dtype=np.int64)
        for i, code in enumerate(pairs.tolist()):
            r, k = divmod(code, count)
            asked = side.remote_key(direction, relevants[r], infos[k])
            remote_ids[i] = remote_keys.setdefault(asked, len(remote_keys))
        remote_key = remote_ids[pair_of]

        # How the selecting policies' rules treat the port (named ports: on the destination).
        named: dict[tuple[tuple[str, object, int], ...], int] = {}
        named_of = np.array([named.setdefault(i.named_ports, len(named)) for i in infos], dtype=np.int64)
        holder = {v: infos[k] for k, v in reversed(list(enumerate(named_of.tolist())))}
        codes = (local_key * len(named) + named_of[destination]) * len(self.ports) + p
        triples, _, triple_of = unique_codes(codes)
        port_keys: dict[tuple[object, ...], int] = {}
        port_ids = np.empty(len(triples), dtype=np.int64)
        for i, code in enumerate(triples.tolist()):
            rest, q = divmod(code, len(self.ports))
            lk, n = divmod(rest, len(named))
            rules = [rule for policy in side.selecting(direction, local_sets[lk]) for rule in policy.rules.rules]
            hits: tuple[object, ...] = tuple(_port_hit(rule, self.ports[q], holder[n]) for rule in rules)
            if any(rule.names_source_port for rule in rules):
                hits = (*hits, q)  # the source's named ports decide, per port (its protocol)
            port_ids[i] = port_keys.setdefault(hits, len(port_keys))
        port_key = port_ids[triple_of]

        codes = (local_key * len(remote_keys) + remote_key) * len(port_keys) + port_key
        _, where, inverse = unique_codes(codes)
        found = []
        for entry in where.tolist():
            lk = int(local_key[entry])
            reduced = side.reduced(direction, local_sets[lk])
            verdict = self._verdict(side, reduced, int(p[entry]), int(a[entry]), int(b[entry]))
            found.append(_decision(reduced, verdict.egress if direction is Direction.EGRESS else verdict.ingress))
        return found, inverse

    def _verdict(self, side: Questions, ruleset: Ruleset, p: int, a: int, b: int) -> Verdict:
        destination = self.first[b] if a != b else self.second[a]
        assert destination is not None
        flow = Flow(Party.of(side.info(self.first[a])), Party.of(side.info(destination)), self.ports[p])
        return evaluate(ruleset, flow)


def unique_codes(codes: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """The distinct values of non-negative `codes` (sorted), an index of each in `codes`, and
    each code's position among them: np.unique's, with a table instead of a sort when the
    values are small enough (the changed entries can be millions)."""
    if codes.size and int(codes.max()) < max(4 * codes.size, 1 << 16):
        present = np.zeros(int(codes.max()) + 1, dtype=bool)
        present[codes] = True
        values = np.flatnonzero(present)
        position = np.zeros(len(present), dtype=np.int64)
        position[values] = np.arange(len(values))
        where = np.zeros(len(present), dtype=np.int64)
        where[codes] = np.arange(len(codes))
        return values.astype(np.int64), where[values], position[codes]
    values, where, inverse = np.unique(codes, return_index=True, return_inverse=True)
    return values.astype(np.int64), where.astype(np.int64), np.asarray(inverse, dtype=np.int64).reshape(-1)


def _port_hit(rule: Rule, port: FlowPort, destination: EndpointInfo) -> bool:
    """Whether the rule's port criteria admit the port; source ports too unless they are named
    (those resolve on the source, which the local and remote keys tell apart)."""
    if not rule.matches_port(port, destination):
        return False
    if not rule.names_source_port and not rule.matches_source_port(port.protocol, None):
        return False
    return rule.ports is None or any(entry.matches(port, destination) for entry in rule.ports)


def change_cause(old: Ruleset, new: Ruleset, before: Verdict, after: Verdict) -> Cause:
    """The cause of one flow's change, from its verdicts under the old and the new ruleset."""
    return _cause(
        (_decision(old, before.egress), _decision(old, before.ingress)),
        (_decision(new, after.egress), _decision(new, after.ingress)),
    )


def _cause(before: tuple[Decision, Decision], after: tuple[Decision, Decision]) -> Cause:
    moved = [k for k in range(2) if before[k].allowed != after[k].allowed]
    return Cause(tuple(before[k] for k in moved), tuple(after[k] for k in moved))


def _decision(ruleset: Ruleset, side: SideVerdict) -> Decision:
    """What decided, and no more: flows decided alike get equal decisions (and one line)."""
    policies: tuple[PolicyRef, ...] = side.policies if side.reason is Reason.NOT_ISOLATED else ()
    if side.reason is Reason.ISOLATED and side.endpoint is not None:
        me = side.endpoint
        policies = tuple(
            policy.ref
            for tier in ruleset.tiers(side.direction)
            if tier.name == side.tier
            for policy in tier.policies
            if me in policy.subjects
        )
    return Decision(side.direction, side.allowed, side.reason, side.rule, policies, side.tier)
