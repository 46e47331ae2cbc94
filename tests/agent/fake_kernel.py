"""A kernel that models the netfence table instead of running nft: what reconcile decisions and
the agent's failure handling can be tested with, without root. Its "printed" rules are the
rendered ones (the real kernel reformats them; tests/agent/test_kernel_lab.py covers that)."""

from __future__ import annotations

import json
from dataclasses import replace

from netfence.agent.conntrack import Flushed
from netfence.agent.kernel import KernelTable, RulesPrint, desired_maps, desired_sets, hook_of
from netfence.dataplane.apply import DataplaneError
from netfence.dataplane.nft.objects import Table, comment


def printed(table: Table) -> RulesPrint:
    """Rules as JSON [statement, comment], the shape the real print has ([expressions, comment])."""
    return {
        c.name: tuple(json.dumps([r.statement, None if r.note is None else comment(r.note)[9:-1]]) for r in c.rules)
        for c in table.chains
    }


def view_of(table: Table) -> KernelTable:
    return KernelTable(
        desired_sets(table),
        desired_maps(table),
        {c.name: hook_of(c.hook) for c in table.chains},
        printed(table),
        {},
        tuple(range(sum(len(c.rules) for c in table.chains))),
    )


class FakeKernel:
    def __init__(self, table: Table | None = None) -> None:
        self.view: KernelTable | None = view_of(table) if table is not None else None
        #: (kind, script) of every transaction: kind is create, replace or update.
        self.applied: list[tuple[str, str]] = []
        self.reads = 0
        self.prints = 0
        #: Refuse the next transactions with this message.
        self.refuse: str | None = None
        self.links_present: set[str] = set()
        #: The addresses of every conntrack flush, in order.
        self.flushed: list[tuple[object, ...]] = []
        #: Fail every conntrack run with this message.
        self.conntrack_fails: str | None = None

    def read(self) -> KernelTable | None:
        self.reads += 1
        return self.view

    def apply(self, script: str, intended: Table | None = None, check: bool = True) -> None:
        if self.refuse is not None:
            raise DataplaneError(f"nft -f - failed: {self.refuse}")
        assert intended is not None
        if script.startswith("table inet netfence {}\ndelete table"):
            kind = "create"
        elif "flush table" in script:
            kind = "replace"
        else:
            kind = "update"
            assert " chain " not in script and "rule" not in script, script
            assert not check  # element updates skip the separate check
        self.applied.append((kind, script))
        self.view = view_of(intended)

    def rules_print(self, desired: Table) -> RulesPrint:
        self.prints += 1
        return printed(desired)

    def routes(self) -> dict[object, str]:
        return {}

    def links(self) -> set[str]:
        return set(self.links_present)

    def flush_conntrack(self, addresses: tuple[object, ...]) -> Flushed:
        self.flushed.append(tuple(addresses))
        if self.conntrack_fails is not None:
            return Flushed(0, tuple(self.conntrack_fails for _ in range(4 * len(addresses))))
        return Flushed(len(addresses))

    # foreign edits

    def add_rule(self, chain: str, rule: str) -> None:
        assert self.view is not None
        rules = dict(self.view.rules)
        rules[chain] = (rule, *rules.get(chain, ()))
        self.view = replace(self.view, rules=rules)

    def drop_map_entries(self, name: str) -> None:
        assert self.view is not None
        self.view = replace(self.view, maps={**self.view.maps, name: frozenset()})

    def delete_table(self) -> None:
        self.view = None
