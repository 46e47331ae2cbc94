"""Single flows from any lab netns: one probe from a pod, a node or an external host (to a pod, or
to an address that forwards to one), and a TCP connection held open.

probe.py measures whole matrices between pods. The kernel tests also need a node as the source
(a node reaches its own pods whatever their policy, design notes §2) and an established
connection whose packets keep flowing while a node's table is replaced.

Sockets keep the netns they were made in, so each socket here is made by a thread that moved to
an empty netns of its own and then into the lab netns (`isolated`, `enter`); whichever thread
uses it afterwards, its packets start and end in that lab netns.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from netfence.errors import NetfenceError
from netfence.lab.netns import enter, isolated
from netfence.lab.plan import LabPlan, LabPod, LabWorkload
from netfence.lab.probe import SLOW_TIMEOUT, Outcome, classify_error
from netfence.lab.servers import answer
from netfence.model.ports import FlowPort, Protocol

_KINDS = {Protocol.TCP: socket.SOCK_STREAM, Protocol.UDP: socket.SOCK_DGRAM}
_REQUEST = b"netfence-probe\n"


def socket_in(netns: str, kind: socket.SocketKind) -> socket.socket:
    """A new IPv4 socket made inside lab netns `netns` (it stays there, whichever thread uses it)."""

    def work() -> socket.socket:
        enter(netns)
        return socket.socket(socket.AF_INET, kind)

    return isolated(work)


def probe_once(
    plan: LabPlan, source: str, destination: LabWorkload, port: FlowPort, timeout: float = SLOW_TIMEOUT
) -> Outcome:
    """One TCP connection (then read the answer) or one UDP request (resent at T/3 and 2T/3, as
    the prober does) from `source`, the netns of one of the plan's pods or nodes, to
    `destination`'s server. ANSWERED only when the answer names `destination`."""
    if source not in plan.netns or source == plan.underlay:
        raise NetfenceError(f"{source} is not a pod or node netns of lab {plan.name}")
    if destination not in plan.workloads:
        raise NetfenceError(f"{destination.id} is not a pod or external workload of lab {plan.name}")
    kind = _KINDS.get(port.protocol)
    if kind is None or port.port is None:
        raise NetfenceError(f"cannot probe {port} with one connection: TCP or UDP with a port number only")
    sock = socket_in(source, kind)
    try:
        if port.protocol is Protocol.TCP:
            return _tcp(sock, destination, port.port, timeout)
        return _udp(sock, destination, port.port, timeout)
    finally:
        _abort(sock)


def _tcp(sock: socket.socket, destination: LabWorkload, port: int, timeout: float) -> Outcome:
    deadline = time.monotonic() + timeout
    sock.settimeout(timeout)
    try:
        sock.connect((str(destination.ip), port))
        received = b""
        while b"\n" not in received:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            data = sock.recv(2048)
            if not data:
                break
            received += data
    except TimeoutError:
        return Outcome.TIMEOUT
    except OSError as exc:
        return classify_error(exc.errno or 0)
    return Outcome.ANSWERED if received.split(b"\n", 1)[0] + b"\n" == answer(destination.id) else Outcome.WRONG_POD


def _udp(sock: socket.socket, destination: LabWorkload, port: int, timeout: float) -> Outcome:
    try:
        sock.connect((str(destination.ip), port))
        for _ in range(3):
            sock.send(_REQUEST)
            sock.settimeout(timeout / 3)
            try:
                data = sock.recv(2048)
            except TimeoutError:
                continue
            return Outcome.ANSWERED if data == answer(destination.id) else Outcome.WRONG_POD
    except OSError as exc:
        return classify_error(exc.errno or 0)
    return Outcome.TIMEOUT


def _abort(sock: socket.socket) -> None:
    """Close with a reset when connected: no TIME_WAIT left behind in the lab."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class HeldConnection:
    """An established TCP connection from one pod to another whose both ends this process holds
    (no lab server involved). `exchange()` sends a payload there and back."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client, self.server = client, server

    def exchange(self, payload: bytes) -> float:
        """Send `payload` from the client, echo it from the server; return the round trip in
        seconds. OSError (TimeoutError included) when the connection broke or stalled."""
        started = time.monotonic()
        self.client.sendall(payload)
        self.server.sendall(_receive(self.server, len(payload)))
        if _receive(self.client, len(payload)) != payload:
            raise ConnectionError("held connection: the echo differs from what was sent")
        return time.monotonic() - started

    def close(self) -> None:
        _abort(self.client)
        _abort(self.server)


def _receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("held connection closed by the peer")
        data += chunk
    return data


@contextmanager
def hold_connection(
    plan: LabPlan, source: LabPod, destination: LabPod, port: int, timeout: float = SLOW_TIMEOUT
) -> Iterator[HeldConnection]:
    """A TCP connection from `source` to `destination`:`port`, open until the block ends.

    The listener is this process's, made in `destination`'s netns, so `port` must be one the
    lab's server does not serve there. Every send and receive waits at most `timeout` seconds.
    """
    if source not in plan.pods or destination not in plan.pods:
        raise NetfenceError(f"{source.id} and {destination.id} must be pods of lab {plan.name}")
    if FlowPort(Protocol.TCP, port) in destination.ports:
        raise NetfenceError(f"{destination.id} already serves TCP {port}; hold a connection on another port")
    listener = socket_in(destination.netns, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", port))
        listener.listen(1)
        listener.settimeout(timeout)
        client = socket_in(source.netns, socket.SOCK_STREAM)
        try:
            client.settimeout(timeout)
            client.connect((str(destination.ip), port))
            server, _ = listener.accept()
        except BaseException:
            _abort(client)
            raise
    finally:
        listener.close()
    held = HeldConnection(client, server)
    for sock in (client, server):
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        yield held
    finally:
        held.close()


def probe_address(
    plan: LabPlan,
    source: str,
    address: str,
    port: FlowPort,
    expect: Sequence[str],
    timeout: float = SLOW_TIMEOUT,
) -> Outcome:
    """One TCP connection or UDP request from the lab netns `source` to `address` (a node's
    nodePort, a load-balancer IP: something that forwards), ANSWERED when the answer names one of
    the workloads in `expect` (the Service's backends), WRONG_POD when another one answers."""
    if source not in plan.netns or source == plan.underlay:
        raise NetfenceError(f"{source} is not a pod, node or external netns of lab {plan.name}")
    kind = _KINDS.get(port.protocol)
    if kind is None or port.port is None:
        raise NetfenceError(f"cannot probe {port} with one connection: TCP or UDP with a port number only")
    wanted = {answer(item) for item in expect}
    sock = socket_in(source, kind)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port.port))
            if port.protocol is Protocol.TCP:
                received = b""
                deadline = time.monotonic() + timeout
                while b"\n" not in received:
                    sock.settimeout(max(0.001, deadline - time.monotonic()))
                    data = sock.recv(2048)
                    if not data:
                        break
                    received += data
                line = received.split(b"\n", 1)[0] + b"\n"
                return Outcome.ANSWERED if line in wanted else Outcome.WRONG_POD
            for _ in range(3):
                sock.send(_REQUEST)
                sock.settimeout(timeout / 3)
                try:
                    data = sock.recv(2048)
                except TimeoutError:
                    continue
                return Outcome.ANSWERED if data in wanted else Outcome.WRONG_POD
            return Outcome.TIMEOUT
        except TimeoutError:
            return Outcome.TIMEOUT
        except OSError as exc:
            return classify_error(exc.errno or 0)
    finally:
        _abort(sock)
