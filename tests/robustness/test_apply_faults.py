"""Faults on the apply path, in throwaway netfence network namespaces (marked lab; the node agent's
own faults — API server errors, restarts — are tested with the agent):

- a transaction the kernel rejects, at any line and however it fails, leaves the table exactly as it
  was (read back equals before), through apply_table as through nft itself;
- a node network namespace that is gone, or vanishes while tables are being applied, is a
  DataplaneError (one line, exit 2 from the CLI), never a traceback;
- `nft -f` killed with SIGKILL at random points of a large transition — or the whole process group
  of a Python process applying it — leaves the old table or the new one, never a mix;
- a transaction cut short can still parse and apply half a table, so nft gets every script whole,
  as a file written before it starts (a pipe's writer killed halfway would hand it a cut one); the
  process applying it killed alone while nft runs on leaves the new table.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netfence.dataplane.apply import (
    DataplaneError,
    apply_script,
    apply_table,
    delete_table,
    kernel_names,
    read_counters,
    read_table,
    run_nft,
)
from netfence.dataplane.nft.objects import AddressSet, Chain, Rule, Table, VerdictMap, transition_script
from netfence.lab.clean import clean

pytestmark = pytest.mark.lab

#: How many kill points each SIGKILL test tries.
KILLS = 40


def new_netns() -> str:
    name = f"netfence-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    return name


def delete_netns(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


@pytest.fixture
def netns() -> Iterator[str]:
    name = new_netns()
    try:
        yield name
    finally:
        delete_netns(name)


def big_table(seed: int, sets: int = 40, elements: int = 250, rules_per_chain: int = 60) -> Table:
    """A table of the compiler's shape, large enough that applying it takes a while: interval sets
    of pod addresses, chains of rules matching them, a verdict map of interfaces."""
    rng = random.Random(seed)
    address_sets = []
    for i in range(sets):
        chosen = sorted(rng.sample(range(1, 60000), elements))
        items = tuple(f"10.{i}.{n // 250}.{n % 250 + 1}" for n in chosen)
        # Half the names are shared by every seed: a transition keeps and refills those.
        name = f"in_{i:010x}" if i % 2 == 0 else f"in_{seed:04x}{i:06x}"
        address_sets.append(AddressSet(name, "ipv4_addr", items))
    chains = []
    for c in range(8):
        rules = []
        for r in range(rules_per_chain):
            used = rng.choice(address_sets).name
            port = rng.randrange(1, 65535)
            verdict = rng.choice(("accept", "drop", "return"))
            rules.append(Rule(f"ip saddr @{used} tcp dport {port} counter {verdict}", f"NetworkPolicy s{seed}/p{c} ingress[{r}]"))
        rules.append(Rule("counter drop", "default: isolated, no rule allowed"))
        chains.append(Chain(f"in_c{c}_t{seed % 3}", tuple(rules)))
    forward = Chain(
        "forward",
        (Rule("ct state established,related accept"), Rule("ct state invalid drop"), Rule("oifname vmap @ingress_ep")),
        "type filter hook forward priority filter; policy accept;",
    )
    interfaces = tuple((f"nf{seed:02x}{i:09x}", chains[i % len(chains)].name) for i in range(200))
    return Table(tuple(sorted(address_sets, key=lambda s: s.name)), (VerdictMap("ingress_ep", interfaces),), (forward, *chains))


OLD, NEW = big_table(1), big_table(2)


# --- a rejected transaction -----------------------------------------------------------------------

#: Lines the kernel (or nft) refuses, each appended to an otherwise good transition: everything
#: before it in the transaction would have replaced the whole table.
REJECTED = {
    "syntax": "add rule inet netfence forward ip saddr 10.0.0.1 acept",
    "unknown set": "add rule inet netfence forward ip saddr @no_such_set accept",
    "unknown chain": "add rule inet netfence forward jump no_such_chain",
    "ipv6 element in an ipv4 set": f"add element inet netfence {NEW.sets[0].name} {{ fd00::1 }}",
    "delete a chain that does not exist": "delete chain inet netfence no_such_chain",
    "overlapping interval": f"add element inet netfence {NEW.sets[0].name} {{ 10.0.0.0/8, 10.1.0.0/16 }}",
    "base chain moved to another hook": "add chain inet netfence forward { type filter hook input priority filter; }",
    "goto a base chain": "add rule inet netfence forward goto forward",
    "port out of range": "add rule inet netfence forward tcp dport 99999 accept",
}


@pytest.mark.parametrize("failure", sorted(REJECTED))
def test_a_rejected_transaction_leaves_the_table_exactly_as_it_was(netns: str, failure: str) -> None:
    apply_table(OLD, netns)
    before = read_table(netns)
    script = transition_script(OLD.names(), NEW) + REJECTED[failure] + "\n"

    with pytest.raises(DataplaneError) as checked:
        apply_script(script, netns)  # nft --check first
    with pytest.raises(DataplaneError):
        run_nft(["-f", "-"], netns, script)  # and without the check: the kernel's own transaction

    assert read_table(netns) == before
    assert "\n" not in str(checked.value).split(" failed: ")[0]


def test_apply_table_keeps_the_last_good_table_when_the_new_one_is_refused(netns: str) -> None:
    apply_table(OLD, netns)
    before = read_table(netns)
    broken = Table(NEW.sets, NEW.maps, (*NEW.chains, Chain("extra", (Rule("ip saddr @missing accept"),))))

    with pytest.raises(DataplaneError, match="failed"):
        apply_table(broken, netns, OLD)

    assert read_table(netns) == before
    assert apply_table(NEW, netns, OLD) == "replace"  # and the next good one applies


def test_an_nft_that_hangs_is_killed_and_the_table_is_kept(
    netns: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_table(OLD, netns)
    before = read_table(netns)
    hung = tmp_path / "nft"
    hung.write_text("#!/bin/sh\nexec sleep 60\n")
    hung.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr("netfence.dataplane.apply.NFT_TIMEOUT", 0.5)

    started = time.monotonic()
    with pytest.raises(DataplaneError, match=r"^nft --check -f - in network namespace \S+ did not finish in 0.5 s and was killed$"):
        apply_table(NEW, netns, OLD)

    assert time.monotonic() - started < 10
    monkeypatch.undo()
    assert read_table(netns) == before


# --- a network namespace that is gone -------------------------------------------------------------


def test_a_node_namespace_that_is_gone_is_a_dataplane_error() -> None:
    name = new_netns()
    apply_table(OLD, name)
    delete_netns(name)
    calls: list[Callable[[], object]] = [
        lambda: apply_table(NEW, name, OLD),
        lambda: apply_table(NEW, name),
        lambda: read_table(name),
        lambda: read_counters(name),
        lambda: kernel_names(name),
        lambda: delete_table(name),
    ]
    for call in calls:
        with pytest.raises(DataplaneError, match=f"in network namespace {name} failed: "):
            call()


def test_a_namespace_vanishing_while_tables_are_applied_ends_in_a_dataplane_error() -> None:
    name = new_netns()
    stop_after = 0.3
    deleted = threading.Event()

    def vanish() -> None:
        time.sleep(stop_after)
        delete_netns(name)
        deleted.set()

    remover = threading.Thread(target=vanish)
    remover.start()
    applied, current = 0, None
    try:
        with pytest.raises(DataplaneError):
            while True:
                table = NEW if current is OLD else OLD
                apply_table(table, name, current)
                current, applied = table, applied + 1
                if deleted.is_set() and applied > 1000:
                    break  # pragma: no cover - the apply after the deletion must fail
    finally:
        remover.join()
        delete_netns(name)
    assert applied >= 1


def test_the_cli_reports_a_missing_node_namespace_in_one_line(tmp_path: Path) -> None:
    # `lab apply` on a lab whose node namespace is gone (deleted by hand, or a crash).
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\n"
        "spec: {nodeName: n1, containers: [{name: c}]}\nstatus: {podIP: 10.77.0.2}\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x}\n"
        "spec: {nodeName: n1, containers: [{name: c}]}\nstatus: {podIP: 10.77.0.3}\n"
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\n"
        "spec: {podSelector: {matchLabels: {app: a}}}\n"
    )
    name = f"t{os.getpid()}v"
    result = subprocess.run(
        [sys.executable, "-m", "netfence", "lab", "up", "-f", str(cluster), "--name", name],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        assert result.returncode == 0, result.stderr
        node = f"netfence-{name}-n0"
        delete_netns(node)
        result = subprocess.run(
            [sys.executable, "-m", "netfence", "lab", "apply", "-f", str(cluster), "-f", str(policy), "--name", name],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and node in lines[0], result.stderr
    finally:
        clean(name)


# --- SIGKILL at random points ------------------------------------------------------------------------


def reference_listings() -> tuple[str, str]:
    """`nft list table` of OLD (created whole) and of NEW reached from it by the transition."""
    name = new_netns()
    try:
        apply_script(OLD.replace_script(), name)
        old = read_table(name)
        apply_script(transition_script(OLD.names(), NEW), name)
        new = read_table(name)
    finally:
        delete_netns(name)
    assert old is not None and new is not None and old != new
    return old, new


def kill_trials(
    netns: str,
    start: Callable[[Path], subprocess.Popen[bytes]],
    kill: Callable[[subprocess.Popen[bytes]], None],
    window: tuple[float, float] = (0.0, 1.2),
) -> dict[str, int]:
    """Reset to OLD, start the transition to NEW, SIGKILL it after a random delay (`window`, in
    parts of the time a whole apply takes); classify what the kernel holds after each kill."""
    old, new = reference_listings()
    script = Path(f"/run/{netns}.nft")
    script.write_text(transition_script(OLD.names(), NEW))
    try:
        apply_script(OLD.replace_script(), netns)
        started = time.monotonic()
        start(script).wait()
        whole = time.monotonic() - started
        assert read_table(netns) == new
        rng = random.Random(4)
        found = {"old": 0, "new": 0, "mix": 0}
        for _ in range(KILLS):
            apply_script(OLD.replace_script(), netns)
            proc = start(script)
            time.sleep(rng.uniform(whole * window[0], whole * window[1]))
            kill(proc)
            proc.wait()
            held = read_table(netns)
            found["old" if held == old else "new" if held == new else "mix"] += 1
        print(f"\nwhole apply {whole * 1000:.0f} ms; after {KILLS} kills: {found}")
        return found
    finally:
        script.unlink(missing_ok=True)


def test_sigkill_of_nft_at_random_points_leaves_the_old_or_the_new_table(netns: str) -> None:
    def start(script: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["nsenter", f"--net=/run/netns/{netns}", "nft", "-f", str(script)])

    found = kill_trials(netns, start, lambda proc: proc.send_signal(signal.SIGKILL))
    assert found["mix"] == 0, found


def test_sigkill_of_a_process_applying_a_table_leaves_the_old_or_the_new_table(netns: str) -> None:
    """The whole process group (Python, nsenter, nft), at any point of apply_script: the check, the
    apply, between them."""
    program = (
        "import sys; from netfence.dataplane.apply import apply_script; "
        "apply_script(open(sys.argv[1]).read(), sys.argv[2])"
    )

    def start(script: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", program, str(script), netns], start_new_session=True)

    def kill(proc: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    # Most of the time goes to starting Python: kill in the later part, where nft runs.
    found = kill_trials(netns, start, kill, (0.5, 1.3))
    assert found["mix"] == 0, found


# --- a script cut short ------------------------------------------------------------------------------


def test_a_transaction_cut_short_can_still_apply_half_a_table(netns: str) -> None:
    """Why nft never reads a script from a pipe: cut in the middle of a port number, after the
    `flush table` of a transition, the transaction parses and would empty most chains."""
    script = transition_script(OLD.names(), NEW)
    flushed = script.index("flush table")
    cut = script.index(" tcp dport ", flushed) + len(" tcp dport ") + 1  # `tcp dport 4` of `tcp dport 4711`
    apply_script(OLD.replace_script(), netns)
    checked = subprocess.run(["nsenter", f"--net=/run/netns/{netns}", "nft", "--check", "-f", "-"],
                             input=script[:cut], capture_output=True, text=True, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stderr


def wrapped_nft(folder: Path, delay: float) -> dict[str, str]:
    """An environment whose `nft` notes what its standard input is and keeps a copy of the script
    (when that does not take it from nft), waits `delay` s before an apply, then runs the real one."""
    (folder / "bin").mkdir()
    wrapper = folder / "bin" / "nft"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'stdin=$(readlink /proc/$$/fd/0); echo "$$ $stdin" >> {folder}/runs\n'
        f'case "$stdin" in pipe:*) ;; *) cat /proc/$$/fd/0 > {folder}/script.$$ ;; esac\n'
        f'case " $* " in *" --check "*) ;; *) sleep {delay} ;; esac\n'
        f'exec {shutil.which("nft") or "/usr/sbin/nft"} "$@"\n'
    )
    wrapper.chmod(0o755)
    return {**os.environ, "PATH": f"{folder / 'bin'}:{os.environ['PATH']}"}


def test_nft_reads_every_script_whole_and_outlives_the_process_applying_it(netns: str, tmp_path: Path) -> None:
    """The applying process SIGKILLed alone (the OOM killer, kill -9 of the agent) while its nft
    waits to start: nft still gets the whole script (not the 64 KiB a pipe holds) and applies it."""
    script = transition_script(OLD.names(), NEW)
    assert len(script) > 65536  # more than a pipe holds: a pipe's writer would still be writing
    apply_script(OLD.replace_script(), netns)
    new = reference_listings()[1]
    source = tmp_path / "script.nft"
    source.write_text(script)
    env = wrapped_nft(tmp_path, 0.5)
    program = "import sys; from netfence.dataplane.apply import apply_script; apply_script(open(sys.argv[1]).read(), sys.argv[2])"
    proc = subprocess.Popen([sys.executable, "-c", program, str(source), netns], env=env)
    runs = tmp_path / "runs"
    deadline = time.monotonic() + 20
    while not runs.exists() or len(runs.read_text().splitlines()) < 2:  # the check, then the apply
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for line in runs.read_text().splitlines():
        pid, stdin = line.split(" ", 1)
        assert not stdin.startswith("pipe:"), stdin
        while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.01)
        assert (tmp_path / f"script.{pid}").read_text() == script
    assert read_table(netns) == new
