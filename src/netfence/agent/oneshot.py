"""The agent's one-shot modes: `--dry-run` (what a sync would change, the kernel only read) and
`--uninstall` (delete the table)."""

from __future__ import annotations

import ipaddress
import time
from typing import TextIO

from netfence.agent.kernel import SCRATCH_TABLE, Interval, KernelTable, NftKernel, desired_maps, desired_sets
from netfence.agent.reconcile import Reconciler
from netfence.agent.run import AgentConfig, NodeKernel, Source, build_for
from netfence.agent.table import summary
from netfence.dataplane.nft.objects import TABLE_FAMILY, TABLE_NAME, Table
from netfence.errors import NetfenceError


def dry_run(config: AgentConfig, source: Source, kernel: NodeKernel, out: TextIO, timeout: float = 60.0) -> int:
    """Wait for the source, build the node's table, print how the kernel's differs and the nft
    script a sync would run. Only reads the kernel. Returns 0."""
    source.start(lambda: None)
    try:
        deadline = time.monotonic() + timeout
        while not source.synced():
            if time.monotonic() > deadline:
                raise NetfenceError(f"{source.name}: not synced after {timeout:.0f} s: " + "; ".join(source.problems()))
            time.sleep(0.05)
        desired = build_for(config, source.snapshot(), kernel)
    finally:
        source.stop()
    view, change = Reconciler(kernel).plan(desired.table)
    where = f"table {TABLE_FAMILY} {TABLE_NAME}" + (f" in {config.netns}" if config.netns else "")
    sizes = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in summary(desired.table).items())
    target = f"host {config.host}" if config.host is not None else f"node {config.node}: {len(desired.local)} local pods"
    print(f"# {target}; desired table: {sizes}", file=out)
    if change.result == "create":
        print(f"# {where}: absent; a sync would create it:", file=out)
        out.write(desired.table.render())
        return 0
    assert view is not None and change.difference is not None
    if change.result == "unchanged":
        print(f"# {where}: unchanged (rules compared by count and comment)", file=out)
        return 0
    verb = "update set and map elements" if change.result == "update" else "replace the rules in place"
    print(f"# {where}: a sync would {verb}", file=out)
    for line in change.difference.structure:
        print(f"#   {line}", file=out)
    for line in element_changes(view, desired.table):
        print(f"#   {line}", file=out)
    out.write(change.script)
    return 0


def element_changes(view: KernelTable, desired: Table) -> list[str]:
    """`set NAME: +element -element` lines for the sets and maps both tables have."""
    lines = []
    want_sets = desired_sets(desired)
    for name, (type_, content) in sorted(want_sets.items()):
        if name not in view.sets or view.sets[name][0] != type_ or view.sets[name][1] == content:
            continue
        have: frozenset[Interval | str] = frozenset(view.sets[name][1])
        want: frozenset[Interval | str] = frozenset(content)
        added = sorted(want - have, key=str)
        gone = sorted(have - want, key=str)
        text = [f"+{_element(type_, e)}" for e in added] + [f"-{_element(type_, e)}" for e in gone]
        lines.append(f"set {name}: " + " ".join(text))
    for name, entries in sorted(desired_maps(desired).items()):
        if name not in view.maps or view.maps[name] == entries:
            continue
        text = [f'+"{i}" : {v}' for i, v in sorted(entries - view.maps[name])]
        text += [f'-"{i}" : {v}' for i, v in sorted(view.maps[name] - entries)]
        lines.append(f"map {name}: " + ", ".join(text))
    return lines


def _element(type_: str, element: Interval | str) -> str:
    if isinstance(element, str):
        return f'"{element}"'
    make = ipaddress.IPv4Address if type_ == "ipv4_addr" else ipaddress.IPv6Address
    low, high = element
    return str(make(low)) if low == high else f"{make(low)}-{make(high)}"


def uninstall(kernel: NftKernel, out: TextIO) -> int:
    """Delete the netfence table (and a scratch table left by a crash). Returns 0."""
    deleted = kernel.delete()
    kernel.delete(SCRATCH_TABLE)
    where = f" in {kernel.netns}" if kernel.netns else ""
    if deleted:
        print(f"table {TABLE_FAMILY} {TABLE_NAME} deleted{where}; pods on this node are no longer filtered", file=out)
    else:
        print(f"no table {TABLE_FAMILY} {TABLE_NAME}{where}; nothing to delete", file=out)
    return 0
