"""The lab in a real kernel: built, probed, torn down, cleaned after crashes; the root netns untouched."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from lab_support import lab_processes, root_netns_snapshot, write_cluster

from netfence.cli.demo import scenario_dir
from netfence.errors import NetfenceError
from netfence.lab.clean import clean, holders
from netfence.lab.control import down, up
from netfence.lab.netns import enter, isolated, list_netns
from netfence.lab.plan import lab_prefix
from netfence.lab.probe import Outcome, probe
from netfence.lab.state import load_state, log_path, state_path
from netfence.model.ports import FlowPort, Protocol
from netfence.sources.load import load_inventory

pytestmark = pytest.mark.lab

TCP80, UDP80, ICMP = FlowPort(Protocol.TCP, 80), FlowPort(Protocol.UDP, 80), FlowPort(Protocol.ICMP, None)
SCENARIOS = ["colors", "wordpress", "ingress-controller"]


def scenario(name: str) -> str:
    return str(scenario_dir() / name / "cluster.yaml")


def gone(name: str) -> bool:
    return not list_netns(lab_prefix(name)) and not state_path(name).exists() and not lab_processes(name)


@pytest.mark.parametrize("name", SCENARIOS)
def test_without_policy_every_pod_reaches_every_pod_on_tcp_udp_and_icmp(name: str, lab_name: str) -> None:
    inventory = load_inventory([scenario(name)]).inventory
    plan = up(inventory, lab_name, [TCP80, UDP80]).state.plan
    pairs = [(a.node == b.node) for a in plan.pods for b in plan.pods if a.id != b.id]
    assert any(pairs) and not all(pairs), "the scenario has same-node and cross-node pairs"

    report = probe(plan, [TCP80, UDP80, ICMP])

    # "answered" means the answer named the destination pod (ICMP: came from its address).
    assert report.counts() == {Outcome.ANSWERED.value: 3 * len(plan.pods) ** 2}
    assert report.allowed.all()
    assert [e.id for e in report.endpoints] == [p.id for p in plan.pods]


def test_a_port_nobody_serves_is_refused_not_allowed(lab_name: str) -> None:
    plan = up(load_inventory([scenario("colors")]).inventory, lab_name).state.plan
    report = probe(plan, [FlowPort(Protocol.TCP, 81), FlowPort(Protocol.UDP, 81)])
    assert report.counts() == {Outcome.REFUSED.value: 2 * 36}
    assert not report.allowed.any()
    assert report.reprobed == 0  # a refusal is the kernel's answer, never probed again


def test_lab_down_removes_every_netns_the_server_and_the_state(lab_name: str) -> None:
    state = up(load_inventory([scenario("wordpress")]).inventory, lab_name).state
    assert set(list_netns(lab_prefix(lab_name))) == set(state.plan.netns)
    assert state.server_pid is not None and lab_processes(lab_name) == [state.server_pid]

    cleaned = down(lab_name)

    assert set(cleaned.netns) == set(state.plan.netns)
    assert cleaned.pids == (state.server_pid,)
    assert gone(lab_name)
    with pytest.raises(NetfenceError, match="no lab"):
        down(lab_name)


def test_nothing_appears_in_the_root_netns(lab_name: str) -> None:
    before = root_netns_snapshot()
    plan = up(load_inventory([scenario("colors")]).inventory, lab_name).state.plan
    assert root_netns_snapshot() == before
    assert probe(plan, [TCP80]).allowed.all()
    assert root_netns_snapshot() == before
    down(lab_name)
    assert root_netns_snapshot() == before


def test_clean_finds_a_server_by_its_sockets_when_the_state_is_lost(lab_name: str) -> None:
    state = up(load_inventory([scenario("colors")]).inventory, lab_name).state
    state_path(lab_name).unlink()
    assert holders(list_netns(lab_prefix(lab_name))) == {state.server_pid}
    cleaned = clean(lab_name)
    assert cleaned.pids == (state.server_pid,)
    assert gone(lab_name)


@pytest.mark.parametrize("moment", ["netns created", "links being made", "server starting"])
def test_clean_after_lab_up_was_killed_midway(moment: str, lab_name: str, tmp_path: Path) -> None:
    cluster = write_cluster(tmp_path / "cluster.yaml", pods=150, nodes=3)
    proc = subprocess.Popen(
        [sys.executable, "-m", "netfence", "lab", "up", "-f", cluster, "--name", lab_name],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def reached() -> bool:
        if moment == "server starting":
            return log_path(lab_name).exists()
        return bool(list_netns(lab_prefix(lab_name)))

    try:
        deadline = time.monotonic() + 20
        while not reached() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        if moment == "links being made":
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "lab up had finished before it was killed"
    assert list_netns(lab_prefix(lab_name)) and state_path(lab_name).exists()

    clean(lab_name)

    assert gone(lab_name)
    assert not log_path(lab_name).exists()


def test_lab_run_interrupted_with_ctrl_c_still_removes_the_lab(lab_name: str, tmp_path: Path) -> None:
    cluster = write_cluster(tmp_path / "cluster.yaml", pods=100, nodes=2)
    argv = [sys.executable, "-m", "netfence", "lab", "run", "-f", cluster, "--name", lab_name]
    proc = subprocess.Popen([*argv, "--port", "80/TCP", "--port", "80/UDP"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            state = load_state(lab_name) if state_path(lab_name).exists() else None
            if state is not None and state.server_pid is not None:
                break
            time.sleep(0.005)
        time.sleep(0.2)  # into the probing
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    assert gone(lab_name)


def test_the_prober_refuses_to_enter_a_netns_that_is_not_netfence_s() -> None:
    def work() -> None:
        enter("some-other-netns")

    with pytest.raises(NetfenceError, match="not a netfence netns"):
        isolated(work)


def test_lab_up_refuses_a_second_lab_of_the_same_name(lab_name: str) -> None:
    inventory = load_inventory([scenario("colors")]).inventory
    up(inventory, lab_name)
    with pytest.raises(NetfenceError, match="already exists"):
        up(inventory, lab_name)
    assert len(lab_processes(lab_name)) == 1


def test_probe_report_is_a_matrix_over_the_lab_pods(lab_name: str) -> None:
    plan = up(load_inventory([scenario("colors")]).inventory, lab_name).state.plan
    report = probe(plan, [TCP80])
    assert report.outcomes.shape == (1, 6, 6)
    assert np.array_equal(report.matrix().allowed, report.allowed)
    assert json.dumps(report.counts()) == '{"answered": 36}'
