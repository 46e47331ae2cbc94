"""Typed nftables objects and their text form. Rendering is pure and deterministic.

Nothing from the input reaches the text as syntax: set, map and chain names are generated,
interface names are checked, and comments are reduced to a safe alphabet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TABLE_FAMILY = "inet"
TABLE_NAME = "netfence"

_COMMENT_UNSAFE = re.compile(r"[^A-Za-z0-9 ._/:\[\]()=,-]")
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
COMMENT_BYTES = 128


def comment(text: str) -> str:
    """A quoted nft comment: unsafe characters replaced, at most 128 bytes."""
    safe = _COMMENT_UNSAFE.sub("_", text)[:COMMENT_BYTES]
    return f'comment "{safe}"'


def ifname(text: str) -> str:
    if not _IFNAME.match(text):
        raise ValueError(f"not an interface name: {text!r}")
    return f'"{text}"'


@dataclass(frozen=True, slots=True)
class AddressSet:
    name: str
    #: "ipv4_addr" or "ipv6_addr"
    type: str
    #: Collapsed, non-overlapping networks in text form (10.0.0.1/32 written 10.0.0.1).
    elements: tuple[str, ...]

    def render(self) -> list[str]:
        head = f"\tset {self.name} {{ type {self.type}; flags interval;"
        if not self.elements:
            return [head + " }"]
        return [head + " elements = { " + ", ".join(self.elements) + " }; }"]


@dataclass(frozen=True, slots=True)
class VerdictMap:
    name: str
    #: (interface name, chain to jump to)
    elements: tuple[tuple[str, str], ...]

    def render(self) -> list[str]:
        head = f"\tmap {self.name} {{ type ifname : verdict;"
        if not self.elements:
            return [head + " }"]
        items = ", ".join(f"{ifname(i)} : jump {c}" for i, c in self.elements)
        return [head + f" elements = {{ {items} }}; }}"]


@dataclass(frozen=True, slots=True)
class Rule:
    #: The match and verdict statements, generated (never taken from input).
    statement: str
    note: str | None = None

    def render(self) -> str:
        return f"\t\t{self.statement}" + (f" {comment(self.note)}" if self.note else "")


@dataclass(frozen=True, slots=True)
class Chain:
    name: str
    rules: tuple[Rule, ...]
    #: "type filter hook forward priority filter; policy accept;" for base chains.
    hook: str | None = None

    def render(self) -> list[str]:
        lines = [f"\tchain {self.name} {{"]
        if self.hook:
            lines.append(f"\t\t{self.hook}")
        lines.extend(rule.render() for rule in self.rules)
        lines.append("\t}")
        return lines


@dataclass(frozen=True, slots=True)
class Table:
    sets: tuple[AddressSet, ...]
    maps: tuple[VerdictMap, ...]
    chains: tuple[Chain, ...]
    family: str = TABLE_FAMILY
    name: str = TABLE_NAME

    def render(self) -> str:
        """The table's definition, as `nft list table` would show it (modulo formatting)."""
        lines = [f"table {self.family} {self.name} {{"]
        for item in self.sets:
            lines.extend(item.render())
        for vmap in self.maps:
            lines.extend(vmap.render())
        for chain in self.chains:
            lines.extend(chain.render())
        lines.append("}")
        return "\n".join(lines) + "\n"

    def names(self) -> TableNames:
        return TableNames(
            frozenset((s.name, s.type) for s in self.sets),
            frozenset(m.name for m in self.maps),
            frozenset(c.name for c in self.chains),
        )

    def replace_script(self) -> str:
        """One nft transaction that deletes and recreates the whole table (for a node that has
        no netfence table, or one in an unknown state). Prefer transition_script when the table
        exists: a set created anew misses lookups for a moment after the commit (see there).

        `table X {}` first so that the delete cannot fail on a node without the table; a flush
        would keep old set elements and map entries (nft 1.0.6), a delete does not.
        """
        return f"table {self.family} {self.name} {{}}\ndelete table {self.family} {self.name}\n" + self.render()


@dataclass(frozen=True, slots=True)
class TableNames:
    """What a table holds by name: enough to turn it into another table in place."""

    sets: frozenset[tuple[str, str]]
    maps: frozenset[str]
    chains: frozenset[str]


def transition_script(current: TableNames | None, new: Table) -> str:
    """One nft transaction that turns the table holding `current` into `new`, keeping every set,
    map and chain that both have: rules are flushed and added again, kept sets and maps are
    flushed and refilled, what `new` lacks is deleted, what it adds is created.

    Why not delete and recreate the table: measured on kernel 6.18 with nft 1.0.6, lookups in a
    newly created `flags interval` set miss for a moment after the commit, so a replaced table
    dropped packets its old and new rules both allowed (and let through packets a deny rule on
    such a set should have stopped). Refilling an existing set in one transaction is hitless.
    """
    if current is None:
        return new.replace_script()
    where = f"{new.family} {new.name}"
    kept_sets = {name for name, type_ in current.sets} & {s.name for s in new.sets if (s.name, s.type) in current.sets}
    lines = [f"add table {where}", f"flush table {where}"]  # flush table removes rules only
    lines += [f"flush map {where} {name}" for name in sorted(current.maps)]
    lines += [f"delete chain {where} {name}" for name in sorted(current.chains - {c.name for c in new.chains})]
    lines += [f"delete map {where} {name}" for name in sorted(current.maps - {m.name for m in new.maps})]
    lines += [f"delete set {where} {name}" for name, _ in sorted(current.sets) if name not in kept_sets]
    for item in new.sets:
        if item.name in kept_sets:
            lines.append(f"flush set {where} {item.name}")
        else:
            lines.append(f"add set {where} {item.name} {{ type {item.type}; flags interval; }}")
        if item.elements:
            lines.append(f"add element {where} {item.name} {{ {', '.join(item.elements)} }}")
    for vmap in new.maps:
        if vmap.name not in current.maps:
            lines.append(f"add map {where} {vmap.name} {{ type ifname : verdict; }}")
    for chain in new.chains:
        lines.append(f"add chain {where} {chain.name}" + (f" {{ {chain.hook} }}" if chain.hook else ""))
    for chain in new.chains:
        lines.extend(f"add rule {where} {chain.name} {rule.render().strip()}" for rule in chain.rules)
    for vmap in new.maps:
        if vmap.elements:
            items = ", ".join(f"{ifname(i)} : jump {c}" for i, c in vmap.elements)
            lines.append(f"add element {where} {vmap.name} {{ {items} }}")
    return "\n".join(lines) + "\n"


def update_script(old: Table, new: Table) -> str | None:
    """The set and map element changes that turn `old` into `new`, as one nft transaction; None
    when anything else differs (then the table must be replaced), "" when nothing does.

    Pod churn and label changes only move addresses between sets and interfaces between maps,
    so the common update never touches a chain.
    """
    if (old.family, old.name, old.chains) != (new.family, new.name, new.chains):
        return None
    if [(s.name, s.type) for s in old.sets] != [(s.name, s.type) for s in new.sets]:
        return None
    if [m.name for m in old.maps] != [m.name for m in new.maps]:
        return None
    where = f"{new.family} {new.name}"
    lines = []
    for before, after in zip(old.sets, new.sets, strict=True):
        if before.elements != after.elements:
            # Flush and refill in the same transaction: no moment with a half-filled set.
            lines.append(f"flush set {where} {after.name}")
            if after.elements:
                lines.append(f"add element {where} {after.name} {{ {', '.join(after.elements)} }}")
    for vmap_before, vmap_after in zip(old.maps, new.maps, strict=True):
        gone = set(vmap_before.elements) - set(vmap_after.elements)
        added = set(vmap_after.elements) - set(vmap_before.elements)
        if gone:
            keys = ", ".join(ifname(i) for i, _ in sorted(gone))
            lines.append(f"delete element {where} {vmap_after.name} {{ {keys} }}")
        if added:
            items = ", ".join(f"{ifname(i)} : jump {c}" for i, c in sorted(added))
            lines.append(f"add element {where} {vmap_after.name} {{ {items} }}")
    return "\n".join(lines) + "\n" if lines else ""
