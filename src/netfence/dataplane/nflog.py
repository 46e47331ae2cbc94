"""Reading NFLOG: the kernel's netfilter log over netlink (NETLINK_NETFILTER, subsystem ULOG).

What `log group N` in an nft rule sends: one NFULNL_MSG_PACKET message per logged packet with
the rule's prefix, the hook, the interfaces and the first bytes of the packet. The protocol is
small and stable (linux/netfilter/nfnetlink_log.h), so netfence speaks it with a plain socket
and struct, without libnetfilter_log:

    nlmsghdr (len, type = NFNL_SUBSYS_ULOG << 8 | msg, flags, seq, pid)
    nfgenmsg (family, version 0, res_id = group, big-endian)
    attributes (nlattr: len, type; 4-byte aligned; values big-endian)

A reader binds a group with NFULNL_MSG_CONFIG (NFULA_CFG_CMD bind), asks for the packet's
first `copy_range` bytes (NFULA_CFG_MODE copy packet), and for batches of at most 64 messages
sent at least every 10 ms (NFULA_CFG_QTHRESH, NFULA_CFG_TIMEOUT; the kernel's defaults are 100
messages or one second). Measured (bench/bench_nflog.py, 100,000 logged datagrams as fast as a
sender makes them): batches of 64 read all of them at 34,000/s for 7 us of reader CPU each; one
message per datagram lost four in five to a full receive buffer (16,000/s).

NFLOG instances belong to a network namespace: a socket sees what `log group N` logs in the
netns it was created in, so a reader for a node's netns opens its socket there (`netns`; the
socket stays bound to that netns whichever thread reads it). Unlike the LOG target (syslog),
NFLOG needs no `net.netfilter.nf_log_all_netns`: that sysctl gates only the syslog logger
outside the initial netns. One socket per group and netns: the kernel refuses to bind a group
another socket holds (EPERM), and the binding ends when the socket closes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import TypeVar

from netfence.errors import NetfenceError
from netfence.model.endpoints import IPAddress
from netfence.model.ports import Protocol

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = 0
NFULNL_MSG_CONFIG = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 1
NLM_F_ACK = 4
# Config attributes and commands.
NFULA_CFG_CMD = 1
NFULA_CFG_MODE = 2
NFULA_CFG_NLBUFSIZ = 3
NFULA_CFG_TIMEOUT = 4
NFULA_CFG_QTHRESH = 5
NFULNL_CFG_CMD_BIND = 1
NFULNL_COPY_PACKET = 2
# Packet attributes.
NFULA_PACKET_HDR = 1
NFULA_MARK = 2
NFULA_TIMESTAMP = 3
NFULA_IFINDEX_INDEV = 4
NFULA_IFINDEX_OUTDEV = 5
NFULA_PAYLOAD = 9
NFULA_PREFIX = 10

AF_INET, AF_INET6 = 2, 10
#: Netfilter hooks, as NFULA_PACKET_HDR numbers them.
HOOKS = {0: "prerouting", 1: "input", 2: "forward", 3: "output", 4: "postrouting"}
#: Enough for an IPv6 header, a few extension headers and a TCP header.
DEFAULT_COPY_RANGE = 256
CLONE_NEWNET = 0x40000000
SO_RCVBUFFORCE = 33

_NLMSG = struct.Struct("=IHHII")
_NFGEN = struct.Struct("=BBH")  # res_id is big-endian: packed apart
_NLATTR = struct.Struct("=HH")
_PORTED = {6: Protocol.TCP, 17: Protocol.UDP, 132: Protocol.SCTP, 136: Protocol.UDPLITE}
#: IPv6 extension headers that have the generic (next header, length in 8-byte units) form.
_IPV6_EXTENSIONS = {0, 43, 60, 135, 139, 140}

T = TypeVar("T")


class NflogError(NetfenceError):
    """The NFLOG socket could not be opened or bound."""


@dataclass(frozen=True, slots=True)
class NflogPacket:
    """One NFULNL_MSG_PACKET message."""

    group: int
    #: AF_INET or AF_INET6 (the packet's protocol family).
    family: int
    prefix: str
    payload: bytes
    #: The netfilter hook number (HOOKS), None when the message had no packet header.
    hook: int | None = None
    #: Seconds since the epoch from NFULA_TIMESTAMP; None when the kernel sent none.
    timestamp: float | None = None
    indev: int | None = None
    outdev: int | None = None


@dataclass(frozen=True, slots=True)
class PacketHeader:
    """The addresses and ports of a logged packet."""

    source: IPAddress
    destination: IPAddress
    #: A protocol netfence names, or the IANA number of another one.
    protocol: Protocol | int
    source_port: int | None = None
    destination_port: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None


# --- the wire format --------------------------------------------------------------------------


def _attribute(kind: int, value: bytes) -> bytes:
    header = _NLATTR.pack(_NLATTR.size + len(value), kind)
    padding = b"\0" * (-(len(header) + len(value)) % 4)
    return header + value + padding


def config_message(group: int, attributes: list[tuple[int, bytes]], seq: int, family: int = 0) -> bytes:
    """An NFULNL_MSG_CONFIG request for `group`, asking for an acknowledgement."""
    body = struct.pack("=BB", family, 0) + struct.pack("!H", group)
    body += b"".join(_attribute(kind, value) for kind, value in attributes)
    kind = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
    return _NLMSG.pack(_NLMSG.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


def bind_attributes(copy_range: int, qthreshold: int, timeout_cs: int) -> list[list[tuple[int, bytes]]]:
    """The config requests a reader sends, in order: bind, copy mode, batching."""
    return [
        [(NFULA_CFG_CMD, struct.pack("B", NFULNL_CFG_CMD_BIND))],
        [(NFULA_CFG_MODE, struct.pack("!IBB", copy_range, NFULNL_COPY_PACKET, 0))],
        [(NFULA_CFG_QTHRESH, struct.pack("!I", qthreshold)), (NFULA_CFG_TIMEOUT, struct.pack("!I", timeout_cs))],
    ]


def _attributes(data: bytes, offset: int, end: int) -> Iterator[tuple[int, bytes]]:
    while offset + _NLATTR.size <= end:
        length, kind = _NLATTR.unpack_from(data, offset)
        if length < _NLATTR.size or offset + length > end:
            return
        yield kind & 0x3FFF, data[offset + _NLATTR.size : offset + length]
        offset += (length + 3) & ~3


@dataclass(frozen=True, slots=True)
class NetlinkAck:
    seq: int
    #: 0 for success, else a positive errno.
    error: int


def parse_messages(data: bytes) -> Iterator[NflogPacket | NetlinkAck]:
    """The NFLOG packets and acknowledgements in one netlink datagram (other messages skipped)."""
    offset = 0
    while offset + _NLMSG.size <= len(data):
        length, kind, _flags, seq, _pid = _NLMSG.unpack_from(data, offset)
        if length < _NLMSG.size or offset + length > len(data):
            return
        end = offset + length
        body = offset + _NLMSG.size
        if kind == NLMSG_ERROR and end - body >= 4:
            (code,) = struct.unpack_from("=i", data, body)
            yield NetlinkAck(seq, -code)
        elif kind == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET and end - body >= _NFGEN.size:
            family = data[body]
            (group,) = struct.unpack_from("!H", data, body + 2)
            yield _packet(group, family, dict(_attributes(data, body + _NFGEN.size, end)))
        offset += (length + 3) & ~3


def _packet(group: int, family: int, attrs: dict[int, bytes]) -> NflogPacket:
    hook = None
    if len(attrs.get(NFULA_PACKET_HDR, b"")) >= 3:
        hook = attrs[NFULA_PACKET_HDR][2]
    timestamp = None
    if len(attrs.get(NFULA_TIMESTAMP, b"")) >= 16:
        seconds, micros = struct.unpack_from("!QQ", attrs[NFULA_TIMESTAMP])
        timestamp = seconds + micros / 1e6
    devices = [struct.unpack("!I", attrs[k][:4])[0] if len(attrs.get(k, b"")) >= 4 else None for k in (NFULA_IFINDEX_INDEV, NFULA_IFINDEX_OUTDEV)]
    prefix = attrs.get(NFULA_PREFIX, b"").split(b"\0", 1)[0].decode("ascii", "replace")
    return NflogPacket(group, family, prefix, attrs.get(NFULA_PAYLOAD, b""), hook, timestamp, devices[0], devices[1])


def decode_header(family: int, payload: bytes) -> PacketHeader | None:
    """Addresses, protocol and ports (or ICMP type and code) of an IPv4 or IPv6 packet; None when
    the bytes are not one. Ports are left out of non-first fragments and truncated headers."""
    source: IPAddress
    destination: IPAddress
    if family == AF_INET and len(payload) >= 20 and payload[0] >> 4 == 4:
        header_length = (payload[0] & 0x0F) * 4
        number = payload[9]
        source, destination = IPv4Address(payload[12:16]), IPv4Address(payload[16:20])
        fragment_offset = struct.unpack_from("!H", payload, 6)[0] & 0x1FFF
        l4 = payload[header_length:] if fragment_offset == 0 else b""
        return _transport(source, destination, number, l4, icmp=1)
    if family == AF_INET6 and len(payload) >= 40 and payload[0] >> 4 == 6:
        source, destination = IPv6Address(payload[8:24]), IPv6Address(payload[24:40])
        number, offset = payload[6], 40
        while number in _IPV6_EXTENSIONS or number == 44:
            if offset + 8 > len(payload):
                return PacketHeader(source, destination, _protocol(number))
            if number == 44:  # fragment header: 8 bytes; only the first fragment has ports
                first = struct.unpack_from("!H", payload, offset + 2)[0] & 0xFFF8 == 0
                number, offset = payload[offset], offset + 8
                if not first:
                    return PacketHeader(source, destination, _protocol(number))
                continue
            number, offset = payload[offset], offset + (payload[offset + 1] + 1) * 8
        return _transport(source, destination, number, payload[offset:], icmp=58)
    return None


def _protocol(number: int) -> Protocol | int:
    if number in _PORTED:
        return _PORTED[number]
    return {1: Protocol.ICMP, 58: Protocol.ICMPV6}.get(number, number)


def _transport(source: IPAddress, destination: IPAddress, number: int, l4: bytes, icmp: int) -> PacketHeader:
    protocol = _protocol(number)
    if number in _PORTED and len(l4) >= 4:
        sport, dport = struct.unpack_from("!HH", l4)
        return PacketHeader(source, destination, protocol, sport, dport)
    if number == icmp and len(l4) >= 2:
        return PacketHeader(source, destination, protocol, icmp_type=l4[0], icmp_code=l4[1])
    return PacketHeader(source, destination, protocol)


# --- the socket --------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _in_netns(netns: str, work: Callable[[], T]) -> T:
    """work() run in a thread that first entered `netns` (a path, or a name under /run/netns);
    setns() is per thread, so the caller's own netns never changes."""
    path = netns if netns.startswith("/") else f"/run/netns/{netns}"
    result: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"setns({path}): {os.strerror(code)}")
            finally:
                os.close(fd)
            result.append(work())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=body, name=f"netfence-nflog-{netns}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


class NflogSocket:
    """A netlink socket bound to one NFLOG group, in one network namespace."""

    def __init__(
        self,
        group: int,
        netns: str | None = None,
        copy_range: int = DEFAULT_COPY_RANGE,
        qthreshold: int = 64,
        timeout_cs: int = 1,
        receive_buffer: int = 8 << 20,
    ) -> None:
        self.group, self.netns = group, netns
        where = f" in network namespace {netns}" if netns else ""

        def make() -> socket.socket:
            return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)

        try:
            self.sock = _in_netns(netns, make) if netns else make()
        except OSError as exc:
            raise NflogError(f"cannot open an NFLOG socket{where}: {exc.strerror or exc}") from None
        #: Messages the kernel could not queue for us (receive buffer full), as far as known.
        self.overruns = 0
        try:
            try:  # past net.core.rmem_max: we hold CAP_NET_ADMIN, as binding NFLOG needs anyway
                self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, receive_buffer)
            except OSError:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            self.sock.bind((0, 0))
            for seq, attributes in enumerate(bind_attributes(copy_range, qthreshold, timeout_cs), start=1):
                self._request(config_message(group, attributes, seq), seq)
        except OSError as exc:
            self.sock.close()
            if exc.errno == errno.EPERM:
                raise NflogError(f"NFLOG group {group}{where} is bound by another reader") from None
            raise NflogError(f"cannot bind NFLOG group {group}{where}: {exc.strerror or exc}") from None

    def _request(self, message: bytes, seq: int) -> None:
        self.sock.send(message)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            for item in parse_messages(self.sock.recv(65536)):
                if isinstance(item, NetlinkAck) and item.seq == seq:
                    if item.error:
                        raise OSError(item.error, os.strerror(item.error))
                    return
        raise OSError(errno.ETIMEDOUT, "no answer from the kernel")

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> list[NflogPacket]:
        """The packets of one datagram (call when the socket is readable)."""
        try:
            data = self.sock.recv(1 << 20)
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:  # the kernel dropped messages: go on with the next ones
                self.overruns += 1
                return []
            raise
        return [item for item in parse_messages(data) if isinstance(item, NflogPacket)]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> NflogSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
