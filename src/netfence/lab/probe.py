"""probe(plan, ports) -> ProbeReport: what the kernel does with every ordered pair of pods and external
workloads, self included.

One thread, started in an empty netns of its own, enters each source pod's netns in turn (jobs
grouped by source) and creates non-blocking sockets there, at most `window` in flight, driven by
selectors (design notes §3, "Prober"):

    TCP   connect, then read the answer          ICMP  echo request on a datagram ICMP socket
    UDP   connected socket, request resent at T/3 and 2T/3; ICMP echo likewise

A fast pass uses T = 0.25 s; timeouts are then probed again with T = 2 s (longer than the first
SYN retransmit, so a lost SYN cannot fake a block). "answered" is never probed again: timing cannot
fake an answer. An answer must name the destination pod (ICMP: come from its address).
"""

from __future__ import annotations

import errno
import heapq
import resource
import selectors
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from netfence.analysis.matrix import Matrix
from netfence.errors import NetfenceError
from netfence.ir.types import EndpointInfo, EndpointKind
from netfence.lab.netns import NetnsId, current_netns, enter, isolated
from netfence.lab.plan import LabExternal, LabPlan, LabWorkload
from netfence.lab.servers import answer
from netfence.model.ports import FlowPort, Protocol

FAST_TIMEOUT = 0.25
SLOW_TIMEOUT = 2.0
WINDOW = 1024
#: How often a waiting prober looks at its stop flag (Ctrl-C).
_TICK = 0.1
_ECHO_REQUEST, _ECHO_REPLY = 8, 0


class Outcome(StrEnum):
    #: The destination pod answered: the kernel let the flow through.
    ANSWERED = "answered"
    #: TCP reset or ICMP port unreachable: delivered, but nothing listens on the port.
    REFUSED = "refused"
    #: ICMP host unreachable / admin prohibited: a reject (or no route).
    UNREACHABLE = "unreachable"
    #: Nothing came back: dropped.
    TIMEOUT = "timeout"
    #: Someone other than the destination answered: a lab routing error, never a policy verdict.
    WRONG_POD = "wrong-pod"


@dataclass(frozen=True)
class ProbeReport:
    endpoints: tuple[EndpointInfo, ...]
    ports: tuple[FlowPort, ...]
    #: outcomes[port, source, destination]: Outcome values
    outcomes: npt.NDArray[np.str_]
    seconds: float
    #: How many probes the slow pass repeated.
    reprobed: int = 0

    @property
    def allowed(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.outcomes == Outcome.ANSWERED.value, dtype=bool)

    @property
    def probes(self) -> int:
        return int(self.outcomes.size)

    def matrix(self) -> Matrix:
        """The kernel's verdicts, shaped like the analyzer's."""
        return Matrix(self.endpoints, self.ports, self.allowed)

    def counts(self) -> dict[str, int]:
        found = Counter(self.outcomes.ravel().tolist())
        return {o.value: found[o.value] for o in Outcome if found[o.value]}


def lab_endpoints(plan: LabPlan) -> tuple[EndpointInfo, ...]:
    """The lab's pods and external workloads as endpoints, in plan (and IR) order."""
    return tuple(
        EndpointInfo(w.id, w.namespace, w.name, (w.ip,), None, kind=EndpointKind.EXTERNAL)
        if isinstance(w, LabExternal)
        else EndpointInfo(w.id, w.namespace, w.name, (w.ip,), w.node)
        for w in plan.workloads
    )


def probe(
    plan: LabPlan,
    ports: Sequence[FlowPort],
    *,
    expected: npt.NDArray[np.bool_] | None = None,
    fast: float = FAST_TIMEOUT,
    slow: float = SLOW_TIMEOUT,
    window: int = WINDOW,
) -> ProbeReport:
    """Probe every (port, source, destination); `expected[p, i, j]`, when given, limits the
    slow pass to timeouts the analyzer predicted to be allowed."""
    for port in ports:
        if port.protocol is Protocol.SCTP:
            raise NetfenceError(f"cannot probe {port}: the lab has no SCTP (this kernel has no SCTP sockets)")
    ports = tuple(ports)
    workloads = plan.workloads
    n = len(workloads)
    if expected is not None and expected.shape != (len(ports), n, n):
        raise NetfenceError(f"expected verdicts of shape {(len(ports), n, n)}, got {expected.shape}")
    # Grouped by source: one setns per source pod and pass.
    jobs = [
        _Job(i, j, p, workloads[i], workloads[j], port)
        for i in range(n)
        for p, port in enumerate(ports)
        for j in range(n)
    ]
    window = min(window, _fd_budget())
    stop = threading.Event()
    started = time.monotonic()

    def work() -> tuple[list[Outcome], int]:
        prober = _Prober(plan, window, stop)
        results = prober.run(jobs, fast)
        again = [
            k
            for k, (job, outcome) in enumerate(zip(jobs, results))
            if outcome is Outcome.TIMEOUT and (expected is None or bool(expected[job.p, job.i, job.j]))
        ]
        if again:
            for k, outcome in zip(again, prober.run([jobs[k] for k in again], slow)):
                results[k] = outcome
        return results, len(again)

    results, reprobed = isolated(work, stop)
    outcomes = np.empty((len(ports), n, n), dtype="<U12")
    for job, outcome in zip(jobs, results):
        outcomes[job.p, job.i, job.j] = outcome.value
    return ProbeReport(lab_endpoints(plan), ports, outcomes, time.monotonic() - started, reprobed)


def _fd_budget() -> int:
    """Raise the soft open-files limit to the hard one; leave room for everything else."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return max(16, soft - 128)


@dataclass(frozen=True, slots=True)
class _Job:
    """Probe `port` (index p) from pod i to pod j."""

    i: int
    j: int
    p: int
    source: LabWorkload
    destination: LabWorkload
    port: FlowPort


@dataclass(eq=False, slots=True)
class _Active:
    k: int
    job: _Job
    sock: socket.socket
    deadline: float
    payload: bytes = b""
    connected: bool = False
    buffer: bytearray = field(default_factory=bytearray)
    done: bool = False


_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EACCES, errno.EPERM}


def classify_error(code: int) -> Outcome:
    """What a socket error on a probe means (ECONNREFUSED: no listener, EHOSTUNREACH: a reject...)."""
    if code == errno.ECONNREFUSED or code == errno.ECONNRESET:
        return Outcome.REFUSED
    if code in _UNREACHABLE:
        return Outcome.UNREACHABLE
    if code == errno.ETIMEDOUT:
        return Outcome.TIMEOUT
    raise NetfenceError(f"probe failed in the prober itself: {errno.errorcode.get(code, code)} ({code})")


class _Prober:
    def __init__(self, plan: LabPlan, window: int, stop: threading.Event) -> None:
        self.window = window
        self.stop = stop
        self.lab_ips = {str(p.ip) for p in plan.workloads}
        self.here: tuple[str, NetnsId] | None = None

    def run(self, jobs: Sequence[_Job], timeout: float) -> list[Outcome]:
        self.timeout = timeout
        self.results: list[Outcome | None] = [None] * len(jobs)
        self.selector = selectors.DefaultSelector()
        self.active: dict[int, _Active] = {}
        self.timers: list[tuple[float, int, _Active]] = []
        self.seq = 0
        launched = 0
        try:
            while launched < len(jobs) or self.active:
                if self.stop.is_set():
                    raise NetfenceError("probing interrupted")
                while launched < len(jobs) and len(self.active) < self.window:
                    self._launch(launched, jobs[launched])
                    launched += 1
                wait = _TICK
                if self.timers:
                    wait = min(wait, max(0.0, self.timers[0][0] - time.monotonic()))
                for key, events in self.selector.select(wait):
                    probe: _Active = key.data
                    if not probe.done:
                        self._on_event(probe, events)
                self._on_timers()
        finally:
            for probe in list(self.active.values()):
                self._close(probe)
            self.selector.close()
        assert all(r is not None for r in self.results)
        return [r for r in self.results if r is not None]

    # --- launching ------------------------------------------------------------------------

    def _enter(self, pod: LabWorkload) -> None:
        """Be inside the source pod's netns, checked before every socket the prober makes."""
        if self.here is None or self.here[0] != pod.netns:
            self.here = (pod.netns, enter(pod.netns))
        if current_netns() != self.here[1]:
            raise NetfenceError(f"prober is not inside {pod.netns}; refusing to send")

    def _launch(self, k: int, job: _Job) -> None:
        self._enter(job.source)
        destination = str(job.destination.ip)
        if destination not in self.lab_ips:  # the lab is a closed world
            raise NetfenceError(f"refusing to probe {destination}: not a lab pod address")
        protocol = job.port.protocol
        now = time.monotonic()
        if protocol is Protocol.TCP:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        elif protocol is Protocol.UDP:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        sock.setblocking(False)
        probe = _Active(k, job, sock, now + self.timeout)
        self.active[sock.fileno()] = probe
        self._timer(probe.deadline, probe)
        if protocol is Protocol.TCP:
            code = sock.connect_ex((destination, job.port.port or 0))
            if code == errno.EINPROGRESS:
                self.selector.register(sock, selectors.EVENT_WRITE, probe)
            elif code == 0:
                probe.connected = True
                self.selector.register(sock, selectors.EVENT_READ, probe)
            else:
                self._finish(probe, classify_error(code))
            return
        if protocol is Protocol.UDP:
            probe.payload = b"netfence-probe\n"
        else:
            probe.payload = struct.pack("!BBHHH", _ECHO_REQUEST, 0, 0, 0, k & 0xFFFF) + b"netfence-probe"
        code = sock.connect_ex((destination, job.port.port or 0))
        if code != 0:
            self._finish(probe, classify_error(code))
            return
        self.selector.register(sock, selectors.EVENT_READ, probe)
        for at in (now + self.timeout / 3, now + 2 * self.timeout / 3):  # resends
            self._timer(at, probe)
        self._send(probe)

    def _timer(self, at: float, probe: _Active) -> None:
        self.seq += 1
        heapq.heappush(self.timers, (at, self.seq, probe))

    # --- events ---------------------------------------------------------------------------

    def _send(self, probe: _Active) -> None:
        try:
            probe.sock.send(probe.payload)
        except (BlockingIOError, InterruptedError):
            pass  # the next resend tries again
        except OSError as exc:
            self._finish(probe, classify_error(exc.errno or 0))

    def _on_event(self, probe: _Active, events: int) -> None:
        protocol = probe.job.port.protocol
        if protocol is Protocol.TCP and not probe.connected:
            code = probe.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code == 0:
                probe.connected = True
                self.selector.modify(probe.sock, selectors.EVENT_READ, probe)
            elif code != errno.EINPROGRESS:
                self._finish(probe, classify_error(code))
            return
        try:
            data, sender = probe.sock.recvfrom(2048)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if protocol is Protocol.TCP and exc.errno == errno.ECONNRESET and probe.buffer:
                data, sender = b"", None
            else:
                self._finish(probe, classify_error(exc.errno or 0))
                return
        want = answer(probe.job.destination.id)
        if protocol is Protocol.TCP:
            probe.buffer += data
            if b"\n" in probe.buffer or not data:  # a whole answer, or end of stream
                line = bytes(probe.buffer).split(b"\n", 1)[0] + b"\n"
                self._finish(probe, Outcome.ANSWERED if line == want else Outcome.WRONG_POD)
        elif protocol is Protocol.UDP:
            self._finish(probe, Outcome.ANSWERED if data == want else Outcome.WRONG_POD)
        elif data[:1] == bytes([_ECHO_REPLY]):
            source = sender[0] if sender else None
            self._finish(probe, Outcome.ANSWERED if source == str(probe.job.destination.ip) else Outcome.WRONG_POD)

    def _on_timers(self) -> None:
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            at, _, probe = heapq.heappop(self.timers)
            if probe.done:
                continue
            if at >= probe.deadline:
                self._finish(probe, Outcome.TIMEOUT)
            elif not probe.connected and probe.payload:
                self._send(probe)

    def _finish(self, probe: _Active, outcome: Outcome) -> None:
        self.results[probe.k] = outcome
        self._close(probe)

    def _close(self, probe: _Active) -> None:
        if probe.done:
            return
        probe.done = True
        fd = probe.sock.fileno()
        if fd >= 0:
            self.active.pop(fd, None)
            try:
                self.selector.unregister(probe.sock)
            except (KeyError, ValueError):
                pass
        if probe.connected:
            # Abort (RST) instead of FIN: no TIME_WAIT left on either side, so a large matrix
            # leaves no socket behind (and `lab clean` reads short /proc/net/tcp tables).
            probe.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        probe.sock.close()
