"""record(plan, seconds) -> Recording: the flows that happen in a running lab, as flow records.

Read from conntrack in the lab's node netns (and its external hosts'): every flow to or from a
pod crosses its node's netns (pods sit behind routed veths), conntrack there sees it after any
DNAT (a Service's backend, not the node port), and it knows whether the flow was answered. The
lab's servers would see only the ports they serve, and logging every connection would slow the
prober they answer.

Conntrack is off in a netns until a rule needs it, so recording adds `table inet
netfence_record` to each of those netns: one base chain on the forward hook with the rule `ct
state new` and no verdict, which changes nothing but turns tracking on. It then polls
`conntrack -L -o extended,id` every `interval` seconds; an entry outlives its connection long
enough to be seen (TCP CLOSE 10 s, TIME_WAIT 120 s, UDP and ICMP 30 s). At the end it polls once
more and removes the table. Entries already present when recording starts are left out: they
are connections opened before. A connection that was open before tracking was on may be picked
up halfway, with its direction taken from the first packet seen; the lab's probes and servers
open a connection per exchange, so that does not happen with them.

Each entry becomes a flow as the destination saw it (analysis/suggest/flows.py): answered
flows only, TCP with its handshake completed. Lab pods and external workloads are written by
their ids (`ns/pod`, `ext/NAME`), since the lab may have chosen their addresses; other
addresses (the nodes) as they are.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from netfence.analysis.suggest.flows import ConntrackEntry, FlowRecord, parse_conntrack_line
from netfence.dataplane.apply import run_nft
from netfence.errors import NetfenceError
from netfence.lab.plan import LabPlan

TABLE = "netfence_record"
#: Seconds between two reads of conntrack: well under the 10 s a closed TCP entry stays.
INTERVAL = 1.0

_SCRIPT = f"""table inet {TABLE} {{}}
delete table inet {TABLE}
table inet {TABLE} {{
\tchain forward {{
\t\ttype filter hook forward priority filter; policy accept;
\t\tct state new
\t}}
}}
"""


@dataclass(frozen=True, slots=True)
class Recording:
    #: Distinct flows, sorted.
    flows: tuple[FlowRecord, ...]
    #: How many connections (conntrack entries, each counted once over the netns) became flows.
    connections: int
    #: Entries that did not become flows, by reason.
    skipped: dict[str, int]
    seconds: float


@dataclass
class Recorder:
    """Start, poll, stop; `stop` always removes the tables `start` added."""

    plan: LabPlan
    _before: set[tuple[str, str]] = field(default_factory=set)
    _seen: set[tuple[str, str]] = field(default_factory=set)
    _flows: set[FlowRecord] = field(default_factory=set)
    _skipped: Counter[str] = field(default_factory=Counter)
    #: Original tuples of the connections seen: one connection crosses up to three netns.
    _connections: set[str] = field(default_factory=set)
    _started: float = 0.0
    _netns: tuple[str, ...] = ()

    def start(self) -> None:
        if shutil.which("conntrack") is None:
            raise NetfenceError("lab record needs the conntrack tool (Debian: apt install conntrack)")
        self._netns = (*(n.netns for n in self.plan.nodes), *(x.netns for x in self.plan.externals))
        # Known entries first, then tracking on: an entry made in between is a new connection.
        for netns in self._netns:
            self._before.update(key for key, _ in self._entries(netns))
        self._started = time.monotonic()
        try:
            for netns in self._netns:
                run_nft(["-f", "-"], netns, _SCRIPT)
        except BaseException:
            self._remove_tables()
            raise

    def poll(self) -> None:
        names = {str(w.ip): w.id for w in self.plan.workloads}
        for netns in self._netns:
            for key, entry in self._entries(netns):
                if key in self._before or key in self._seen:
                    continue
                if not entry.answered:
                    continue  # may still be answered: look again at the next poll
                try:
                    flow = entry.flow()
                except ValueError as exc:
                    flow = f"unreadable entry: {exc}"
                if isinstance(flow, str):
                    self._seen.add(key)
                    self._skipped[flow] += 1
                    continue
                self._seen.add(key)
                self._connections.add(" ".join(f"{k}={v}" for k, v in sorted(entry.original.items())))
                source, destination = names.get(flow.source, flow.source), names.get(flow.destination, flow.destination)
                self._flows.add(FlowRecord(source, destination, flow.port))

    def stop(self) -> Recording:
        try:
            self.poll()
        finally:
            self._remove_tables()
        return Recording(tuple(sorted(self._flows)), len(self._connections), dict(self._skipped), time.monotonic() - self._started)

    def abort(self) -> None:
        """Stop without a last poll: remove the tables."""
        self._remove_tables()

    def _remove_tables(self) -> None:
        for netns in self._netns:
            try:
                run_nft(["-f", "-"], netns, f"table inet {TABLE} {{}}\ndelete table inet {TABLE}\n")
            except NetfenceError:
                pass  # the netns is gone (the lab went down): nothing left to remove

    def _entries(self, netns: str) -> list[tuple[tuple[str, str], ConntrackEntry]]:
        """(key, entry) of every conntrack entry in `netns`; the key is the entry's id (or its
        original tuple when the kernel gives none)."""
        proc = subprocess.run(
            ["ip", "netns", "exec", netns, "conntrack", "-L", "-o", "extended,id"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise NetfenceError(f"conntrack -L in {netns} failed: {proc.stderr.strip()}")
        found = []
        for line in proc.stdout.splitlines():
            try:
                entry = parse_conntrack_line(line)
            except ValueError as exc:
                raise NetfenceError(f"conntrack -L in {netns}: unreadable entry ({exc}): {line}") from None
            if entry is None:
                continue
            identity = entry.id or " ".join(f"{k}={v}" for k, v in sorted(entry.original.items()))
            found.append(((netns, f"{entry.protocol} {identity}"), entry))
        return found


def record(plan: LabPlan, seconds: float, interval: float = INTERVAL, stop: threading.Event | None = None) -> Recording:
    """Record for `seconds` (or until `stop` is set; Ctrl-C ends it early too), then return what was seen."""
    recorder = Recorder(plan)
    recorder.start()
    deadline = time.monotonic() + seconds
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                break
            if stop is not None:
                stop.wait(min(interval, left))
            else:
                time.sleep(min(interval, left))
            recorder.poll()
    except KeyboardInterrupt:
        pass
    except BaseException:
        recorder.abort()
        raise
    return recorder.stop()
