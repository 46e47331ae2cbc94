"""Make the kernel hold the desired table with the smallest correct change; notice and undo
changes someone else made.

converge(desired):
  fast path: the kernel is believed to hold `applied` (applied or verified by this agent), so
    `update_script(applied, desired)` decides: "" is unchanged, a script is one element-update
    transaction, None (chains, or set and map names, differ) takes the full path.
  full path: read the table back. None there: create it whole. Else compare: the same (a table
    found at start is adopted as it is, without a moment of change), only elements differ (one
    element update), or anything else (one in-place replacement, `transition_script`, which
    keeps the sets both versions have).
  A creation or replacement is read back at once: the kernel's form of the rules is what later
  checks compare with.
verify(): read back and compare with `applied`; a difference (a foreign edit, a deleted table)
  is repaired through the full path.

A failure (DataplaneError) changes nothing in the kernel: the kernel applies a transaction whole
or not at all. Creations and replacements are also checked first (`nft --check`); element
updates, the most frequent change, go straight to their one transaction, as a check would double
their cost. `applied` is then forgotten, so the next attempt starts from what the kernel holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from netfence.agent.kernel import (
    Difference,
    KernelTable,
    RulesPrint,
    as_old_table,
    chains_digest,
    compare,
)
from netfence.dataplane.nft.objects import Table, transition_script, update_script

#: How many tables' rule prints are remembered (the current one and a few recent).
_PRINTS = 8


class Kernel(Protocol):
    def read(self) -> KernelTable | None: ...

    def apply(self, script: str, intended: Table, check: bool = True) -> None:
        """Run `script` in one transaction (`nft --check` first when `check`); `intended` is the
        table it should leave (for kernels that model the table rather than run nft)."""

    def rules_print(self, desired: Table) -> RulesPrint: ...


class CounterSink(Protocol):
    def absorb(self, counters: Mapping[str, tuple[int, int]]) -> None:
        """The kernel's rule counters as read now."""

    def restarted(self) -> None:
        """The rules were replaced: the kernel's counters start again from zero."""


class _NoCounters:
    def absorb(self, counters: Mapping[str, tuple[int, int]]) -> None:
        pass

    def restarted(self) -> None:
        pass


@dataclass(frozen=True)
class Change:
    #: "unchanged", "update" (set and map elements), "replace" (in place) or "create".
    result: str
    #: The nft script applied (or, planning, that would be); "" when unchanged.
    script: str = ""
    #: What the kernel's table differed in, when it was read.
    difference: Difference | None = None


@dataclass(frozen=True)
class Check:
    """What a read-back found: the difference (None: no table at all) and the change made."""

    difference: Difference | None
    repair: Change | None

    @property
    def describe(self) -> str:
        return self.difference.describe() if self.difference is not None else "table missing"


class Reconciler:
    def __init__(self, kernel: Kernel, counters: CounterSink | None = None) -> None:
        self.kernel = kernel
        self.counters: CounterSink = counters or _NoCounters()
        #: What the kernel is believed to hold; None: unknown (read it before changing it).
        self.applied: Table | None = None
        self._prints: dict[str, RulesPrint] = {}

    def forget(self) -> None:
        self.applied = None

    # --- converging ------------------------------------------------------------------------

    def converge(self, desired: Table) -> Change:
        if self.applied is not None:
            script = update_script(self.applied, desired)
            if script == "":
                self.applied = desired
                return Change("unchanged")
            if script is not None:
                try:
                    self.kernel.apply(script, desired, check=False)
                except Exception:
                    self.applied = None
                    raise
                self.applied = desired
                return Change("update", script)
        return self._full(desired, self.kernel.read())

    def _full(self, desired: Table, view: KernelTable | None) -> Change:
        self.applied = None
        if view is None:
            script = desired.replace_script()
            self.kernel.apply(script, desired)
            self._read_back(desired)
            return Change("create", script)
        self.counters.absorb(view.counters)
        difference = compare(view, desired, self.rules_print(desired))
        if difference.kind == "unchanged":
            self.applied = desired
            return Change("unchanged", "", difference)
        if difference.kind == "update":
            script = update_script(as_old_table(view, desired), desired) or ""
            self.kernel.apply(script, desired, check=False)
            self.applied = desired
            return Change("update", script, difference)
        script = transition_script(view.names(), desired)
        self.kernel.apply(script, desired)
        self.counters.restarted()
        self._read_back(desired)
        return Change("replace", script, difference)

    def _read_back(self, desired: Table) -> None:
        """Note the kernel's form of the rules just written; `applied` only when they read back."""
        view = self.kernel.read()
        if view is None:
            return
        self._remember(desired, view.rules)
        if compare(view, desired, view.rules).kind == "unchanged":
            self.applied = desired

    def rules_print(self, desired: Table) -> RulesPrint:
        digest = chains_digest(desired)
        found = self._prints.get(digest)
        if found is None:
            found = self.kernel.rules_print(desired)
            self._remember(desired, found)
        return found

    def _remember(self, desired: Table, rules: RulesPrint) -> None:
        self._prints[chains_digest(desired)] = rules
        while len(self._prints) > _PRINTS:
            del self._prints[next(iter(self._prints))]

    # --- checking ------------------------------------------------------------------------

    def verify(self, desired: Table) -> Check:
        """Read the table back and compare it with `desired` (the last good table); bring the
        kernel in line when it differs."""
        view = self.kernel.read()
        if view is None:
            return Check(None, self._full(desired, None))
        self.counters.absorb(view.counters)
        difference = compare(view, desired, self.rules_print(desired))
        if difference.kind == "unchanged":
            self.applied = desired
            return Check(difference, None)
        return Check(difference, self._full(desired, view))

    def plan(self, desired: Table) -> tuple[KernelTable | None, Change]:
        """What converge would do, reading only (no scratch table: rules are compared by count and
        comment); for --dry-run."""
        view = self.kernel.read()
        if view is None:
            return None, Change("create", desired.replace_script())
        difference = compare(view, desired, None)
        if difference.kind == "unchanged":
            return view, Change("unchanged", "", difference)
        if difference.kind == "update":
            return view, Change("update", update_script(as_old_table(view, desired), desired) or "", difference)
        return view, Change("replace", transition_script(view.names(), desired), difference)
