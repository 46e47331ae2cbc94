"""`netfence inventory`: the catalog of endpoints and Services as a table or as JSON."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import IO, Any

from rich.table import Table

from netfence.ir.catalog import CatalogEntry, CatalogPort
from netfence.output.render import console, dump


_NOUNS = {"pod": "pod", "service": "service", "external": "external workload", "host-endpoint": "host endpoint"}


def inventory_table(entries: Sequence[CatalogEntry], out: IO[str]) -> None:
    """One row per entry: kind, id, addresses, ports, node, Services, own labels."""
    buffer = io.StringIO()
    con = console(buffer, 400)
    table = Table(box=None, pad_edge=False)
    for title in ("KIND", "NAME", "ADDRESSES", "PORTS", "NODE", "SERVICES", "LABELS"):
        table.add_column(title, no_wrap=True)
    for entry in entries:
        services = [s for s in entry.services if entry.kind != "service"]
        table.add_row(
            entry.kind,
            entry.id,
            ",".join(str(a) for a in entry.addresses) or "-",
            ",".join(str(p) for p in entry.ports) or "-",
            entry.node or "-",
            ",".join(services) or "-",
            str(entry.labels) or "-",
        )
    con.print(table)
    out.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))
    kinds = {kind: sum(1 for e in entries if e.kind == kind) for kind in dict.fromkeys(e.kind for e in entries)}
    summary = ", ".join(f"{count} {_NOUNS[kind]}{'s' if count != 1 else ''}" for kind, count in kinds.items())
    out.write(f"{len(entries)} matching{': ' + summary if summary else ''}\n")


def inventory_dump(entries: Sequence[CatalogEntry], out: IO[str]) -> None:
    """`{"items": [...]}`, in listing order, keys sorted."""
    dump({"items": [_entry_data(e) for e in entries]}, "json", out)


def _entry_data(entry: CatalogEntry) -> dict[str, Any]:
    return {
        "kind": entry.kind,
        "id": entry.id,
        "namespace": entry.namespace,
        "name": entry.name,
        "addresses": [str(a) for a in entry.addresses],
        "ports": [_port_data(p) for p in entry.ports],
        "node": entry.node,
        "services": list(entry.services),
        "labels": dict(entry.labels),
        "derivedLabels": dict(entry.derived),
    }


def _port_data(port: CatalogPort) -> dict[str, Any]:
    data: dict[str, Any] = {"port": port.port, "protocol": str(port.protocol), "name": port.name}
    if port.target_port is not None:
        data["targetPort"] = port.target_port
    if port.node_port is not None:
        data["nodePort"] = port.node_port
    return data
