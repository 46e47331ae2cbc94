"""Draw a diff: one line per group of flows that changed alike, with what decided them before and
after (table), or every changed flow (json, yaml)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO, Any

from netfence.analysis.diff import ChangeGroup, Decision, Diff, FlowChange
from netfence.model.ports import FlowPort
from netfence.output.render import dump

ARROW = "→"


def change_data(change: FlowChange) -> dict[str, Any]:
    return {
        "from": change.source,
        "to": change.destination,
        "port": change.port.port,
        "protocol": str(change.port.protocol),
        "before": change.before,
        "after": change.after,
        "beforeRule": change.cause.before_rule,
        "afterRule": change.cause.after_rule,
    }


def diff_json(diff: Diff, out: IO[str]) -> None:
    """`{"changes": [...]}`, one changed flow per line, sorted by source, destination and port
    (what json.dumps of change_data writes, put together from per-block pieces)."""
    rows: list[tuple[str, str, tuple[int, str], str]] = []
    for block in diff.blocks:
        cause = block.cause
        verdicts = f'"before": {_json(not block.allowed)}, "after": {_json(block.allowed)}, '
        rules = f'"beforeRule": {json.dumps(cause.before_rule)}, "afterRule": {json.dumps(cause.after_rule)}}}'
        tails = [
            (port.sort_key, f'"port": {json.dumps(port.port)}, "protocol": "{port.protocol}", {verdicts}{rules}')
            for port in block.ports
        ]
        for source in block.sources:
            for destination in block.destinations:
                if source != destination:
                    rows.extend((source, destination, key, tail) for key, tail in tails)
    rows.sort(key=lambda row: row[:3])
    quoted: dict[str, str] = {}
    out.write('{"changes": [')
    first = True
    for src, dst, _, tail in rows:
        for name in (src, dst):
            if name not in quoted:
                quoted[name] = json.dumps(name)
        out.write(f'{"" if first else ","}\n  {{"from": {quoted[src]}, "to": {quoted[dst]}, {tail}')
        first = False
    out.write("\n]}\n" if not first else "]}\n")


def _json(value: bool) -> str:
    return "true" if value else "false"


def diff_yaml(diff: Diff, out: IO[str]) -> None:
    dump({"changes": [change_data(c) for c in diff.changes()]}, "yaml", out)


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _decisions(decisions: Sequence[Decision]) -> str:
    return "; ".join(str(d) for d in decisions)


def diff_table(diff: Diff, groups: Sequence[ChangeGroup], out: IO[str]) -> None:
    """Newly denied, then newly allowed groups, each with its deciding rules, then a summary."""
    for group in groups:
        verb = "newly allowed" if group.allowed else "newly denied"
        ports = _ports(group.ports, diff.ports)
        out.write(f"{_plural(group.count, 'flow')} {verb}: {group.sources} {ARROW} {group.destinations} on {ports}\n")
        out.write(f"  before: {_decisions(group.cause.before)}\n")
        out.write(f"  after:  {_decisions(group.cause.after)}\n")
        out.write("\n")
    ports = ", ".join(str(p) for p in diff.ports)
    scope = f"{_plural(len(diff.compared), 'endpoint')} on both sides, {_plural(len(diff.ports), 'port')} ({ports})"
    if diff.count:
        out.write(
            f"{_plural(diff.count, 'flow')} changed: {diff.newly_denied:,} newly denied, "
            f"{diff.newly_allowed:,} newly allowed; {scope}\n"
        )
    else:
        out.write(f"no flow changed; {scope}\n")


#: How many ports a group lists before it says how many more there are.
LISTED_PORTS = 6


def _ports(ports: Sequence[FlowPort], compared: Sequence[FlowPort]) -> str:
    if len(ports) > LISTED_PORTS and len(ports) == len(compared):
        return f"all {len(ports)} ports"
    shown = [str(p) for p in ports]
    if len(shown) > LISTED_PORTS + 1:
        shown = [*shown[:LISTED_PORTS], f"+{len(shown) - LISTED_PORTS} more"]
    return ", ".join(shown)


def endpoint_notes(diff: Diff, old: str, new: str) -> list[str]:
    """One line for endpoints only one side has (they are not compared)."""
    notes = []
    for ids, side in ((diff.added, new), (diff.removed, old)):
        if ids:
            shown = ", ".join(ids[:10]) + (f", +{len(ids) - 10} more" if len(ids) > 10 else "")
            notes.append(f"only in {side} (not compared): {_plural(len(ids), 'endpoint')}: {shown}")
    return notes
