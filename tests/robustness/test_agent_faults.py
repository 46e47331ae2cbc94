"""Process faults of the real agent, in the kernel (marked lab; every namespace is a throwaway
`netfence-` one, removed at the end):

- SIGKILL (of the agent alone, of its whole process group) and SIGTERM, after a random delay or
  while its `nft -f` runs: the kernel holds exactly the old or the new ruleset, never a mix or
  none; SIGTERM exits 0, waits for its nft and leaves the rules enforcing; a restarted agent
  reaches the current state by itself and adopts a table that already is it (agent_faults.py);
- the node namespace the agent enforces in (`--netns NAME`) deleted while it runs: errors
  counted, /readyz 503, checks at their usual pace (no hot loop), the table created again when
  the namespace comes back; an agent running inside a namespace keeps it alive when its name is
  removed;
- a lab and its agents SIGKILLed at a random point: `netfence lab clean` leaves no namespace,
  no root-namespace interface and no process of that lab.

More trials: bench/faults.py.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from agent_faults import (
    MODES,
    NODE,
    AgentProcess,
    Bench,
    NftWrapper,
    References,
    cluster,
    netns,
    read_key,
    write_state,
)

from netfence.lab.netns import list_netns
from netfence.lab.plan import lab_prefix

pytestmark = pytest.mark.lab

#: Kill trials per mode (bench/faults.py runs hundreds).
TRIALS = int(os.environ.get("NETFENCE_FAULT_TRIALS", "1"))


@pytest.fixture(scope="module")
def reference_netns() -> Iterator[str]:
    with netns("ref") as name:
        yield name


def test_sigkill_and_sigterm_at_any_point_leave_the_old_or_the_new_table_and_a_restart_adopts_it(
    tmp_path: Path, reference_netns: str
) -> None:
    seed = random.randrange(1 << 30)
    with netns() as name:
        bench = Bench(tmp_path, name, reference_netns, pods=300, seed=seed)
        bench.start()
        try:
            for mode in MODES * TRIALS:
                bench.trial(mode)
        finally:
            bench.close()
        print(f"\nseed {seed}\n" + bench.tally.summary())
        assert bench.tally.failures == [], f"seed {seed}"
        assert sum(bench.tally.outcomes.values()) == len(MODES) * TRIALS
        assert bench.tally.piped_scripts == 0  # every script reached nft whole, as a file
        assert set(bench.tally.sigterm_exits) == {0}


# --- a node namespace that vanishes ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def _wait(condition: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and of its children it has waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _errors(log: Path) -> int:
    return sum(1 for line in log.read_text(errors="replace").splitlines() if '"level": "error"' in line)


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_node_namespace_that_vanishes_is_reported_without_a_hot_loop_and_enforced_again_when_it_comes_back(
    tmp_path: Path, reference_netns: str
) -> None:
    folder = tmp_path / "cluster"
    folder.mkdir()
    references = References(reference_netns, 60, 4, tmp_path / "references")
    wrapper = NftWrapper(tmp_path)
    port = _free_port()
    name = f"netfence-gone{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    write_state(folder, cluster(0, 60, 4))
    argv = [sys.executable, "-m", "netfence", "agent", "--node", NODE, "-f", str(folder), "--netns", name,
            "--interval-ms", "20", "--verify-interval-ms", "200", "--metrics-addr", f"127.0.0.1:{port}",
            "--log-format", "json"]  # fmt: skip
    log = tmp_path / "agent.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=wrapper.env(), start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _get(base + "/readyz")[0] == 200, "ready")
        assert read_key(name)[0] == references[0]

        subprocess.run(["ip", "netns", "del", name], check=True)
        _wait(lambda: _get(base + "/readyz")[0] == 503, "/readyz to fail")
        code, text = _get(base + "/readyz")
        assert name in text, text
        write_state(folder, cluster(1, 60, 4))  # a change while the namespace is gone: it cannot apply
        errors, cpu = _errors(log), _cpu_seconds(proc.pid)
        time.sleep(2.0)
        errors, cpu = _errors(log) - errors, _cpu_seconds(proc.pid) - cpu
        assert proc.poll() is None  # reported, not a crash (nor a crash loop)
        assert 2 <= errors <= 40, errors  # a check (and a retry) every 200 ms, not a loop
        assert cpu < 1.0, cpu
        assert _metric(_get(base + "/metrics")[1], "netfence_apply_errors_total") >= 2
        assert _get(base + "/healthz")[0] == 200  # alive: restarting would not bring the namespace back

        subprocess.run(["ip", "netns", "add", name], check=True)  # back (empty, as after a node reboot)
        _wait(lambda: _get(base + "/readyz")[0] == 200, "ready again")
        assert read_key(name)[0] == references[1]  # the current state, created again by itself
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()[-2000:]
        wrapper.wait_idle()
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def test_an_agent_inside_a_namespace_keeps_it_alive_when_its_name_is_removed(tmp_path: Path, reference_netns: str) -> None:
    """`ip netns del` removes a name, not a namespace a process lives in: the agent goes on
    enforcing there; the namespace goes when the agent does."""
    folder = tmp_path / "cluster"
    folder.mkdir()
    references = References(reference_netns, 60, 4, tmp_path / "references")
    write_state(folder, cluster(0, 60, 4))
    with netns() as name:
        agent = AgentProcess(name, folder, NftWrapper(tmp_path), tmp_path / "agent.log")
        agent.start()
        try:
            agent.first_sync()
            assert agent.proc is not None
            held = f"/proc/{agent.proc.pid}/ns/net"
            inode = os.stat(held).st_ino
            subprocess.run(["ip", "netns", "del", name], check=True)
            write_state(folder, cluster(1, 60, 4))
            _wait(lambda: read_key(held)[0] == references[1], "the change, applied in the nameless namespace")
            assert agent.proc.poll() is None and os.stat(held).st_ino == inode
        finally:
            agent.stop()


# --- lab clean after a lab killed at a random point ----------------------------------------------


LAB_CLUSTER = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "labels": {"kubernetes.io/metadata.name": "x"}}},
    *(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "x", "labels": {"app": f"a{i % 2}"}},
         "spec": {"nodeName": f"n{i % 2}", "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80}]}]},
         "status": {"phase": "Running", "podIP": f"10.77.0.{i + 2}"}}
        for i in range(4)
    ),
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "x"},
     "spec": {"podSelector": {"matchLabels": {"app": "a0"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a1"}}}]}]}},
]  # fmt: skip


def root_interfaces() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def lab_processes(name: str) -> list[str]:
    """Processes whose command line names lab `name` (its agents, its server, lab verbs)."""
    found = []
    marks = (f"netfence-{name}-".encode(), b"--name\0" + name.encode() + b"\0", b"--lab\0" + name.encode() + b"\0")
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes() + b"\0"
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(mark in argv for mark in marks):
            found.append(entry + ": " + argv.replace(b"\0", b" ").decode(errors="replace"))
    return found


def kill_lab_and_clean(workdir: Path, name: str, delay: float) -> dict[str, object]:
    """`lab up` then `lab agents` as one process tree, SIGKILLed after `delay` seconds (wherever
    that falls), then `lab clean --name NAME`. Returns what was found before and after."""
    files = workdir / "files"
    files.mkdir(parents=True, exist_ok=True)
    (files / "cluster.yaml").write_text(yaml.safe_dump_all(LAB_CLUSTER))
    netfence = f"{sys.executable} -m netfence"
    script = (f"{netfence} lab up -f {files} --name {name} >/dev/null && "
              f"exec {netfence} lab agents -f {files} --name {name} --interval-ms 20")  # fmt: skip
    before = root_interfaces()
    with open(workdir / f"{name}.log", "ab") as out:
        tree = subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    time.sleep(delay)
    running = tree.poll() is None
    try:
        os.killpg(tree.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    tree.wait()
    left = {"netns": len(list_netns(lab_prefix(name))), "processes": len(lab_processes(name)), "running": running}
    cleaned = subprocess.run([sys.executable, "-m", "netfence", "lab", "clean", "--name", name],
                             capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    time.sleep(0.5)  # an orphaned `ip -batch` would show a namespace it adds late by now
    return {
        **left,
        "clean_status": cleaned.returncode,
        "clean_output": cleaned.stdout + cleaned.stderr,
        "netns_after": list_netns(lab_prefix(name)),
        "processes_after": lab_processes(name),
        "interfaces_added": sorted(root_interfaces() - before),
    }


#: When the SIGKILL lands (seconds after the start): `lab up` takes about 1.5 s (Python starting,
#: then namespaces, links, the server), `lab agents` starts right after it.
WHEN = {"during-lab-up": (0.6, 1.6), "during-lab-agents": (2.0, 5.0)}


@pytest.mark.parametrize("when", list(WHEN))
def test_lab_clean_recovers_a_lab_killed_at_a_random_point(tmp_path: Path, when: str) -> None:
    name = f"k{os.getpid()}x{uuid.uuid4().hex[:6]}"
    try:
        found = kill_lab_and_clean(tmp_path, name, random.uniform(*WHEN[when]))
    finally:
        subprocess.run([sys.executable, "-m", "netfence", "lab", "clean", "--name", name], capture_output=True, check=False)
    print(f"\n{found}")
    assert found["clean_status"] == 0, found["clean_output"]
    assert found["netns_after"] == [] and found["processes_after"] == [] and found["interfaces_added"] == [], found
