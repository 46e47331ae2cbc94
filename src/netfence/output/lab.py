"""The lab's results drawn for people and programs.

Takes plain values and analysis matrices (never netfence.lab types: lab and output are siblings):
the kernel's verdicts are a Matrix like the analyzer's, plus one probe result string per flow.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import IO

import numpy as np
import numpy.typing as npt
from rich.table import Table

from netfence.analysis.matrix import Matrix
from netfence.output.render import console, matrix_table


def lab_pods_table(rows: Sequence[Sequence[str]], out: IO[str]) -> None:
    """One row per lab pod: pod, node, netns, address, ports served."""
    buffer = io.StringIO()
    con = console(buffer, 200)
    table = Table(box=None, pad_edge=False)
    for title in ("POD", "NODE", "NETNS", "ADDRESS", "SERVES"):
        table.add_column(title, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    con.print(table)
    out.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))


def lab_flows_json(
    actual: Matrix,
    results: npt.NDArray[np.str_],
    out: IO[str],
    predicted: Matrix | None = None,
) -> None:
    """`{"flows": [...]}` as `matrix -o json` writes it, each flow with the probe's `result`;
    with `predicted`, each flow also carries the analyzer's verdict and the top level counts
    `mismatches`."""
    labels = [json.dumps(e.id) for e in actual.endpoints]
    lines = []
    for p, port in enumerate(actual.ports):
        head = f'"port": {json.dumps(port.port)}, "protocol": "{port.protocol}"'
        for i, src in enumerate(labels):
            for j, dst in enumerate(labels):
                allowed = "true" if actual.allowed[p, i, j] else "false"
                extra = ""
                if predicted is not None:
                    extra = f', "predicted": {"true" if predicted.allowed[p, i, j] else "false"}'
                result = json.dumps(str(results[p, i, j]))
                lines.append(f'{{"from": {src}, "to": {dst}, {head}, "allowed": {allowed}{extra}, "result": {result}}}')
    out.write('{"flows": [' + ("\n  " + ",\n  ".join(lines) + "\n" if lines else "") + "]")
    if predicted is not None:
        out.write(f', "mismatches": {int(np.count_nonzero(actual.allowed != predicted.allowed))}')
    out.write("}\n")


def lab_probe_table(actual: Matrix, counts: Mapping[str, int], seconds: float, out: IO[str]) -> None:
    """The kernel's matrix, then how the probes ended."""
    matrix_table(actual, out)
    total = sum(counts.values())
    shown = ", ".join(f"{count} {result}" for result, count in counts.items())
    out.write(f"{total} probes in {seconds:.2f} s: {shown}\n")


def lab_comparison_table(
    actual: Matrix,
    results: npt.NDArray[np.str_],
    predicted: Matrix,
    counts: Mapping[str, int],
    seconds: float,
    out: IO[str],
) -> None:
    """The kernel's matrix, then every flow where the kernel and the analyzer disagree."""
    lab_probe_table(actual, counts, seconds, out)
    ids = [e.id for e in actual.endpoints]
    differ = np.argwhere(actual.allowed != predicted.allowed)
    for p, i, j in differ.tolist():
        kernel = "allowed" if actual.allowed[p, i, j] else "blocked"
        analyzer = "allowed" if predicted.allowed[p, i, j] else "denied"
        out.write(
            f"MISMATCH  {ids[i]} -> {ids[j]}  {actual.ports[p]}: kernel {kernel} ({results[p, i, j]}),"
            f" analyzer {analyzer}\n"
        )
    word = "mismatch" if len(differ) == 1 else "mismatches"
    out.write(f"{len(differ)} {word} between the kernel and the analyzer\n")
