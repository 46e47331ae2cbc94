"""Flow logs in the node table: NFLOG (`log group N`) before a verdict, and audited policies.

compile_node(..., log=LogOptions(...)) turns logging on; without it the table is what it always
was. With it:

- a deny (a Deny rule, or the drop at the end of a tier) goes to a log chain instead of
  dropping inline: `... counter goto log_d_<id>`, and `log_d_<id>` logs the packet to the NFLOG
  group and drops it. With `allowed`, Allow rules, tier ends that allow and the end of the last
  tier (the default: allowed) do the same through `log_a_<id>` chains, which log only `ct state
  new` packets (the class chains see nothing else: established and related packets are accepted
  in the base chains before them).
- one log chain per deciding rule or tier end, shared by every class chain that reaches it; its
  log rule carries the rate limit (`limit rate R/second burst B packets`), so a flood is logged
  at R packets per second per deciding rule and node. The limit only skips the log statement:
  the verdict is the chain's next rule, so a packet over the limit is still dropped (or
  allowed), and still counted by the class chain's counter.
- the NFLOG prefix is generated, never input text: `netfence:<V><d>:<id>`, V the verdict (D
  denied, A allowed, U audit: an audited policy would deny, the packet went on), d the direction
  (i ingress, e egress), id ten hex digits of sha1 over the rule reference (or the tier end).
  22 characters, well inside NFLOG's 64-byte prefix. `log_catalog(ruleset)` maps ids back to
  rule references and tiers; the same ids come out of any ruleset holding the rule, so a reader
  built from the same input translates what the kernel logged. The log chains' rule comments
  name the rule too, for a reader that has only the kernel's table.

Audit (LogOptions.audit, see ir/audit.py): the table enforces the ruleset as if the audited
policies were absent and logs, with verdict U, the packets they would deny. Where an audited
policy selects a class in a tier, the tier chain jumps, at the audited policy's place, to an audit
chain (`<tier chain>_audit`) holding the audited policies' rules in order: a Deny rule logs
(U) and returns, an Allow or Pass rule returns silently (the audited policy decided: nothing more
to report), and rules of enforced policies between two audited ones return too (they decide in
both worlds alike). When only audited policies select the class in the tier, the audit chain
ends by logging the tier's end-of-tier drop (U), and the tier chain goes on as if the tier had
not selected the class. The audit chain never drops or accepts, so the enforced walk continues
after it exactly as without the audited policy.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from netfence.dataplane.nft.objects import Chain, Rule
from netfence.ir.types import Action, PolicyRef, PolicyRules, RuleRef, Ruleset, Tier
from netfence.ir.types import Rule as IRRule
from netfence.model.policies import Direction

#: The NFLOG group netfence logs to unless told otherwise.
DEFAULT_GROUP = 5
#: Log messages per second and burst, per deciding rule and node, unless told otherwise.
DEFAULT_RATE = 20
DEFAULT_BURST = 40
ID_DIGITS = 10
_PREFIX = re.compile(r"netfence:([DAU])([ie]):([0-9a-f]{10})")
_DIRECTIONS = {Direction.INGRESS: "i", Direction.EGRESS: "e"}


class LogVerdict(StrEnum):
    """What the kernel did with a logged packet (the letter in the prefix)."""

    DENIED = "D"
    ALLOWED = "A"
    #: An audited policy would deny the packet; it was not dropped.
    AUDIT = "U"

    @property
    def word(self) -> str:
        return {"D": "denied", "A": "allowed", "U": "audit-denied"}[self.value]


class Decider(StrEnum):
    """What decided a logged packet."""

    RULE = "rule"
    #: Policies of the tier select the endpoint and none of their rules matched.
    TIER_END = "end-of-tier"
    #: No tier decided: the ruleset's default (pods: allowed).
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class LogOptions:
    """What the compiled table logs, and to which NFLOG group."""

    group: int = DEFAULT_GROUP
    #: Log packets a rule or a tier end drops.
    denied: bool = True
    #: Log new connections a rule, a tier end or the default allows.
    allowed: bool = False
    #: Log messages per second per deciding rule and node; None: no limit.
    rate: int | None = DEFAULT_RATE
    burst: int = DEFAULT_BURST
    #: Policies in audit mode: enforced as if absent, their denials logged (verdict U).
    audit: frozenset[PolicyRef] = frozenset()

    def __post_init__(self) -> None:
        if not 0 <= self.group <= 65535:
            raise ValueError(f"NFLOG group {self.group}: expected 0-65535")
        if self.rate is not None and self.rate <= 0:
            raise ValueError(f"log rate {self.rate}: expected a positive number of messages per second")
        if self.burst <= 0:
            raise ValueError(f"log burst {self.burst}: expected a positive number of packets")


@dataclass(frozen=True, slots=True)
class LogEntry:
    """What one log id stands for."""

    id: str
    direction: Direction
    decider: Decider
    #: The tier the decision was taken in (None for the default).
    tier: str | None = None
    rule: RuleRef | None = None

    @property
    def text(self) -> str:
        if self.rule is not None:
            return str(self.rule)
        if self.decider is Decider.TIER_END:
            return f"end of tier {self.tier}"
        return "no tier decided"


def rule_id(ref: RuleRef) -> str:
    return _digest(f"rule|{ref}")


def tier_end_id(direction: Direction, tier: str) -> str:
    return _digest(f"end|{direction}|{tier}")


def default_id(direction: Direction) -> str:
    return _digest(f"default|{direction}")


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:ID_DIGITS]  # noqa: S324 - an id, not security


def log_prefix(verdict: LogVerdict, direction: Direction, log_id: str) -> str:
    return f"netfence:{verdict.value}{_DIRECTIONS[direction]}:{log_id}"


def parse_prefix(text: str) -> tuple[LogVerdict, Direction, str] | None:
    """(verdict, direction, id) of a netfence NFLOG prefix; None for any other prefix."""
    found = _PREFIX.fullmatch(text)
    if found is None:
        return None
    direction = Direction.INGRESS if found.group(2) == "i" else Direction.EGRESS
    return LogVerdict(found.group(1)), direction, found.group(3)


def log_catalog(ruleset: Ruleset) -> dict[str, LogEntry]:
    """Every log id the ruleset's tables can carry -> what it stands for. Raises ValueError on
    an id collision (ten hex digits: about one in 10^12 for a pair)."""
    catalog: dict[str, LogEntry] = {}

    def add(entry: LogEntry) -> None:
        known = catalog.setdefault(entry.id, entry)
        if known != entry:
            raise ValueError(f"log id {entry.id} stands for both {known.text} and {entry.text}")

    for direction in (Direction.INGRESS, Direction.EGRESS):
        for tier in ruleset.tiers(direction):
            for policy in tier.policies:
                for rule in policy.rules:
                    add(LogEntry(rule_id(rule.ref), direction, Decider.RULE, tier.name, rule.ref))
            add(LogEntry(tier_end_id(direction, tier.name), direction, Decider.TIER_END, tier.name))
        add(LogEntry(default_id(direction), direction, Decider.DEFAULT))
    return catalog


#: compile_rule(ir_rule, verdict statement) -> the nft rules matching the IR rule, ending in it.
CompileRule = Callable[[IRRule, str], list[Rule]]


@dataclass
class LoggedChains:
    """Builds a class's tier chains with logging and audit (the counterpart of the compiler's
    plain tier walk), and the log chains they share."""

    options: LogOptions
    #: Every chain built so far, log chains included (the compiler's dict).
    chains: MutableMapping[str, Chain] = field(default_factory=dict)

    def class_chains(
        self,
        direction: Direction,
        base: str,
        tiers: Sequence[Tier],
        selecting: Sequence[Sequence[PolicyRules]],
        compile_rule: CompileRule,
    ) -> None:
        used = [i for i, policies in enumerate(selecting) if policies]
        allow = "accept" if direction is Direction.INGRESS else "return"
        for position, t in enumerate(used):
            tier = tiers[t]
            later = used[position + 1] if position + 1 < len(used) else None
            onward = f"goto {base}_t{later}" if later is not None else allow
            policies = selecting[t]
            audited = [i for i, p in enumerate(policies) if p.ref in self.options.audit]
            enforced = [p for p in policies if p.ref not in self.options.audit]
            name = f"{base}_t{t}"
            rules: list[Rule] = []
            for i, policy in enumerate(policies):
                if audited and i == audited[0]:
                    audit_chain = f"{name}_audit"
                    self._audit_chain(
                        audit_chain, direction, tier, policies[audited[0] : audited[-1] + 1], not enforced, compile_rule
                    )
                    rules.append(Rule(f"jump {audit_chain}"))
                if policy.ref in self.options.audit:
                    continue
                for ir_rule in policy.rules:
                    rules.extend(compile_rule(ir_rule, self._verdict(direction, ir_rule, allow, onward)))
            end = tier.end_action if enforced else None  # audited alone: the tier does not select the class
            if end is Action.DENY:
                rules.append(Rule(f"counter {self._deny(direction, tier_end_id(direction, tier.name), f'{tier.name}: end of tier')}", f"{tier.name}: isolated, no rule allowed"))
            elif end is Action.ALLOW:
                rules.append(Rule(f"counter {self._allow(direction, tier_end_id(direction, tier.name), allow, f'{tier.name}: end of tier')}", f"{tier.name}: end of tier"))
            elif later is not None:
                rules.append(Rule(onward))
            elif self.options.allowed:
                rules.append(Rule(self._allow(direction, default_id(direction), allow, "no tier decided")))
            self.chains[name] = Chain(name, tuple(rules))

    def _verdict(self, direction: Direction, rule: IRRule, allow: str, onward: str) -> str:
        if rule.action is Action.DENY:
            return self._deny(direction, rule_id(rule.ref), str(rule.ref))
        if rule.action is Action.ALLOW:
            return self._allow(direction, rule_id(rule.ref), allow, str(rule.ref))
        if rule.action is Action.PASS:
            return onward
        return f'log prefix "netfence {"in" if direction is Direction.INGRESS else "eg"} "'  # Calico's Log

    def _deny(self, direction: Direction, log_id: str, note: str) -> str:
        if not self.options.denied:
            return "drop"
        return f"goto {self._log_chain(LogVerdict.DENIED, direction, log_id, 'drop', note)}"

    def _allow(self, direction: Direction, log_id: str, allow: str, note: str) -> str:
        if not self.options.allowed:
            return allow
        return f"goto {self._log_chain(LogVerdict.ALLOWED, direction, log_id, allow, note)}"

    def _audit_chain(
        self,
        name: str,
        direction: Direction,
        tier: Tier,
        policies: Sequence[PolicyRules],
        log_tier_end: bool,
        compile_rule: CompileRule,
    ) -> None:
        rules: list[Rule] = []
        for policy in policies:
            audited = policy.ref in self.options.audit
            for ir_rule in policy.rules:
                if ir_rule.action is Action.LOG:
                    continue  # records, never decides: nothing to report
                if audited and ir_rule.action is Action.DENY:
                    target = self._log_chain(LogVerdict.AUDIT, direction, rule_id(ir_rule.ref), "return", str(ir_rule.ref))
                    rules.extend(compile_rule(ir_rule, f"goto {target}"))
                elif audited:
                    rules.extend(compile_rule(ir_rule, "return"))
                else:
                    # An enforced rule between audited ones: it decides in both worlds alike (not
                    # counted here: the tier chain's copy counts it).
                    rules.extend(_uncounted(r) for r in compile_rule(ir_rule, "return"))
        if log_tier_end and tier.end_action is Action.DENY:
            end_id = tier_end_id(direction, tier.name)
            target = self._log_chain(LogVerdict.AUDIT, direction, end_id, "return", f"{tier.name}: end of tier")
            rules.append(Rule(f"goto {target}", f"{tier.name}: audit, isolated, no rule allowed"))
        self.chains[name] = Chain(name, tuple(rules))

    def _log_chain(self, verdict: LogVerdict, direction: Direction, log_id: str, then: str, note: str) -> str:
        """The chain that logs with this verdict and id, then ends in `then` (created once)."""
        name = f"log_{verdict.value.lower()}_{log_id}"
        if name not in self.chains:
            options = self.options
            limit = f"limit rate {options.rate}/second burst {options.burst} packets " if options.rate is not None else ""
            new = "ct state new " if verdict is LogVerdict.ALLOWED else ""
            prefix = log_prefix(verdict, direction, log_id)
            statement = f'{new}{limit}log group {options.group} prefix "{prefix}"'
            self.chains[name] = Chain(name, (Rule(statement, note), Rule(then)))
        return name


def _uncounted(rule: Rule) -> Rule:
    return Rule(rule.statement.replace(" counter ", " ").removeprefix("counter "), rule.note)
