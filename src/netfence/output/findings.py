"""Draw lint findings: one block per finding (table) or `{"findings": [...]}` (json)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import IO, Any

from netfence.analysis.lint import Finding, Severity
from netfence.output.render import dump


def finding_data(finding: Finding) -> dict[str, Any]:
    where = finding.location
    return {
        "code": finding.code,
        "severity": str(finding.severity),
        "file": where.file if where is not None else None,
        "line": where.line if where is not None else None,
        "object": finding.object,
        "message": finding.message,
        "hint": finding.hint,
    }


def findings_dump(findings: Sequence[Finding], fmt: str, out: IO[str]) -> None:
    dump({"findings": [finding_data(f) for f in findings]}, fmt, out)


def findings_text(findings: Sequence[Finding], out: IO[str]) -> None:
    """Each finding as `file:line: severity code: object` with its message and hint, then counts."""
    for finding in findings:
        where = f"{finding.location}: " if finding.location is not None else ""
        out.write(f"{where}{finding.severity} {finding.code}: {finding.object}\n")
        out.write(f"  {finding.message}\n")
        out.write(f"  hint: {finding.hint}\n\n")
    if not findings:
        out.write("no findings\n")
        return
    counts = Counter(f.severity for f in findings)
    parts = [f"{counts[s]} {s}{'s' if counts[s] != 1 and s is not Severity.INFO else ''}" for s in Severity if counts[s]]
    total = len(findings)
    out.write(f"{total} finding{'s' if total != 1 else ''}: {', '.join(parts)}\n")
