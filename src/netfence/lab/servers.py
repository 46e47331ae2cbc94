"""One background process answering on every pod's ports (design notes §3, "Servers").

`python -m netfence.lab.servers --name LAB` reads the lab's state file, moves to an empty netns
of its own, and for each pod enters the pod netns, binds a TCP listener and a UDP socket on each
of the pod's ports on 0.0.0.0 (sockets keep the netns they were made in), and comes back. Then it
forks: the child serves, the parent prints `ready <child pid>` and exits, so the caller never
owns a running child (and `lab up`, `lab probe`, `lab down` can be separate invocations).

A TCP connection gets the pod id and a newline, then the server closes it; a UDP datagram is
answered with the same. The answer names the pod, which catches routing mistakes.
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from netfence.errors import NetfenceError
from netfence.lab.netns import inside, unshare_net
from netfence.lab.plan import LabPlan
from netfence.lab.state import load_state, log_path
from netfence.model.ports import Protocol

_READY = "ready"
_BACKLOG = 4096
_START_TIMEOUT = 60.0


def answer(pod_id: str) -> bytes:
    """What a pod's server says: its id and a newline."""
    return f"{pod_id}\n".encode()


@dataclass(frozen=True, slots=True)
class _Listener:
    protocol: Protocol
    reply: bytes


def start_servers(plan: LabPlan) -> int:
    """Start the lab's server in the background (the state file must exist); return its pid."""
    log = log_path(plan.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "netfence.lab.servers", "--name", plan.name],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
            close_fds=True,
        )
        try:
            out, _ = proc.communicate(timeout=_START_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise NetfenceError(f"lab {plan.name}: the server did not start within {_START_TIMEOUT:.0f} s") from None
    words = out.decode(errors="replace").split()
    if proc.returncode != 0 or len(words) != 2 or words[0] != _READY or not words[1].isdigit():
        detail = log.read_text(errors="replace").strip().splitlines()
        raise NetfenceError(f"lab {plan.name}: the server failed to start: {detail[-1] if detail else out!r}")
    return int(words[1])


def bind_all(plan: LabPlan) -> tuple[list[socket.socket], dict[int, _Listener]]:
    """Every pod's (and external workload's) sockets, each made inside its own netns."""
    sockets: list[socket.socket] = []
    listeners: dict[int, _Listener] = {}
    for pod in plan.workloads:
        with inside(pod.netns):
            for port in pod.ports:
                if port.protocol is Protocol.TCP:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind(("0.0.0.0", port.port or 0))
                    sock.listen(_BACKLOG)
                else:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    sock.bind(("0.0.0.0", port.port or 0))
                sock.setblocking(False)
                sockets.append(sock)
                listeners[sock.fileno()] = _Listener(port.protocol, answer(pod.id))
    return sockets, listeners


def serve(sockets: Sequence[socket.socket], listeners: dict[int, _Listener]) -> None:
    """Answer forever (until SIGTERM/SIGKILL)."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        selector.register(sock, selectors.EVENT_READ, listeners[sock.fileno()])
    while True:
        for key, _ in selector.select():
            ready = key.fileobj
            assert isinstance(ready, socket.socket)
            listener: _Listener = key.data
            if listener.protocol is Protocol.TCP:
                _accept_all(ready, listener.reply)
            else:
                _echo_all(ready, listener.reply)


def _accept_all(sock: socket.socket, reply: bytes) -> None:
    while True:
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # e.g. ECONNABORTED: the client gave up before we accepted
            continue
        try:
            conn.setblocking(False)
            conn.send(reply)  # a few bytes into an empty send buffer: never blocks
        except OSError:
            pass
        finally:
            conn.close()


def _echo_all(sock: socket.socket, reply: bytes) -> None:
    while True:
        try:
            _, peer = sock.recvfrom(2048)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # an ICMP error queued on the socket; nothing to answer
            continue
        try:
            sock.sendto(reply, peer)
        except OSError:
            pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netfence.lab.servers")
    parser.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    try:
        state = load_state(args.name)
        if state is None:
            raise NetfenceError(f"no state file for lab {args.name}")
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        # Start from an empty netns: a socket made before entering a pod reaches nothing.
        unshare_net()
        sockets, listeners = bind_all(state.plan)
    except (NetfenceError, OSError) as exc:
        print(f"netfence lab server: {exc}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    pid = os.fork()
    if pid != 0:
        print(f"{_READY} {pid}", flush=True)
        os._exit(0)
    # The child: let go of the caller's pipe at once, so its read sees end of file.
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    try:
        serve(sockets, listeners)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
