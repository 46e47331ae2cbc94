"""Remove a lab, or every netfence lab leftover, even after a crash (design notes, gotcha 17).

1. Find the netns by name prefix, listing /run/netns directly.
2. Note each one's nsfs identity (st_dev, st_ino).
3. Collect the processes keeping them alive: a thread inside one (/proc/*/task/*/ns/net), an open
   fd on one (/proc/*/fd/*), sockets made inside one (their inodes, read from /proc/net inside
   each netns, matched with /proc/*/fd/*), and the lab's server found by its command line
   (`python -m netfence.lab.servers --name NAME`), which may still be starting up.
4. Stop those processes (SIGTERM, then SIGKILL); never this process or its ancestors.
5. `ip -force -batch -` of `netns del` lines; remove the state files.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from netfence.errors import NetfenceError
from netfence.lab.netns import NETNS_DIR, NetnsId, delete_netns, enter, isolated, list_netns
from netfence.lab.plan import NETNS_PREFIX, lab_prefix
from netfence.lab.state import STATE_DIR, lab_names, state_path

_GRACE = 1.0
_ROUNDS = 5
#: Pause between rounds: long enough for an orphaned `ip` to show its next netns.
_SETTLE = 0.02


@dataclass(frozen=True, slots=True)
class Cleaned:
    netns: tuple[str, ...]
    pids: tuple[int, ...]
    labs: tuple[str, ...]

    @property
    def nothing(self) -> bool:
        return not (self.netns or self.pids or self.labs)


def clean(name: str | None = None) -> Cleaned:
    """Remove lab `name` (every netns `netfence-<name>-*`), or with None everything `netfence-*`.

    Works in rounds: an `ip -batch` orphaned by a killed `lab up` may still add a netns or two
    after the first listing.
    """
    prefix = lab_prefix(name) if name is not None else NETNS_PREFIX
    labs = [name] if name is not None else lab_names()
    deleted: list[str] = []
    stopped: list[int] = []
    for _ in range(_ROUNDS):
        names = list_netns(prefix)
        # A server still starting up (its `lab up` killed) holds nothing yet: find it by name.
        pids = lab_servers(name)
        if not names and not pids:
            break
        stopped += stop_processes(pids | holders(names))
        delete_netns(names)
        deleted += names
        time.sleep(_SETTLE)
    left = list_netns(prefix)
    if left:
        raise NetfenceError(f"could not delete netns {', '.join(left)}")
    removed = [lab for lab in labs if state_path(lab).exists()]
    pattern = "*" if name is None else name
    if STATE_DIR.is_dir():
        # The state, the server's log, and a state write cut short (`<name>.tmp<pid>`).
        for glob in (f"{pattern}.json", f"{pattern}.log", f"{pattern}.tmp*"):
            for path in STATE_DIR.glob(glob):
                path.unlink(missing_ok=True)
    return Cleaned(tuple(sorted(set(deleted))), tuple(sorted(set(stopped))), tuple(removed))


def netns_ids(names: Iterable[str]) -> dict[NetnsId, str]:
    found = {}
    for name in names:
        try:
            st = os.stat(NETNS_DIR / name)
        except OSError:
            continue
        found[(st.st_dev, st.st_ino)] = name
    return found


def holders(names: Sequence[str]) -> set[int]:
    """Processes keeping any of these netns alive (this process and its ancestors excluded)."""
    if not names:
        return set()
    ids = netns_ids(names)
    sockets = socket_inodes(names)
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _holds(int(entry), ids, sockets):
            found.add(int(entry))
    return found - _self_and_ancestors()


def _holds(pid: int, ids: dict[NetnsId, str], sockets: set[int]) -> bool:
    base = f"/proc/{pid}"
    try:
        tasks = os.listdir(f"{base}/task")
        fds = os.listdir(f"{base}/fd")
    except OSError:
        return False
    if any(_same(f"{base}/task/{tid}/ns/net", ids) for tid in tasks):
        return True
    for fd in fds:
        path = f"{base}/fd/{fd}"
        try:
            target = os.readlink(path)
        except OSError:
            continue
        if target.startswith("socket:["):
            if int(target[8:-1]) in sockets:
                return True
        elif _same(path, ids):  # an open /run/netns/X (shown as "net:[...]" or the path)
            return True
    return False


def _same(path: str, ids: dict[NetnsId, str]) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) in ids


#: /proc/net tables listing a netns's sockets, and the column holding each socket's inode.
_SOCKET_TABLES = (
    ("tcp", 9), ("tcp6", 9), ("udp", 9), ("udp6", 9), ("raw", 9), ("raw6", 9),
    ("icmp", 9), ("icmp6", 9), ("unix", 6), ("netlink", 9), ("packet", 8),
)  # fmt: skip


def socket_inodes(names: Sequence[str]) -> set[int]:
    """Inodes of every socket made inside these netns (gotcha 17: such sockets keep a netns
    alive, and neither `ip netns pids` nor lsns shows them). Read from /proc/thread-self/net by
    a thread that enters each netns in turn; one pass instead of one `ss -N NAME -p` each."""

    def work() -> set[int]:
        found: set[int] = set()
        for name in names:
            try:
                enter(name)
            except OSError:  # deleted meanwhile, or a name left by an `ip netns add` cut short
                continue
            for table, column in _SOCKET_TABLES:
                try:
                    with open(f"/proc/thread-self/net/{table}") as handle:
                        lines = handle.read().splitlines()[1:]
                except OSError:
                    continue
                for line in lines:
                    fields = line.split()
                    if len(fields) > column and fields[column].isdigit() and fields[column] != "0":
                        found.add(int(fields[column]))
        return found

    return isolated(work)


def lab_servers(name: str | None) -> set[int]:
    """Running servers of lab `name` (None: of every lab), found by their command line
    `python -m netfence.lab.servers --name NAME`; a recorded pid may have been reused since."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if b"netfence.lab.servers" not in argv or b"--name" not in argv:
            continue
        where = argv.index(b"--name") + 1
        if name is None or (where < len(argv) and argv[where] == name.encode()):
            found.add(int(entry))
    return found


def stop_processes(pids: Iterable[int]) -> list[int]:
    """SIGTERM, wait up to a second, SIGKILL what is left; return those that were running."""
    mine = _self_and_ancestors()
    targets = [p for p in set(pids) if p not in mine and p > 1 and _alive(p)]
    for pid in targets:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + _GRACE
    while any(_alive(p) for p in targets) and time.monotonic() < deadline:
        time.sleep(0.01)
    for pid in targets:
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + _GRACE
    while any(_alive(p) for p in targets) and time.monotonic() < deadline:
        time.sleep(0.01)
    return targets


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    """Running: exists and is not a zombie (a zombie holds no namespaces or sockets)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _self_and_ancestors() -> set[int]:
    found = set()
    pid = os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as handle:
                pid = int(handle.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found
