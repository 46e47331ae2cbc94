"""Record a lab's traffic, suggest policies from the recording, enforce them, probe everything:
the observed flows pass, and every other flow between different workloads is dropped (except
to the other replica of an observed flow's end, which a workload's policy admits too)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
from suggest_shop import CLUSTER, HTTP, MEMCACHE, OBSERVED, POSTGRES, PORTS, expected_verdict

from netfence.analysis.suggest.flows import record_lines
from netfence.ir.build import build_ruleset
from netfence.lab.connection import probe_once
from netfence.lab.control import predict, up
from netfence.lab.plan import LabPlan, lab_inventory
from netfence.lab.probe import Outcome, probe
from netfence.lab.record import TABLE, Recorder, Recording
from netfence.lab.state import require_state
from netfence.model.ports import FlowPort, Protocol
from netfence.sources.load import load_inventory

pytestmark = pytest.mark.lab

Run = Callable[..., tuple[int, str, str]]
Flow = tuple[str, str, FlowPort]
#: Answered by the destination pod's kernel, not its server: refused, never a flow.
UNSERVED = (("tools/toolbox", "shop/db-0", FlowPort(Protocol.TCP, 9)), ("tools/toolbox", "shop/db-0", FlowPort(Protocol.UDP, 9)))


def connect(plan: LabPlan, flows: Iterable[Flow], timeout: float = 2.0) -> list[Outcome]:
    """One connection (TCP) or request (UDP) per flow, from the source's netns."""
    workloads = {w.id: w for w in plan.workloads}
    return [probe_once(plan, workloads[s].netns, workloads[d], port, timeout) for s, d, port in flows]


def recorded(plan: LabPlan, traffic: Callable[[], None]) -> Recording:
    recorder = Recorder(plan)
    recorder.start()
    try:
        traffic()
    except BaseException:
        recorder.abort()
        raise
    return recorder.stop()


def flows_of(recording: Recording) -> set[Flow]:
    return {(f.source, f.destination, f.port) for f in recording.flows}


def nft_tables(plan: LabPlan) -> str:
    return "".join(
        subprocess.run(["ip", "netns", "exec", n.netns, "nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
        for n in plan.nodes
    )


def test_recorded_traffic_suggested_enforced_and_probed(run: Run, lab_name: str, tmp_path: Path) -> None:
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(CLUSTER)
    # Every workload serves every port: a denied flow must be a drop, never a refusal.
    plan = up(load_inventory([str(cluster)]).inventory, lab_name, PORTS).state.plan

    def before() -> None:
        assert connect(plan, OBSERVED) == [Outcome.ANSWERED] * len(OBSERVED)
        assert connect(plan, UNSERVED) == [Outcome.REFUSED] * len(UNSERVED)

    recording = recorded(plan, before)
    assert flows_of(recording) == set(OBSERVED)
    assert TABLE not in nft_tables(plan)

    flows = tmp_path / "flows.jsonl"
    flows.write_text(record_lines(recording.flows))
    code, out, err = run("suggest", "--flows", str(flows), "-f", str(cluster), "--egress")
    assert code == 0, err
    assert "(observed: tools/toolbox -> shop/web-5d8f7-a1 TCP/80): tools/toolbox -> shop/web-5d8f7-b2" in err
    policies = tmp_path / "suggested.yaml"
    policies.write_text(out)
    code, out, err = run("lab", "apply", "-f", str(cluster), "-f", str(policies), "--name", lab_name)
    assert code == 0, err

    report = probe(plan, PORTS)
    ids = [e.id for e in report.endpoints]
    kernel = {
        (source, destination, port): bool(report.allowed[p, i, j])
        for p, port in enumerate(report.ports)
        for i, source in enumerate(ids)
        for j, destination in enumerate(ids)
    }
    wrong = {key: verdict for key, verdict in kernel.items() if verdict != expected_verdict(*key, egress=True)}
    assert wrong == {}
    assert sum(kernel.values()) == len(ids) * len(PORTS) + 9 + 2 * len(PORTS)  # self, observed and replicas, lb <-> payments
    denied = report.outcomes[~report.allowed]
    assert set(denied.tolist()) == {Outcome.TIMEOUT.value}  # NetworkPolicy drops
    inventory = load_inventory([str(cluster), str(policies)]).inventory
    assert np.array_equal(predict(plan, build_ruleset(lab_inventory(inventory, plan)), PORTS).allowed, report.allowed)

    # With the policies in force, a dropped connection is not a flow either.
    def after() -> None:
        assert connect(plan, OBSERVED) == [Outcome.ANSWERED] * len(OBSERVED)
        dropped = [("tools/toolbox", "shop/db-0", POSTGRES), ("shop/web-canary", "shop/cache", MEMCACHE)]
        assert connect(plan, dropped, timeout=0.5) == [Outcome.TIMEOUT, Outcome.TIMEOUT]

    assert flows_of(recorded(plan, after)) == set(OBSERVED)
    assert TABLE not in nft_tables(plan)


def test_lab_record_writes_the_flows_of_its_duration_as_json_lines(run: Run, lab_name: str, tmp_path: Path) -> None:
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(CLUSTER)
    assert run("lab", "up", "-f", str(cluster), "--name", lab_name)[0] == 0
    plan = require_state(lab_name).plan
    made = [("tools/toolbox", "shop/web-5d8f7-a1", HTTP), ("shop/api-0", "shop/cache", MEMCACHE)]
    outcomes: list[Outcome] = []

    def traffic() -> None:
        time.sleep(0.5)
        outcomes.extend(connect(plan, made))

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        out_file = tmp_path / "flows.jsonl"
        code, out, err = run("lab", "record", "--name", lab_name, "--duration", "2", "-o", str(out_file))
    finally:
        thread.join()
    assert outcomes == [Outcome.ANSWERED, Outcome.ANSWERED]
    assert (code, out) == (0, "")
    assert err.startswith(f"lab {lab_name}: 2 flows from 2 connections in 2.")
    assert out_file.read_text() == (
        '{"src": "shop/api-0", "dst": "shop/cache", "port": 11211, "protocol": "UDP"}\n'
        '{"src": "tools/toolbox", "dst": "shop/web-5d8f7-a1", "port": 80, "protocol": "TCP"}\n'
    )
