"""The real agent process (`python -m netfence agent -f DIR`) under process faults, in a throwaway
netfence- network namespace: the harness of tests/robustness/test_agent_faults.py (a few trials)
and bench/faults.py (many).

A trial: the agent enforces cluster state k; state k+1 is written; the agent is killed (SIGKILL
of the agent alone, SIGKILL of its whole process group, or SIGTERM) after a random delay, or
while its `nft -f` runs (a PATH-wrapped nft that waits before running the real one, so the kill
lands mid-apply). Then the kernel's table, read back with `nft -j list table`, must be exactly
state k's or state k+1's, as the compiler renders them (applied in a reference netns and read
back the same way). Then the agent is started again: it must reach state k+1 by itself, and a
table that already is state k+1 is adopted as it is (its first sync "unchanged", the rules'
handles the same: no flush, no gap).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from netfence.agent.files import FileSource
from netfence.agent.kernel import SCRATCH_TABLE, KernelTable, NftKernel
from netfence.agent.reconcile import Reconciler
from netfence.agent.table import Interfaces, build_desired
from netfence.dataplane.apply import DataplaneError

NODE = "node-a"
REAL_NFT = shutil.which("nft") or "/usr/sbin/nft"
#: Kinds of kill: who gets the signal, and when.
MODES = (
    "sigkill-agent-random",  # the agent process alone (the OOM killer, kill -9 PID), any time
    "sigkill-agent-mid-apply",  # the agent alone while its nft -f runs (nft lives on)
    "sigkill-group-random",  # agent and nft together (a container killed), any time
    "sigkill-group-mid-apply",  # agent and nft together while nft -f runs
    "sigterm-random",  # a clean stop, any time
    "sigterm-mid-apply",  # a clean stop while nft -f runs
)


# --- namespaces ----------------------------------------------------------------------------------


def new_netns(tag: str = "fault") -> str:
    name = f"netfence-{tag}{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    return name


def delete_netns(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


@contextmanager
def netns(tag: str = "fault") -> Iterator[str]:
    name = new_netns(tag)
    try:
        yield name
    finally:
        delete_netns(name)


# --- cluster states ------------------------------------------------------------------------------


def _pod(i: int, apps: int) -> dict[str, Any]:
    ip = f"10.20.{i // 250}.{i % 250 + 1}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"p{i}", "namespace": "dev", "labels": {"app": f"a{i % apps}"}},
        "spec": {"nodeName": NODE if i % 2 == 0 else "node-b", "containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    }


def cluster(k: int, pods: int = 400, apps: int = 12) -> list[dict[str, Any]]:
    """State k: every state has other pods (a tenth of them absent, which ones depends on k);
    every other state has other policy ports (a replacement)."""
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev", "labels": {"kubernetes.io/metadata.name": "dev"}}}
    ]
    docs += [_pod(i, apps) for i in range(pods) if (i * 7 + k) % 10 != 0]
    for j in range(apps):
        docs.append({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"n{j}", "namespace": "dev"},
            "spec": {"podSelector": {"matchLabels": {"app": f"a{j}"}}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": f"a{(j + 1) % apps}"}}}],
                                  "ports": [{"port": 8000 + j + (k // 2) % 5}]}]},
        })  # fmt: skip
    return docs


def write_state(folder: Path, docs: list[dict[str, Any]]) -> None:
    """Replace the cluster file in one rename (the agent never reads half a file)."""
    temporary = folder / ".cluster.yaml.tmp"
    temporary.write_text(yaml.safe_dump_all(docs))
    os.replace(temporary, folder / "cluster.yaml")


Key = tuple[Any, ...]


def key(view: KernelTable | None) -> Key | None:
    """A table as read back, without counters and handles: what "the same ruleset" means."""
    if view is None:
        return None
    return (
        tuple(sorted(view.sets.items())),
        tuple(sorted(view.maps.items())),
        tuple(sorted(view.chains.items(), key=lambda c: c[0])),
        tuple(sorted(view.rules.items())),
    )


class References:
    """State k's table as the kernel holds it: compiled (the agent's own build, from the same
    files), applied whole in a reference netns, read back."""

    def __init__(self, reference_netns: str, pods: int, apps: int, folder: Path) -> None:
        self.netns, self.pods, self.apps, self.folder = reference_netns, pods, apps, folder
        self._known: dict[int, Key] = {}

    def period(self, k: int) -> int:
        return k % 10  # cluster(k) repeats every 10 states

    def __getitem__(self, k: int) -> Key:
        slot = self.period(k)
        if slot not in self._known:
            where = self.folder / f"ref{slot}"
            where.mkdir(parents=True, exist_ok=True)
            write_state(where, cluster(k, self.pods, self.apps))
            desired = build_desired(FileSource([str(where)]).snapshot(), NODE, Interfaces("nf"))
            kernel = NftKernel(self.netns)
            kernel.delete()
            Reconciler(kernel).converge(desired.table)
            found = key(kernel.read())
            assert found is not None
            self._known[slot] = found
        return self._known[slot]


# --- nft, wrapped --------------------------------------------------------------------------------


class NftWrapper:
    """A `nft` first on the agent's PATH: notes every run (pid, whether it applies, what its
    standard input is), waits `delay` seconds before an apply of the netfence table (`-f` without
    `--check`), then runs the real nft in the same process."""

    def __init__(self, folder: Path) -> None:
        self.bin = folder / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.log = folder / "nft-runs.log"
        self.delay_file = folder / "nft-delay"
        self.log.write_text("")
        self.set_delay(0.0)
        script = self.bin / "nft"
        script.write_text(
            "#!/bin/sh\n"
            "kind=other\n"
            'case " $* " in *" --check "*) kind=check ;; *" -f "*) kind=apply ;; esac\n'
            "stdin=$(readlink /proc/$$/fd/0)\n"
            # The scratch table (the kernel's print of rules, no hooks) told apart, when that can be
            # read without taking the script from nft (a file, not a pipe).
            'case "$stdin" in pipe:*) ;; *) grep -q netfence_scratch /proc/$$/fd/0 && kind=scratch-$kind ;; esac\n'
            f'echo "$$ $kind $stdin" >> {self.log}\n'
            f'if [ $kind = apply ]; then sleep "$(cat {self.delay_file})"; fi\n'
            f'exec {REAL_NFT} "$@"\n'
        )
        script.chmod(0o755)

    def set_delay(self, seconds: float) -> None:
        self.delay_file.write_text(f"{seconds:.3f}\n")

    def runs(self) -> list[tuple[int, str, str]]:
        """(pid, kind, what its standard input is); kind: "apply", "check", "scratch-apply",
        "scratch-check" (the scratch table) or "other"."""
        found = []
        for line in self.log.read_text().splitlines():
            pid, kind, stdin = (line.split(" ", 2) + ["", ""])[:3]
            found.append((int(pid), kind, stdin))
        return found

    def applies(self) -> int:
        return sum(1 for _, kind, _ in self.runs() if kind == "apply")

    def alive(self) -> list[int]:
        return [pid for pid, _, _ in self.runs() if _running(pid)]

    def wait_idle(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                raise AssertionError(f"nft still running: {self.alive()}")
            time.sleep(0.01)

    def env(self) -> dict[str, str]:
        return {**os.environ, "PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/sbin:/usr/bin')}"}


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan whose reaper has not come yet has exited all the same)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


# --- the agent -----------------------------------------------------------------------------------


class AgentProcess:
    """`netfence agent --node node-a -f FOLDER` inside `netns`, its own process group, JSON logs."""

    def __init__(self, netns: str, folder: Path, wrapper: NftWrapper, log: Path, verify_ms: int = 500) -> None:
        self.netns, self.folder, self.wrapper, self.log, self.verify_ms = netns, folder, wrapper, log, verify_ms
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_from = 0

    def start(self) -> None:
        self._log_from = self.log.stat().st_size if self.log.exists() else 0
        argv = ["nsenter", f"--net=/run/netns/{self.netns}", sys.executable, "-m", "netfence", "agent",
                "--node", NODE, "-f", str(self.folder), "--interval-ms", "20",
                "--verify-interval-ms", str(self.verify_ms), "--metrics-addr", "off", "--log-format", "json"]  # fmt: skip
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=self.wrapper.env(),
                                         start_new_session=True)  # fmt: skip

    def records(self) -> list[dict[str, Any]]:
        """This run's log records."""
        with open(self.log, "rb") as source:
            source.seek(self._log_from)
            text = source.read().decode(errors="replace")
        found = []
        for line in text.splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                found.append({"msg": line, "level": "raw"})
        return found

    def first_sync(self, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            synced = [r for r in self.records() if r.get("msg") == "synced"]
            if synced:
                return synced[0]
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the agent exited with {self.proc.returncode}: {self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError("no sync: " + self.tail())
            time.sleep(0.02)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def kill(self, how: str) -> None:
        assert self.proc is not None
        try:
            if how == "group":
                os.killpg(self.proc.pid, signal.SIGKILL)
            elif how == "agent":
                self.proc.send_signal(signal.SIGKILL)
            else:
                self.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill("group")
            self.proc.wait(10)


def read_key(netns: str) -> tuple[Key | None, KernelTable | None]:
    """The netfence table as the kernel holds it (read again if it changed between two commands)."""
    kernel = NftKernel(netns)
    for _ in range(50):
        try:
            view = kernel.read()
            return key(view), view
        except DataplaneError:
            time.sleep(0.02)
    view = kernel.read()
    return key(view), view


def has_scratch(netns: str) -> bool:
    return NftKernel(netns)._exists(SCRATCH_TABLE)


# --- trials --------------------------------------------------------------------------------------


@dataclass
class Tally:
    #: (mode, outcome) -> trials; outcome: "old", "new", "mix" or "none" (no table).
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: How the restarted agent's first sync went: unchanged (adopted), update, replace, create.
    restarts: Counter[str] = field(default_factory=Counter)
    #: Exit statuses after SIGTERM.
    sigterm_exits: Counter[int] = field(default_factory=Counter)
    #: nft runs whose standard input was a pipe (a script that a dying writer could cut short).
    piped_scripts: int = 0
    #: Kills that landed while an nft apply was running or about to (mid-apply modes).
    mid_apply: int = 0
    #: Problems found (each a line); empty when every property held.
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = []
        for mode in MODES:
            counts = {o: n for (m, o), n in sorted(self.outcomes.items()) if m == mode}
            if counts:
                lines.append(f"  {mode}: {sum(counts.values())} kills -> {counts}")
        lines.append(f"  restarts: {dict(self.restarts)}; SIGTERM exit statuses: {dict(self.sigterm_exits)}")
        lines.append(f"  kills mid-apply: {self.mid_apply}; scripts read from a pipe: {self.piped_scripts}")
        lines.append(f"  failures: {len(self.failures)}")
        return "\n".join(lines)


class Bench:
    """One agent in one netns, killed and restarted trial after trial."""

    def __init__(self, workdir: Path, netns: str, reference_netns: str, pods: int = 400, apps: int = 12, seed: int = 1) -> None:
        self.workdir, self.netns = workdir, netns
        self.pods, self.apps = pods, apps
        self.folder = workdir / "cluster"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.wrapper = NftWrapper(workdir)
        self.references = References(reference_netns, pods, apps, workdir / "references")
        self.agent = AgentProcess(netns, self.folder, self.wrapper, workdir / "agent.log")
        self.rng = random.Random(seed)
        self.k = 0
        self.tally = Tally()

    def start(self) -> None:
        write_state(self.folder, cluster(self.k, self.pods, self.apps))
        self.agent.start()
        self.agent.first_sync()
        self.converged()

    def close(self) -> None:
        self.agent.stop()
        self.wrapper.wait_idle()

    def converged(self, timeout: float = 30.0) -> KernelTable:
        want = self.references[self.k]
        deadline = time.monotonic() + timeout
        while True:
            found, view = read_key(self.netns)
            if found == want and view is not None:
                return view
            if time.monotonic() > deadline:
                raise AssertionError(f"the agent did not reach state {self.k}: {self.agent.tail()}")
            time.sleep(0.02)

    def trial(self, mode: str) -> str:
        """One change, one kill (`mode`), one restart. Returns the outcome; problems go to the tally."""
        tally = self.tally
        mid_apply = mode.endswith("mid-apply")
        how = "group" if mode.startswith("sigkill-group") else "agent" if mode.startswith("sigkill-agent") else "term"
        old = self.references[self.k]
        new = self.references[self.k + 1]
        delay = self.rng.uniform(0.05, 0.3) if mid_apply else 0.0
        self.wrapper.set_delay(delay)
        applies = self.wrapper.applies()
        self.k += 1
        write_state(self.folder, cluster(self.k, self.pods, self.apps))
        if mid_apply:
            deadline = time.monotonic() + 20
            while self.wrapper.applies() == applies:
                if time.monotonic() > deadline:
                    raise AssertionError("no apply: " + self.agent.tail())
                time.sleep(0.002)
            time.sleep(self.rng.uniform(0.0, delay + 0.05))
            tally.mid_apply += 1
        else:
            time.sleep(self.rng.uniform(0.0, 0.6))
        self.agent.kill(how)
        code = self.agent.wait()
        if how == "term":
            tally.sigterm_exits[code] += 1
            if code != 0:
                tally.failures.append(f"{mode}: exit status {code} after SIGTERM")
            if self.wrapper.alive():  # the agent waits for its nft before it exits
                tally.failures.append(f"{mode}: nft still running after the agent exited: {self.wrapper.alive()}")
        self.wrapper.wait_idle()  # an orphaned nft (the agent killed alone) finishes its apply
        self.wrapper.set_delay(0.0)
        found, before = read_key(self.netns)
        outcome = "old" if found == old else "new" if found == new else "none" if found is None else "mix"
        tally.outcomes[(mode, outcome)] += 1
        if outcome in ("mix", "none"):
            tally.failures.append(f"{mode}: the kernel holds {outcome} after the kill (state {self.k - 1} -> {self.k})")
        tally.piped_scripts += sum(1 for _, kind, stdin in self.wrapper.runs() if kind != "other" and stdin.startswith("pipe:"))
        self.wrapper.log.write_text("")
        # Restart: the agent reaches state k by itself, adopting a table that already is state k.
        self.agent.start()
        first = self.agent.first_sync()
        tally.restarts[str(first.get("result"))] += 1
        view = self.converged()
        if outcome == "new":
            if first.get("result") != "unchanged":
                tally.failures.append(f"{mode}: the table already was the new one, yet the restart's first sync was {first.get('result')}")
            elif before is not None and view.handles != before.handles:
                tally.failures.append(f"{mode}: the new table was rewritten at the restart, not adopted")
        elif first.get("result") not in ("update", "replace"):
            tally.failures.append(f"{mode}: after {outcome}, the restart's first sync was {first.get('result')}")
        if has_scratch(self.netns):
            tally.failures.append(f"{mode}: the scratch table {SCRATCH_TABLE} is left in the kernel after the restart")
        return outcome
