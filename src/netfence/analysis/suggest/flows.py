"""Observed flows: flow records as JSON lines, conntrack entries, and their ends resolved on an inventory.

A flow record names its ends as written: `namespace/pod`, `ext/NAME` (an external workload) or an
address. JSON lines hold one object per line:

    {"src": "shop/web-5d8f-x1", "dst": "shop/db-0", "port": 5432, "protocol": "TCP"}
    {"src": "shop/api-0", "dst": "203.0.113.7", "port": 443, "protocol": "TCP"}
    {"src": "tools/toolbox", "dst": "shop/web-5d8f-x1", "protocol": "ICMP"}

`protocol` is TCP (the default), UDP, SCTP or ICMP (an echo request, without a port).

A conntrack entry (`conntrack -L -o extended`, `/proc/net/nf_conntrack`, `conntrack -E` events)
is read as the destination saw it: the source is the reply tuple's destination (after any SNAT),
the destination its source and the port its source port (after DNAT: a Service's backend, not
its ClusterIP). Only connections that were answered are flows: entries marked [UNREPLIED] are
skipped, and TCP entries also need [ASSURED] (the handshake completed; a refused connection
never gets it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import ip_address

from netfence.errors import InputError, InputErrors, Location
from netfence.model.endpoints import EXTERNAL_ID_PREFIX, EndpointId, IPAddress, Pod, ServicePort
from netfence.model.inventory import Inventory
from netfence.model.ports import ICMP_ECHO_REQUEST, FlowPort, Protocol

#: The fields of a JSON flow record.
RECORD_FIELDS = ("src", "dst", "port", "protocol")
_RECORD_PROTOCOLS = (Protocol.TCP, Protocol.UDP, Protocol.SCTP, Protocol.ICMP)
_CONNTRACK_PROTOCOLS = {"tcp": Protocol.TCP, "udp": Protocol.UDP, "sctp": Protocol.SCTP, "icmp": Protocol.ICMP}
#: Keys of a conntrack tuple (ICMP tuples also carry `id`, the echo identifier).
_TUPLE_KEYS = frozenset({"src", "dst", "sport", "dport", "type", "code"})


@dataclass(frozen=True, slots=True, order=True)
class FlowRecord:
    """One observed flow, its ends as written: `namespace/pod`, `ext/NAME` or an address."""

    source: str
    destination: str
    port: FlowPort

    def __str__(self) -> str:
        return f"{self.source} -> {self.destination} {self.port}"


def record_data(record: FlowRecord) -> dict[str, object]:
    """The JSON object of a record (no `port` for ICMP)."""
    data: dict[str, object] = {"src": record.source, "dst": record.destination}
    if record.port.port is not None:
        data["port"] = record.port.port
    data["protocol"] = str(record.port.protocol)
    return data


def record_lines(records: Iterable[FlowRecord]) -> str:
    """JSON lines, one record each, keys in a fixed order."""
    return "".join(json.dumps(record_data(r)) + "\n" for r in records)


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadFlows:
    """Records with where each was read, and what was left out and why (one line each)."""

    records: tuple[tuple[FlowRecord, Location], ...]
    skipped: tuple[str, ...] = ()


def read_flow_text(text: str, name: str) -> ReadFlows:
    """JSON lines or conntrack output (told apart by the first non-blank line); InputErrors
    listing every malformed line."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if first.startswith("{"):
        return ReadFlows(tuple(_json_records(text, name)))
    return _conntrack_records(text, name)


def _json_records(text: str, name: str) -> list[tuple[FlowRecord, Location]]:
    records: list[tuple[FlowRecord, Location]] = []
    problems: list[InputError] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = Location(name, number)
        try:
            records.append((parse_record(line, where), where))
        except InputError as exc:
            problems.append(exc)
    if problems:
        raise InputErrors(problems)
    return records


def parse_record(line: str, where: Location) -> FlowRecord:
    """One JSON flow record; InputError naming the field otherwise."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise InputError(where, f"expected a JSON object (one flow per line), got invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError.expected(where, None, "a JSON object with src, dst, port, protocol", data)
    unknown = sorted(set(data) - set(RECORD_FIELDS))
    if unknown:
        raise InputError(where, f"unknown field {unknown[0]!r}; expected {', '.join(RECORD_FIELDS)}")
    ends = []
    for key in ("src", "dst"):
        value = data.get(key)
        if not isinstance(value, str) or not _is_end(value):
            raise InputError.expected(where, key, "namespace/pod, ext/NAME or an IP address", value)
        ends.append(value)
    raw_protocol = data.get("protocol", "TCP")
    protocol = next((p for p in _RECORD_PROTOCOLS if isinstance(raw_protocol, str) and raw_protocol.upper() == p.value), None)
    if protocol is None:
        raise InputError.expected(where, "protocol", "TCP, UDP, SCTP or ICMP", raw_protocol)
    port = data.get("port")
    if protocol is Protocol.ICMP:
        if port is not None:
            raise InputError.expected(where, "port", "no port with ICMP (an echo request)", port)
        return FlowRecord(ends[0], ends[1], FlowPort(protocol, None))
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InputError.expected(where, "port", "a port number 1-65535", port)
    return FlowRecord(ends[0], ends[1], FlowPort(protocol, port))


def _is_end(text: str) -> bool:
    if _address(text) is not None:
        return True
    namespace, slash, name = text.partition("/")
    return bool(namespace and slash and name and "/" not in name)


def _address(text: str) -> IPAddress | None:
    try:
        return ip_address(text)
    except ValueError:
        return None


# --- conntrack ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConntrackEntry:
    """One conntrack entry: its protocol, both tuples, its flags and (with `-o id`) its id."""

    protocol: str
    original: dict[str, str]
    reply: dict[str, str]
    unreplied: bool
    assured: bool
    id: str | None = None

    @property
    def answered(self) -> bool:
        """Whether the connection got an answer (TCP: its handshake completed)."""
        return not self.unreplied and (self.protocol != "tcp" or self.assured)

    def flow(self) -> FlowRecord | str:
        """The flow as the destination saw it, or why the entry is not one."""
        protocol = _CONNTRACK_PROTOCOLS.get(self.protocol)
        if protocol is None:
            return f"protocol {self.protocol} is not recorded"
        if self.unreplied:
            return "never answered"
        if protocol is Protocol.TCP and not self.assured:
            return "TCP handshake not completed"
        source, destination = self.reply.get("dst"), self.reply.get("src")
        if source is None or destination is None or _address(source) is None or _address(destination) is None:
            raise ValueError("a tuple without src or dst addresses")
        if protocol is Protocol.ICMP:
            if (self.original.get("type"), self.original.get("code")) != tuple(str(n) for n in ICMP_ECHO_REQUEST):
                return "ICMP other than an echo request"
            return FlowRecord(source, destination, FlowPort(protocol, None))
        port = self.reply.get("sport", "")
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"a {protocol} tuple without a port (sport={port!r})")
        return FlowRecord(source, destination, FlowPort(protocol, int(port)))


def parse_conntrack_line(line: str) -> ConntrackEntry | None:
    """One entry of conntrack's output (`-o extended` or not, `-o id`, an event's `[NEW]`
    prefix); None for lines that are not entries (the "N flow entries" summary, blanks).
    ValueError when the line looks like an entry but cannot be read."""
    words = line.split()
    if not words or line.startswith("conntrack v"):
        return None
    protocol = next((w for w in words[:6] if not w.startswith("[") and not w[0].isdigit() and "=" not in w and w not in ("ipv4", "ipv6")), None)
    if protocol is None:
        raise ValueError("no protocol name")
    starts = [i for i, w in enumerate(words) if w.startswith("src=")]
    if len(starts) != 2:
        raise ValueError(f"expected an original and a reply tuple (two src=), found {len(starts)}")
    original = _pairs(words[starts[0] : starts[1]], protocol, stop=False)
    reply_words = words[starts[1] :]
    reply = _pairs(reply_words, protocol, stop=True)
    rest = reply_words[_tuple_length(reply_words, protocol) :]
    ids = [w[3:] for w in rest if w.startswith("id=")]
    flags = {w for w in words if w.startswith("[") and w.endswith("]")}
    return ConntrackEntry(
        protocol.lower(),
        original,
        reply,
        unreplied="[UNREPLIED]" in flags,
        assured="[ASSURED]" in flags,
        id=ids[-1] if ids else None,
    )


def _tuple_length(words: Sequence[str], protocol: str) -> int:
    """How many of `words` (from a tuple's `src=`) belong to the tuple."""
    keys = _TUPLE_KEYS | ({"id"} if protocol.lower().startswith("icmp") else set())
    seen: set[str] = set()
    for count, word in enumerate(words):
        key, equals, _ = word.partition("=")
        if not equals or key not in keys or key in seen:
            return count
        seen.add(key)
    return len(words)


def _pairs(words: Sequence[str], protocol: str, *, stop: bool) -> dict[str, str]:
    taken = words[: _tuple_length(words, protocol)] if stop else words
    pairs: dict[str, str] = {}
    for word in taken:
        key, equals, value = word.partition("=")
        if equals:
            pairs.setdefault(key, value)
    return pairs


def _conntrack_records(text: str, name: str) -> ReadFlows:
    records: list[tuple[FlowRecord, Location]] = []
    skipped: dict[str, int] = {}
    problems: list[InputError] = []
    for number, line in enumerate(text.splitlines(), start=1):
        where = Location(name, number)
        try:
            entry = parse_conntrack_line(line)
            flow = None if entry is None else entry.flow()
        except ValueError as exc:
            problems.append(InputError(where, f"expected a conntrack entry (conntrack -L -o extended) or JSON flow lines: {exc}"))
            continue
        if isinstance(flow, FlowRecord):
            records.append((flow, where))
        elif flow is not None:
            skipped[flow] = skipped.get(flow, 0) + 1
    if problems:
        raise InputErrors(problems)
    notes = tuple(f"{name}: {count} conntrack entr{'y' if count == 1 else 'ies'} skipped: {why}" for why, count in sorted(skipped.items()))
    return ReadFlows(tuple(records), notes)


# --- resolving on an inventory -----------------------------------------------------------------

#: One end of a resolved flow: a pod of the inventory, or an address outside every pod.
End = Pod | IPAddress


@dataclass(frozen=True, slots=True)
class ResolvedFlow:
    source: End
    destination: End
    port: FlowPort


def end_name(end: End) -> str:
    return end.id if isinstance(end, Pod) else str(end)


class Ends:
    """Flow ends looked up in one inventory, with its indexes built once (records may be many)."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self._pods = {p.id: p for p in inventory.pods}
        self._by_address: dict[IPAddress, Pod] = {}
        for pod in inventory.pods:
            if not pod.host_network:  # hostNetwork pods share their node's address
                for ip in pod.ips:
                    self._by_address.setdefault(ip, pod)
        self._services = {ip: svc for svc in inventory.services for ip in svc.cluster_ips}
        self._backends: dict[str, tuple[Pod, ...]] = {}

    def resolve(self, record: FlowRecord) -> list[ResolvedFlow] | str:
        """The record's flows between inventory pods and outside addresses, or why it has none.

        A destination that is a Service's ClusterIP stands for each of its backends, at the
        Service port's target port.
        """
        sources = self._end(record.source)
        if isinstance(sources, str):
            return f"src: {sources}"
        address = _address(record.destination)
        service = self._services.get(address) if address is not None else None
        if service is not None:
            if service.id not in self._backends:
                self._backends[service.id] = self.inventory.backends(service)
            flows = []
            for backend in self._backends[service.id]:
                port = _target_port(service.ports, backend, record.port)
                if port is not None and not backend.host_network:
                    flows += [ResolvedFlow(source, backend, port) for source in sources]
            if not flows:
                return f"dst: Service {service.id} has no backend serving {record.port}"
            return flows
        destinations = self._end(record.destination)
        if isinstance(destinations, str):
            return f"dst: {destinations}"
        return [ResolvedFlow(s, d, record.port) for s in sources for d in destinations]

    def _end(self, text: str) -> list[End] | str:
        address = _address(text)
        if address is not None:
            return [self._by_address.get(address, address)]
        if text.startswith(EXTERNAL_ID_PREFIX):
            workload = self.inventory.external_workload(text.removeprefix(EXTERNAL_ID_PREFIX))
            if workload is None:
                return f"no external workload {text} in the inventory"
            if not workload.addresses:
                return f"external workload {text} has no address"
            return list(workload.addresses)
        pod = self._pods.get(EndpointId(text))
        if pod is None:
            return f"no pod {text} in the inventory"
        if pod.host_network:
            # A hostNetwork pod is its node's address: policies see it as a host outside the pods.
            if not pod.ips:
                return f"hostNetwork pod {text} has no address"
            return list(pod.ips)
        return [pod]


def _target_port(ports: Sequence[ServicePort], backend: Pod, port: FlowPort) -> FlowPort | None:
    for entry in ports:
        if entry.port != port.port or entry.protocol != port.protocol:
            continue
        target = entry.target_port
        if target is None:
            return port
        if isinstance(target, int):
            return FlowPort(port.protocol, target)
        named = next((c for c in backend.ports if c.name == target and c.protocol == port.protocol), None)
        return FlowPort(port.protocol, named.port) if named is not None else None
    return None

