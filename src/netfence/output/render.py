"""Draw analysis results for people (rich tables, text) and programs (json, yaml, csv)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import yaml

from netfence.analysis.explain import PolicyExplanation
from netfence.analysis.matrix import Matrix, namespace_count_arrays
from netfence.analysis.verdict import Reason, SideVerdict, Verdict
from netfence.model.policies import Direction
from netfence.output.data import explanation_data, verdict_data

if TYPE_CHECKING:  # rich is imported by the text outputs that use it, not by json, csv or summary
    from rich.console import Console

ALLOWED_MARK, DENIED_MARK = "✓", "·"
#: How the summary names the group of endpoints without a namespace (Calico host endpoints).
HOST_GROUP = "(hosts)"


def dump(data: Any, fmt: str, out: IO[str]) -> None:
    """json or yaml, keys sorted, for programs."""
    if fmt == "yaml":
        yaml.safe_dump(data, out, sort_keys=True, default_flow_style=False, allow_unicode=True)
    else:
        json.dump(data, out, indent=2, sort_keys=True)
        out.write("\n")


def console(out: IO[str], width: int = 100) -> Console:
    from rich.console import Console

    tty = out.isatty()
    return Console(
        file=out,
        width=width,
        highlight=False,
        soft_wrap=False,
        emoji=False,
        force_terminal=tty,
        color_system="standard" if tty else None,
    )


def _write_trimmed(text: str, out: IO[str]) -> None:
    out.write("".join(line.rstrip() + "\n" for line in text.splitlines()))


# --- matrix -----------------------------------------------------------------------------------


def matrix_json(matrix: Matrix, out: IO[str]) -> None:
    """`{"flows": [...]}` streamed: one object per (port, source, destination), written one
    source row at a time, so memory does not grow with the output."""
    sources = [json.dumps(e.id) for e in matrix.sources]
    destinations = [json.dumps(e.id) for e in matrix.destinations]
    out.write('{"flows": [')
    first = True
    for p, port in enumerate(matrix.ports):
        head = f'"port": {json.dumps(port.port)}, "protocol": "{port.protocol}", "allowed": '
        allowed = [f'"to": {dst}, {head}true}}' for dst in destinations]
        denied = [f'"to": {dst}, {head}false}}' for dst in destinations]
        for i, src in enumerate(sources):
            start = f'{{"from": {src}, '
            chunk = ",\n  ".join(
                [start + (yes if ok else no) for ok, yes, no in zip(matrix.row(p, i).tolist(), allowed, denied)]
            )
            if chunk:
                out.write(("\n  " if first else ",\n  ") + chunk)
                first = False
    out.write("\n]}\n" if not first else "]}\n")


def matrix_csv(matrix: Matrix, out: IO[str]) -> None:
    """What `csv.writer` wrote row by row, built one source row at a time (20x faster)."""
    out.write("from,to,port,protocol,allowed\n")
    sources = [_csv_field(e.id) for e in matrix.sources]
    destinations = [_csv_field(e.id) for e in matrix.destinations]
    for p, port in enumerate(matrix.ports):
        number = "" if port.port is None else str(port.port)
        tails = [f",{dst},{number},{port.protocol}," for dst in destinations]
        allowed = [tail + "true\n" for tail in tails]
        denied = [tail + "false\n" for tail in tails]
        for i, src in enumerate(sources):
            row = matrix.row(p, i).tolist()
            out.write("".join([src + (yes if ok else no) for ok, yes, no in zip(row, allowed, denied)]))


def _csv_field(text: str) -> str:
    """Quoted as csv.QUOTE_MINIMAL quotes (ids are DNS names, so hardly ever)."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def matrix_table(matrix: Matrix, out: IO[str], wide: bool = False) -> None:
    """One truth table per port: rows are sources, numbered columns are destinations."""
    from rich.table import Table
    from rich.text import Text

    sources = [e.id for e in matrix.sources]
    destinations = [e.id for e in matrix.destinations]
    square = sources == destinations
    label_width = max((len(s) for s in sources), default=4) + 5
    column = 4 if not wide else max(map(len, destinations), default=4) + 3
    buffer = io.StringIO()
    buffer.isatty = out.isatty  # type: ignore[method-assign]
    con = console(buffer, max(80, label_width + column * len(destinations) + 10))
    pairs = len(sources) * len(destinations)
    total = len(matrix.ports) * pairs
    allowed_total = 0
    for p, port in enumerate(matrix.ports):
        table = Table(title=f"{port}  (rows: from, columns: to)", title_justify="left", box=None, pad_edge=False)
        table.add_column("from \\ to", no_wrap=True)
        for j, label in enumerate(destinations):
            table.add_column(label if wide else str(j + 1), justify="center", no_wrap=True)
        for i, label in enumerate(sources):
            cells = [
                Text(ALLOWED_MARK, style="green") if ok else Text(DENIED_MARK, style="red")
                for ok in matrix.row(p, i).tolist()
            ]
            table.add_row(label if wide or not square else f"{i + 1:>2} {label}", *cells)
        con.print(table)
        if not square and not wide:
            con.print("columns (to):")
            for j, label in enumerate(destinations):
                con.print(f"{j + 1:>4} {label}")
        count = matrix.count_allowed(p)
        allowed_total += count
        con.print(f"{port}: {count} of {pairs} flows allowed, {pairs - count} denied")
        con.print()
    who = f"{len(sources)} pods" if square else f"{len(sources)} sources, {len(destinations)} destinations"
    con.print(
        f"{len(matrix.ports)} port{'s' if len(matrix.ports) != 1 else ''}, {who}: "
        f"{allowed_total} of {total} flows allowed ({ALLOWED_MARK} allowed, {DENIED_MARK} denied)"
    )
    _write_trimmed(buffer.getvalue(), out)


def matrix_summary(matrix: Matrix, out: IO[str]) -> None:
    """Allowed and denied flows per source namespace, destination namespace and port, then per
    port: what a matrix too large to list says at a glance. Written as it is formatted: at
    100,000 pods in 2,000 namespaces that is 16 million lines."""
    counts = namespace_count_arrays(matrix)
    from_names = [n or HOST_GROUP for n in counts.from_names]
    to_names = [n or HOST_GROUP for n in counts.to_names]
    ports = [str(p) for p in matrix.ports]
    denied = counts.total[np.newaxis, :, :] - counts.allowed
    head = ["from", "to", "port", "allowed", "denied"]
    widths = [
        max([len(head[0]), *map(len, from_names)]),
        max([len(head[1]), *map(len, to_names)]),
        max([len(head[2]), *map(len, ports)]),
        max(len(head[3]), len(str(int(counts.allowed.max(initial=0))))),
        max(len(head[4]), len(str(int(denied.max(initial=0))))),
    ]
    wf, wt, wp, wa, wd = widths
    out.write(f"{head[0]:<{wf}}  {head[1]:<{wt}}  {head[2]:<{wp}}  {head[3]:>{wa}}  {head[4]:>{wd}}\n")
    # One row per (destination namespace, port) for each source namespace: the text in front
    # of the numbers is made once, the numbers with one %-format per line.
    middles = [f"{to_name:<{wt}}  {port:<{wp}}  " for to_name in to_names for port in ports]
    groups, row_length = len(from_names), len(middles)  # no pod at all: no group, no row
    allowed = np.ascontiguousarray(counts.allowed.transpose(1, 2, 0)).reshape(groups, row_length).tolist()
    refused = np.ascontiguousarray(denied.transpose(1, 2, 0)).reshape(groups, row_length).tolist()
    numbers = f"%{wa}d  %{wd}d\n"
    for g, from_name in enumerate(from_names):
        left = f"{from_name:<{wf}}  "
        rows = zip(middles, allowed[g], refused[g], strict=True)
        out.write("".join([left + middle + numbers % (a, d) for middle, a, d in rows]))
    out.write("\n")
    pairs = len(matrix.sources) * len(matrix.destinations)
    allowed_total = 0
    per_port = counts.allowed.sum(axis=(1, 2)).tolist()  # the namespace counts add up to the port's
    for port, count in zip(matrix.ports, per_port, strict=True):
        allowed_total += count
        out.write(f"{port}: {count} of {pairs} flows allowed, {pairs - count} denied\n")
    who = (
        f"{len(matrix.sources)} pods"
        if matrix.sources == matrix.destinations
        else f"{len(matrix.sources)} sources, {len(matrix.destinations)} destinations"
    )
    total = len(matrix.ports) * pairs
    out.write(
        f"{len(matrix.ports)} port{'s' if len(matrix.ports) != 1 else ''}, {who}: {allowed_total} of {total} flows allowed\n"
    )


# --- query ------------------------------------------------------------------------------------


def verdict_text(verdict: Verdict, out: IO[str]) -> None:
    flow = verdict.flow
    from rich.text import Text

    head = "ALLOWED" if verdict.allowed else "DENIED"
    con = console(out, 200)
    style = "bold green" if verdict.allowed else "bold red"
    con.print(Text.assemble((f"{head:<8}", style), f" {flow.source.label} -> {flow.destination.label}  {flow.port}"))
    for side in (verdict.egress, verdict.ingress):
        con.print(f"  {side.direction:<8} {_side_text(side, verdict)}")


def _side_text(side: SideVerdict, verdict: Verdict) -> str:
    flow = verdict.flow
    local = flow.source if side.direction is Direction.EGRESS else flow.destination
    remote = flow.destination if side.direction is Direction.EGRESS else flow.source
    word = "to" if side.direction is Direction.EGRESS else "from"
    selected = ", ".join(str(p) for p in side.policies)
    if side.reason is Reason.SELF:
        return "allowed: a pod reaching itself is always allowed"
    if side.reason is Reason.NOT_AN_ENDPOINT:
        return f"allowed: {local.label} is not a pod netfence enforces policy on"
    if side.reason is Reason.NOT_ISOLATED:
        verb = "allowed" if side.allowed else "denied"
        if side.policies:
            return f"{verb}: every tier selecting {side.endpoint} passed ({selected}); the default {verb[:-2]}s"
        if not side.allowed:
            return f"denied: no policy selects {side.endpoint} for {side.direction}; a host endpoint denies by default"
        return f"allowed: {side.endpoint} is not isolated for {side.direction} (no policy selects it)"
    if side.reason is Reason.ISOLATED:
        verb = "allowed" if side.allowed else "denied"
        return (
            f"{verb}: {side.endpoint} is isolated for {side.direction} by {selected}; "
            f"no rule allows {flow.port} {word} {remote.label} (end of tier {side.tier})"
        )
    assert side.rule is not None
    where = []
    if side.peer_index is not None:
        where.append(f"{word}[{side.peer_index}]")
    if side.port_index is not None:
        where.append(f"ports[{side.port_index}]")
    detail = f" ({', '.join(where)})" if where else ""
    verb = "allowed" if side.allowed else "denied"
    return f"{verb} by {side.rule}{detail} in tier {side.tier}; selected by {selected}"


def verdicts_dump(verdicts: Sequence[Verdict], fmt: str, out: IO[str], service: dict[str, Any] | None) -> None:
    if service is None:
        dump(verdict_data(verdicts[0]), fmt, out)
        return
    data = dict(service)
    data["allowed"] = bool(verdicts) and all(v.allowed for v in verdicts)
    data["backends"] = [verdict_data(v) for v in verdicts]
    dump(data, fmt, out)


# --- explain ----------------------------------------------------------------------------------


def explain_text(items: Sequence[PolicyExplanation], out: IO[str]) -> None:
    from rich.text import Text

    con = console(out, 120)
    if not items:
        con.print("No policies.")
    by_tier = any(item.kind != "NetworkPolicy" for item in items)
    group: str | None = None
    for item in items:
        heading = f"tier {item.tier}" if by_tier else f"namespace {item.namespace}"
        if heading != group:
            group = heading
            con.print(Text(heading, style="bold"))
        count = len(item.selects)
        selects = f"{count} endpoint{'s' if count != 1 else ''}" if by_tier else f"{count} pod{'s' if count != 1 else ''}"
        name = f"{item.namespace}/{item.name}" if by_tier and item.namespace else item.name
        order = f" (order {item.order:g})" if by_tier and item.order is not None else ""
        con.print(f"  {item.kind} {name}{order}: applies to {item.summary} ({selects})")
        for direction, text in item.directions:
            con.print(f"    {direction:<8} {text}")


def explain_dump(items: Sequence[PolicyExplanation], fmt: str, out: IO[str]) -> None:
    dump({"policies": [explanation_data(i) for i in items]}, fmt, out)
