"""Audited policies in query and matrix output: the enforced verdict beside the audit verdict.

The enforced verdict is the ruleset without the audited policies (what the dataplane does), the
audit verdict the ruleset with them (what the dataplane logs they would do); see ir/audit.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from netfence.analysis.matrix import Matrix
from netfence.analysis.verdict import Verdict
from netfence.ir.types import PolicyRef
from netfence.output.data import verdict_data
from netfence.output.render import dump, verdict_text
from netfence.model.ports import FlowPort


def _policies(audited: Sequence[PolicyRef]) -> list[str]:
    return sorted(str(ref) for ref in audited)


def audit_query_dump(
    enforced: Sequence[Verdict],
    audit: Sequence[Verdict],
    audited: Sequence[PolicyRef],
    fmt: str,
    out: IO[str],
    service: dict[str, Any] | None,
) -> None:
    """What verdicts_dump prints for the enforced verdicts, plus `audit`: the policies and the
    verdicts with them enforced."""
    if service is None:
        data = verdict_data(enforced[0])
        extra: dict[str, Any] = {"verdict": verdict_data(audit[0])}
    else:
        data = dict(service)
        data["allowed"] = bool(enforced) and all(v.allowed for v in enforced)
        data["backends"] = [verdict_data(v) for v in enforced]
        extra = {"backends": [verdict_data(v) for v in audit]}
    data["audit"] = {
        "policies": _policies(audited),
        "allowed": bool(audit) and all(v.allowed for v in audit),
        **extra,
    }
    dump(data, fmt, out)


def audit_query_text(audit: Sequence[Verdict], audited: Sequence[PolicyRef], out: IO[str]) -> None:
    """The audit verdicts, after the enforced ones."""
    out.write(f"\naudit: with {', '.join(_policies(audited))} enforced\n")
    out.flush()
    for verdict in audit:
        verdict_text(verdict, out)


@dataclass(frozen=True, slots=True)
class Difference:
    source: str
    destination: str
    port: FlowPort
    #: The enforced verdict (the audit verdict is its opposite).
    allowed: bool


def differences(enforced: Matrix, audit: Matrix) -> Iterator[Difference]:
    """Flows whose audit verdict differs from the enforced one, port by port, row by row."""
    for p, port in enumerate(enforced.ports):
        for i, source in enumerate(enforced.sources):
            now, then = enforced.row(p, i), audit.row(p, i)
            for j in (now != then).nonzero()[0].tolist():
                yield Difference(source.id, enforced.destinations[j].id, port, bool(now[j]))


def audit_matrix_json(enforced: Matrix, audit: Matrix, audited: Sequence[PolicyRef], out: IO[str]) -> None:
    """`{"audit": [policies], "flows": [...]}`: every flow with `allowed` (enforced) and `audit`."""
    out.write('{"audit": ' + json.dumps(_policies(audited)) + ', "flows": [')
    first = True
    for p, port in enumerate(enforced.ports):
        head = f'"port": {json.dumps(port.port)}, "protocol": "{port.protocol}"'
        for i, source in enumerate(enforced.sources):
            now, then = enforced.row(p, i).tolist(), audit.row(p, i).tolist()
            start = f'{{"from": {json.dumps(source.id)}, '
            for j, destination in enumerate(enforced.destinations):
                line = (
                    f'{start}"to": {json.dumps(destination.id)}, {head}, "allowed": {json.dumps(now[j])},'
                    f' "audit": {json.dumps(then[j])}}}'
                )
                out.write(("\n  " if first else ",\n  ") + line)
                first = False
    out.write("\n]}\n" if not first else "]}\n")


def audit_matrix_csv(enforced: Matrix, audit: Matrix, out: IO[str]) -> None:
    out.write("from,to,port,protocol,allowed,audit\n")
    for p, port in enumerate(enforced.ports):
        number = "" if port.port is None else str(port.port)
        for i, source in enumerate(enforced.sources):
            now, then = enforced.row(p, i).tolist(), audit.row(p, i).tolist()
            for j, destination in enumerate(enforced.destinations):
                out.write(f"{source.id},{destination.id},{number},{port.protocol},{str(now[j]).lower()},{str(then[j]).lower()}\n")


def audit_matrix_changes(enforced: Matrix, audit: Matrix, audited: Sequence[PolicyRef], out: IO[str]) -> None:
    """After the enforced matrix: the flows the audited policies would change."""
    changed = list(differences(enforced, audit))
    denied = sum(1 for d in changed if d.allowed)
    out.write(
        f"\naudit: with {', '.join(_policies(audited))} enforced, {denied} allowed flow{'s' if denied != 1 else ''}"
        f" would be denied and {len(changed) - denied} denied flow{'s' if len(changed) - denied != 1 else ''} allowed\n"
    )
    for item in changed:
        change = "allowed now, denied under audit" if item.allowed else "denied now, allowed under audit"
        out.write(f"  {item.source} -> {item.destination}  {item.port}: {change}\n")
