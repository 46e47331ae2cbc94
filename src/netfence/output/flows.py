"""Flow records (dataplane/flows.py) as lines: a table row or one JSON object each, streamed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import IO, Any

from netfence.dataplane.flows import FlowRecord
from netfence.model.ports import Protocol
from netfence.output.data import rule_ref_data

#: (heading, width) of the table's columns; the last one is not padded.
COLUMNS = (
    ("TIME", 12),
    ("NODE", 14),
    ("DIRECTION", 9),
    ("FROM", 30),
    ("TO", 26),
    ("PROTO/PORT", 11),
    ("VERDICT", 12),
    ("TIER", 14),
    ("DECIDED BY", 0),
)


def _row(values: list[str]) -> str:
    cells = [value.ljust(width) if width else value for value, (_, width) in zip(values, COLUMNS)]
    return "  ".join(cells).rstrip()


def flows_header() -> str:
    return _row([heading for heading, _ in COLUMNS])


def _party(name: str | None, address: object, port: int | None) -> str:
    where = f"{address}:{port}" if port is not None else str(address)
    return f"{name} ({where})" if name else where


def flow_row(record: FlowRecord) -> str:
    header = record.header
    stamp = datetime.fromtimestamp(record.time).strftime("%H:%M:%S.%f")[:12]
    return _row(
        [
            stamp,
            record.node or "-",
            str(record.direction),
            _party(record.source, header.source, header.source_port),
            _party(record.destination, header.destination, None),
            record.port_text,
            record.verdict.word,
            record.tier or "-",
            record.decided_by,
        ]
    )


def flow_data(record: FlowRecord) -> dict[str, Any]:
    header = record.header
    rule = None
    entry = record.entry
    if entry is not None and entry.rule is not None:
        rule = rule_ref_data(entry.rule)
    protocol = str(header.protocol) if isinstance(header.protocol, Protocol) else header.protocol
    icmp = None if header.icmp_type is None else {"type": header.icmp_type, "code": header.icmp_code}
    return {
        "time": datetime.fromtimestamp(record.time, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "node": record.node,
        "direction": str(record.direction),
        "from": record.source,
        "to": record.destination,
        "fromAddress": str(header.source),
        "toAddress": str(header.destination),
        "protocol": protocol,
        "sourcePort": header.source_port,
        "port": header.destination_port,
        "icmp": icmp,
        "verdict": record.verdict.word,
        "tier": record.tier,
        "decidedBy": str(entry.decider) if entry is not None else None,
        "rule": rule,
        "text": record.decided_by,
        "logId": record.log_id,
    }


def write_flow(record: FlowRecord, fmt: str, out: IO[str]) -> None:
    """One record, flushed (a reader behind a pipe sees each flow as it happens)."""
    if fmt == "json":
        out.write(json.dumps(flow_data(record), sort_keys=True) + "\n")
    else:
        out.write(flow_row(record) + "\n")
    out.flush()
