"""What the kernel holds, read back as nft JSON, and how it differs from a desired table.

Sets and maps are compared by content: address elements as merged integer intervals (the
kernel may print a range as a prefix, or split and merge intervals), map entries as
(interface, verdict). Base chains by hook. Rules are compared as the kernel prints them (JSON,
counter values left out): the text netfence renders is not what nft prints back (`meta l4proto
tcp th dport { 80 }` reads back as `tcp dport 80`), so the printed form of a desired table's
rules comes from the kernel itself: read back after netfence applied it, or, for a table found
at start, by loading the same chains into a scratch table without hooks (`netfence_scratch`,
no effect on packets) and reading that.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from netfence.agent.conntrack import Conntrack, Flushed
from netfence.dataplane.apply import DataplaneError, apply_script, run_nft
from netfence.dataplane.nft.objects import TABLE_FAMILY, TABLE_NAME, Table, TableNames, comment
from netfence.model.endpoints import IPAddress

SCRATCH_TABLE = "netfence_scratch"
#: chain -> its rules as the kernel prints them (canonical JSON, counter values left out), in order.
RulesPrint = Mapping[str, tuple[str, ...]]
#: A base chain's hook: (type, hook, priority, policy).
Hook = tuple[str, str, int, str]
Interval = tuple[int, int]

_PRIORITIES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
_HOOK = re.compile(r"type (\w+) hook (\w+) (?:device \S+ )?priority ([\w+-]+);\s*policy (\w+);")


@dataclass(frozen=True)
class KernelTable:
    """The netfence table as read back."""

    #: name -> (type, content): address sets as merged intervals, ifname sets as names.
    sets: Mapping[str, tuple[str, frozenset[Interval] | frozenset[str]]]
    #: name -> {(interface, verdict)}
    maps: Mapping[str, frozenset[tuple[str, str]]]
    chains: Mapping[str, Hook | None]
    rules: RulesPrint
    #: Packets and bytes per rule comment, summed over the rules that carry it.
    counters: Mapping[str, tuple[int, int]]
    #: Every rule's handle: the same handles mean the rules were not replaced.
    handles: tuple[int, ...] = ()

    def names(self) -> TableNames:
        return TableNames(
            frozenset((name, type_) for name, (type_, _) in self.sets.items()),
            frozenset(self.maps),
            frozenset(self.chains),
        )

    @property
    def rule_count(self) -> int:
        return sum(len(rules) for rules in self.rules.values())


def parse_table(listing: str) -> KernelTable:
    """A `nft -j list table` listing."""
    sets: dict[str, tuple[str, frozenset[Interval] | frozenset[str]]] = {}
    maps: dict[str, frozenset[tuple[str, str]]] = {}
    chains: dict[str, Hook | None] = {}
    rules: dict[str, list[str]] = {}
    counters: dict[str, tuple[int, int]] = {}
    handles: list[int] = []
    for item in json.loads(listing).get("nftables", []):
        if "set" in item:
            entry = item["set"]
            type_ = str(entry["type"])
            sets[entry["name"]] = (type_, _content(type_, entry.get("elem", [])))
        elif "map" in item:
            entry = item["map"]
            maps[entry["name"]] = frozenset((str(_value(k)), _verdict(v)) for k, v in entry.get("elem", []))
        elif "chain" in item:
            entry = item["chain"]
            hook = None
            if "hook" in entry:
                hook = (str(entry.get("type")), str(entry["hook"]), int(entry.get("prio", 0)), str(entry.get("policy", "accept")))
            chains[entry["name"]] = hook
        elif "rule" in item:
            entry = item["rule"]
            comment = entry.get("comment")
            rules.setdefault(entry["chain"], []).append(
                json.dumps([_without_counts(entry.get("expr", [])), comment], sort_keys=True)
            )
            handles.append(int(entry.get("handle", 0)))
            if comment is not None:
                for expr in entry.get("expr", []):
                    counter = expr.get("counter") if isinstance(expr, dict) else None
                    if isinstance(counter, dict):
                        packets, octets = counters.get(comment, (0, 0))
                        counters[comment] = (packets + int(counter["packets"]), octets + int(counter["bytes"]))
    return KernelTable(
        sets, maps, chains, {c: tuple(r) for c, r in rules.items()}, counters, tuple(handles)
    )


def _without_counts(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (None if k == "counter" else _without_counts(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_counts(v) for v in value]
    return value


def _value(element: Any) -> Any:
    """A set element without its per-element options (`{"elem": {"val": ...}}`)."""
    if isinstance(element, dict) and "elem" in element:
        return element["elem"]["val"]
    return element


def _verdict(value: Any) -> str:
    if isinstance(value, dict):
        (name, arg), *_ = value.items()
        return f"{name} {arg['target']}" if isinstance(arg, dict) and "target" in arg else str(name)
    return str(value)


def _content(type_: str, elements: Iterable[Any]) -> frozenset[Interval] | frozenset[str]:
    if type_ not in ("ipv4_addr", "ipv6_addr"):
        return frozenset(str(_value(e)).strip('"') for e in elements)
    spans: list[Interval] = []
    for raw in elements:
        element = _value(raw)
        if isinstance(element, dict) and "prefix" in element:
            net = ipaddress.ip_network(f"{element['prefix']['addr']}/{element['prefix']['len']}", strict=False)
            spans.append((int(net.network_address), int(net.broadcast_address)))
        elif isinstance(element, dict) and "range" in element:
            low, high = element["range"]
            spans.append((int(ipaddress.ip_address(low)), int(ipaddress.ip_address(high))))
        else:
            spans.append(_span(str(element)))
    return frozenset(_merge(spans))


def _span(text: str) -> Interval:
    """`a`, `a/len` or `a-b` as an interval."""
    if "/" in text:
        net = ipaddress.ip_network(text, strict=False)
        return (int(net.network_address), int(net.broadcast_address))
    if "-" in text:
        low, high = text.split("-", 1)
        return (int(ipaddress.ip_address(low.strip())), int(ipaddress.ip_address(high.strip())))
    address = int(ipaddress.ip_address(text))
    return (address, address)


def _merge(spans: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for low, high in sorted(spans):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def hook_of(text: str | None) -> Hook | None:
    if text is None:
        return None
    found = _HOOK.search(text)
    if found is None:
        raise DataplaneError(f"cannot read the base chain hook {text!r}")
    kind, hook, priority, policy = found.groups()
    number = _PRIORITIES[priority] if priority in _PRIORITIES else int(priority)
    return (kind, hook, number, policy)


def desired_sets(table: Table) -> dict[str, tuple[str, frozenset[Interval] | frozenset[str]]]:
    return {s.name: (s.type, _content(s.type, s.elements)) for s in table.sets}


def desired_maps(table: Table) -> dict[str, frozenset[tuple[str, str]]]:
    return {m.name: frozenset((i, f"jump {c}") for i, c in m.elements) for m in table.maps}


def chains_digest(table: Table) -> str:
    """Identifies a table's chains and rules as rendered (what a RulesPrint is the kernel form of)."""
    text = "\n".join(line for chain in table.chains for line in chain.render())
    return hashlib.sha256(text.encode()).hexdigest()


# --- comparing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """How the kernel's table differs from a desired one."""

    #: Sets and maps (by name) whose elements differ: an element update fixes these.
    sets: tuple[str, ...] = ()
    maps: tuple[str, ...] = ()
    #: What only a replacement fixes: missing or extra objects, other hooks, other rules.
    structure: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        if self.structure:
            return "replace"
        if self.sets or self.maps:
            return "update"
        return "unchanged"

    def describe(self) -> str:
        parts = list(self.structure)
        parts += [f"set {name}: other elements" for name in self.sets]
        parts += [f"map {name}: other elements" for name in self.maps]
        return "; ".join(parts) or "no difference"


def compare(kernel: KernelTable, desired: Table, rules: RulesPrint | None) -> Difference:
    """`rules`: the kernel form of `desired`'s rules; None compares rules by count and comment
    only (what `--dry-run` can do without writing to the kernel)."""
    structure: list[str] = []
    want_sets = desired_sets(desired)
    for name in sorted(set(kernel.sets) - set(want_sets)):
        structure.append(f"extra set {name}")
    for name in sorted(set(want_sets) - set(kernel.sets)):
        structure.append(f"missing set {name}")
    changed_sets = []
    for name in sorted(set(want_sets) & set(kernel.sets)):
        if want_sets[name][0] != kernel.sets[name][0]:
            structure.append(f"set {name}: type {kernel.sets[name][0]}, expected {want_sets[name][0]}")
        elif want_sets[name][1] != kernel.sets[name][1]:
            changed_sets.append(name)
    want_maps = desired_maps(desired)
    for name in sorted(set(kernel.maps) ^ set(want_maps)):
        structure.append(f"{'extra' if name in kernel.maps else 'missing'} map {name}")
    changed_maps = [n for n in sorted(set(want_maps) & set(kernel.maps)) if want_maps[n] != kernel.maps[n]]
    want_chains = {c.name: hook_of(c.hook) for c in desired.chains}
    for name in sorted(set(kernel.chains) ^ set(want_chains)):
        structure.append(f"{'extra' if name in kernel.chains else 'missing'} chain {name}")
    for name in sorted(set(kernel.chains) & set(want_chains)):
        if kernel.chains[name] != want_chains[name]:
            structure.append(f"chain {name}: other hook")
        elif rules is not None:
            if kernel.rules.get(name, ()) != rules.get(name, ()):
                structure.append(f"chain {name}: other rules")
        else:
            have = [json.loads(r)[1] for r in kernel.rules.get(name, ())]
            chain = next(c for c in desired.chains if c.name == name)
            want = [_kernel_comment(r.note) for r in chain.rules]
            if have != want:
                structure.append(f"chain {name}: other rules")
    return Difference(tuple(changed_sets), tuple(changed_maps), tuple(structure))


def _kernel_comment(note: str | None) -> str | None:
    return None if note is None else comment(note)[len('comment "') : -1]


def as_old_table(kernel: KernelTable, desired: Table) -> Table:
    """`desired` with the kernel's set and map elements: what `update_script(old, desired)` needs
    to write the element changes (only when `compare` found no structural difference)."""
    want_sets = desired_sets(desired)
    sets = tuple(
        s if kernel.sets[s.name][1] == want_sets[s.name][1] else replace(s, elements=("(differs)",))
        for s in desired.sets
    )
    maps = []
    for vmap in desired.maps:
        have = kernel.maps[vmap.name]
        if have == desired_maps(desired)[vmap.name]:
            maps.append(vmap)
        else:
            maps.append(replace(vmap, elements=tuple(sorted((i, v.removeprefix("jump ")) for i, v in have))))
    return replace(desired, sets=sets, maps=tuple(maps))


# --- the kernel -------------------------------------------------------------------------------


class NftKernel:
    """The netfence table of one network namespace, through the nft CLI (`netns`: a name under
    /run/netns, a path, or None for this process's own)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns

    def read(self, name: str = TABLE_NAME) -> KernelTable | None:
        try:
            listing = run_nft(["-j", "list", "table", TABLE_FAMILY, name], self.netns)
        except DataplaneError:
            if not self._exists(name):
                return None
            # Created between the two commands (by whoever): read it now.
            listing = run_nft(["-j", "list", "table", TABLE_FAMILY, name], self.netns)
        return parse_table(listing)

    def _exists(self, name: str) -> bool:
        tables = run_nft(["list", "tables", TABLE_FAMILY], self.netns)
        return f"table {TABLE_FAMILY} {name}" in tables.splitlines()

    def apply(self, script: str, intended: Table | None = None, check: bool = True) -> None:
        """One `nft -f` (after `nft --check` when `check`): all of `script` or nothing."""
        if check:
            apply_script(script, self.netns)
        else:
            run_nft(["-f", "-"], self.netns, script)

    def rules_print(self, desired: Table) -> RulesPrint:
        """The kernel form of `desired`'s rules, from a scratch copy without hooks or elements."""
        scratch = replace(
            desired,
            name=SCRATCH_TABLE,
            chains=tuple(replace(c, hook=None) for c in desired.chains),
            sets=tuple(replace(s, elements=()) for s in desired.sets),
            maps=tuple(replace(m, elements=()) for m in desired.maps),
        )
        self.apply(scratch.replace_script())
        try:
            found = self.read(SCRATCH_TABLE)
        finally:
            self.delete(SCRATCH_TABLE)
        if found is None:
            raise DataplaneError(f"the scratch table {SCRATCH_TABLE} vanished while being read")
        return found.rules

    def delete(self, name: str = TABLE_NAME) -> bool:
        """Delete the table; False when there was none."""
        if not self._exists(name):
            return False
        run_nft(["delete", "table", TABLE_FAMILY, name], self.netns)
        return True

    def flush_conntrack(self, addresses: Sequence[IPAddress]) -> Flushed:
        """Delete the conntrack entries of `addresses` (conntrack.py)."""
        return Conntrack(self.netns).flush(addresses)

    # interfaces

    def _ip(self, *args: str) -> Any:
        ip = shutil.which("ip") or "/usr/sbin/ip"
        argv = [ip, "-j", *args]
        if self.netns is not None:
            path = self.netns if self.netns.startswith("/") else f"/run/netns/{self.netns}"
            argv = [shutil.which("nsenter") or "/usr/bin/nsenter", f"--net={path}", *argv]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            raise DataplaneError(f"cannot run ip: {exc.strerror}: {exc.filename}") from None
        if proc.returncode != 0:
            raise DataplaneError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
        return json.loads(proc.stdout or "[]")

    def links(self) -> set[str]:
        """Names of the interfaces of the namespace."""
        return {str(link["ifname"]) for link in self._ip("link", "show")}

    def routes(self) -> dict[IPAddress, str]:
        """Host routes (/32, /128) to an interface: address -> interface (how routed CNIs reach pods)."""
        found: dict[IPAddress, str] = {}
        for family in ("-4", "-6"):
            for route in self._ip(family, "route", "show"):
                dst, dev = route.get("dst", ""), route.get("dev")
                if not dev or dst in ("default", "") or route.get("gateway"):
                    continue
                try:
                    net = ipaddress.ip_network(dst, strict=False)
                except ValueError:
                    continue
                if net.num_addresses == 1:
                    found[net.network_address] = str(dev)
        return found
