"""Flow records from NFLOG messages: who talked to whom, what the table did, which rule decided.

A logged packet becomes a FlowRecord: its addresses and ports (nflog.decode_header), the
verdict, direction and log id its prefix carries (nft/flowlog.py), the rule or tier end the id
stands for (from a catalog built from the same input as the table, or else from the comments of
the kernel table's log chains), and the endpoints its addresses belong to. Packets of one flow
(the same 5-tuple, direction and decision) within a window are one record: a dropped SYN
retransmitted, a UDP flow's every datagram.
"""

from __future__ import annotations

import json
import selectors
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from netfence.dataplane.apply import run_nft
from netfence.dataplane.nflog import HOOKS, NflogPacket, NflogSocket, PacketHeader, decode_header
from netfence.dataplane.nft.flowlog import Decider, LogEntry, LogVerdict, parse_prefix
from netfence.dataplane.nft.objects import TABLE_FAMILY, TABLE_NAME
from netfence.model.endpoints import IPAddress
from netfence.model.policies import Direction
from netfence.model.ports import Protocol

#: Packets of one flow within this many seconds make one record.
DEFAULT_WINDOW = 5.0


@dataclass(frozen=True, slots=True)
class FlowRecord:
    time: float
    #: The node (or netns) whose table logged the packet.
    node: str | None
    direction: Direction
    verdict: LogVerdict
    header: PacketHeader
    #: The endpoints the addresses belong to (None: outside the inventory).
    source: str | None
    destination: str | None
    log_id: str
    #: What decided, from the catalog; None when the id is not in it.
    entry: LogEntry | None = None
    #: The kernel's comment on the log rule, when only the table was there to ask.
    note: str | None = None
    hook: str | None = None

    @property
    def decided_by(self) -> str:
        if self.entry is not None:
            return self.entry.text
        return self.note or f"log id {self.log_id}"

    @property
    def tier(self) -> str | None:
        return self.entry.tier if self.entry is not None else None

    @property
    def port_text(self) -> str:
        header = self.header
        name = str(header.protocol) if isinstance(header.protocol, Protocol) else f"proto {header.protocol}"
        if header.destination_port is not None:
            return f"{name}/{header.destination_port}"
        if header.icmp_type is not None:
            return f"{name}/{header.icmp_type}:{header.icmp_code}"
        return name


class FlowLog:
    """Turns packets into records: translation and de-duplication (not thread-safe)."""

    def __init__(
        self,
        catalog: Mapping[str, LogEntry] | None = None,
        names: Mapping[IPAddress, str] | None = None,
        notes: Mapping[str, str] | None = None,
        window: float = DEFAULT_WINDOW,
    ) -> None:
        self.catalog = dict(catalog or {})
        self.names = dict(names or {})
        self.notes = dict(notes or {})
        self.window = window
        self._seen: dict[tuple[object, ...], float] = {}
        #: Packets that were not netfence's (another prefix) or not IP.
        self.skipped = 0

    def record(self, packet: NflogPacket, node: str | None, now: float | None = None) -> FlowRecord | None:
        """The packet's record, or None when it is not netfence's, not IP, or a repeat within the
        window of a flow already recorded."""
        parsed = parse_prefix(packet.prefix)
        header = decode_header(packet.family, packet.payload)
        if parsed is None or header is None:
            self.skipped += 1
            return None
        verdict, direction, log_id = parsed
        seen = packet.timestamp if packet.timestamp is not None else (time.time() if now is None else now)
        key = (node, direction, verdict, log_id, header)
        last = self._seen.get(key)
        if last is not None and 0 <= seen - last < self.window:
            return None
        self._seen[key] = seen
        if len(self._seen) > 100_000:  # forget flows older than the window
            self._seen = {k: t for k, t in self._seen.items() if seen - t < self.window}
        return FlowRecord(
            seen,
            node,
            direction,
            verdict,
            header,
            self.names.get(header.source),
            self.names.get(header.destination),
            log_id,
            self.catalog.get(log_id),
            self.notes.get(log_id),
            HOOKS.get(packet.hook) if packet.hook is not None else None,
        )


def kernel_notes(netns: str | None) -> dict[str, str]:
    """log id -> the comment of its log rule, read from the netfence table in `netns` (empty when
    there is no table or it logs nothing)."""
    listing = run_nft(["-j", "list", "table", TABLE_FAMILY, TABLE_NAME], netns)
    return log_notes(listing)


def log_notes(listing: str) -> dict[str, str]:
    """log id -> comment of the rules with a netfence NFLOG prefix in an `nft -j list` listing."""
    notes: dict[str, str] = {}
    for item in json.loads(listing).get("nftables", []):
        rule = item.get("rule")
        if not rule or "comment" not in rule:
            continue
        for expr in rule.get("expr", []):
            log = expr.get("log") if isinstance(expr, dict) else None
            parsed = parse_prefix(str(log.get("prefix", ""))) if isinstance(log, dict) else None
            if parsed is not None:
                notes[parsed[2]] = str(rule["comment"])
    return notes


@dataclass(frozen=True, slots=True)
class Source:
    """Where to read: an NFLOG group in one netns (None: this process's), named `node`."""

    node: str | None
    netns: str | None


def open_sources(sources: Sequence[Source], group: int) -> list[tuple[Source, NflogSocket]]:
    """Bind the group in every source's netns (all or none)."""
    opened: list[tuple[Source, NflogSocket]] = []
    try:
        for source in sources:
            opened.append((source, NflogSocket(group, source.netns)))
    except BaseException:
        for _, sock in opened:
            sock.close()
        raise
    return opened


def read_records(
    sockets: Sequence[tuple[Source, NflogSocket]],
    flows: FlowLog,
    count: int | None = None,
    duration: float | None = None,
) -> Iterator[FlowRecord]:
    """Records from bound sockets as they come, until `count` records or `duration` seconds
    (neither: until the consumer stops)."""
    yield from _read(sockets, flows, count, duration)


def _read(
    sockets: Sequence[tuple[Source, NflogSocket]], flows: FlowLog, count: int | None, duration: float | None
) -> Iterator[FlowRecord]:
    deadline = None if duration is None else time.monotonic() + duration
    emitted = 0
    with selectors.DefaultSelector() as selector:
        for source, sock in sockets:
            selector.register(sock, selectors.EVENT_READ, (source, sock))
        while count is None or emitted < count:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return
            for key, _ in selector.select(timeout=min(wait, 0.5) if wait is not None else 0.5):
                source, sock = key.data
                for packet in sock.read():
                    record = flows.record(packet, source.node)
                    if record is None:
                        continue
                    yield record
                    emitted += 1
                    if count is not None and emitted >= count:
                        return
