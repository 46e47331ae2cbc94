"""The agent as a process inside a lab node's network namespace, fed by the in-process API server
(a listening socket made inside that namespace, so the agent reaches it on its own 127.0.0.1):
probes confirm the kernel follows pods and policies, a pod the agent does not know gets nothing
through, kill -9 leaves the rules, a restart adopts them with no leak or drop under a continuous
probe, and a foreign edit is undone within 10 s. `netfence lab agents` runs one agent per node
watching a directory until interrupted."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_apiserver import FakeApiServer
from kube_objects import namespace, netpol, pod, snapshot
from lab_api import METRICS_PORT, agent_metrics, serve_in

from netfence.agent.kernel import NftKernel
from netfence.agent.reconcile import Reconciler
from netfence.agent.table import Interfaces, build_desired
from netfence.dataplane.apply import DataplaneError, run_nft
from netfence.lab.clean import clean
from netfence.lab.connection import probe_once, socket_in
from netfence.lab.control import up
from netfence.lab.netns import NETNS_DIR, list_netns
from netfence.lab.plan import LabNode, LabPlan, LabPod, lab_prefix
from netfence.lab.probe import Outcome
from netfence.model.ports import FlowPort, Protocol
from netfence.sources.documents import Document, Source
from netfence.sources.load import build_inventory

pytestmark = pytest.mark.lab

TCP80 = FlowPort(Protocol.TCP, 80)
NODE = "node-a"
IPS = {"web": "10.77.0.2", "client": "10.77.0.3", "other": "10.77.0.4"}
_NAMES = itertools.count()


def cluster() -> list[dict[str, Any]]:
    return [namespace("dev"), *(pod(f"dev/{name}", ip, node=NODE, app=name) for name, ip in IPS.items())]


def allow_web_from(app: str) -> dict[str, Any]:
    return netpol("dev/web-ingress", {"app": "web"}, {"app": app})


@dataclass
class Lab:
    plan: LabPlan
    api: FakeApiServer
    kubeconfig: Path
    logs: Path

    @property
    def node(self) -> LabNode:
        return self.plan.node(NODE)

    def pod(self, name: str) -> LabPod:
        return next(p for p in self.plan.pods if p.id == f"dev/{name}")

    def reset(self) -> None:
        """The API holds the namespace, web and other (not client), and web's policy; no table."""
        for kind in self.api._kinds.values():
            for ns, name in list(kind.objects):
                self.api.delete(kind.api_version, kind.kind, name, ns or None)
        for obj in (namespace("dev"), pod("dev/web", IPS["web"], node=NODE, app="web"),
                    pod("dev/other", IPS["other"], node=NODE, app="other"), allow_web_from("client")):  # fmt: skip
            self.api.create(obj)
        NftKernel(self.node.netns).delete()

    def agent(self, *extra: str) -> subprocess.Popen[bytes]:
        argv = ["nsenter", f"--net={NETNS_DIR / self.node.netns}", sys.executable, "-m", "netfence", "agent",
                "--node", NODE, "--lab", self.plan.name, "--kubeconfig", str(self.kubeconfig), "--interval-ms", "20",
                "--metrics-addr", f"127.0.0.1:{METRICS_PORT}", "--log-format", "json", *extra]  # fmt: skip
        with open(self.logs, "ab") as log:
            return subprocess.Popen(argv, stdout=log, stderr=log)

    def probe(self, source: str, destination: str, timeout: float = 0.4) -> Outcome:
        return probe_once(self.plan, self.pod(source).netns, self.pod(destination), TCP80, timeout)

    def wait(self, source: str, destination: str, expected: Outcome, timeout: float = 10.0) -> float:
        started = time.monotonic()
        while True:
            found = self.probe(source, destination)
            if found is expected:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(f"{source} -> {destination}: {found}, expected {expected} ({self.logs.read_text()[-3000:]})")
            time.sleep(0.05)

    def metrics(self) -> str:
        """GET /metrics from the agent, on the node's own loopback."""
        return agent_metrics(self.node.netns)

    def wait_table(self, timeout: float = 15.0) -> None:
        kernel = NftKernel(self.node.netns)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if kernel.read() is not None:
                    return
            except DataplaneError:
                pass  # the table is being created or replaced right now: read again
            if time.monotonic() > deadline:
                raise AssertionError("no table: " + self.logs.read_text()[-3000:])
            time.sleep(0.05)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    name = f"a{os.getpid()}n{next(_NAMES)}"
    documents = [Document(Source("test", ""), 0, None, obj) for obj in cluster()]
    inventory = build_inventory(documents).inventory
    api = FakeApiServer()
    try:
        plan = up(inventory, name).state.plan
        folder = tmp_path_factory.mktemp("agent-lab")
        config = serve_in(api, plan.node(NODE).netns, folder)
        yield Lab(plan, api, config, folder / "agent.log")
    finally:
        api.stop()
        clean(name)
        assert list_netns(lab_prefix(name)) == []


@pytest.fixture
def agents() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_the_kernel_follows_pods_and_policies_unknown_pods_get_nothing_and_foreign_edits_are_undone_within_10_s(
    lab: Lab, agents: list[subprocess.Popen[bytes]]
) -> None:
    lab.reset()
    agents.append(lab.agent())  # checks the table every 5 s (the default)
    lab.wait_table()
    # client's interface exists but no pod of the API owns it: dropped both ways (fail closed).
    lab.wait("other", "web", Outcome.TIMEOUT)
    assert lab.probe("client", "other") is Outcome.TIMEOUT
    assert lab.probe("other", "client") is Outcome.TIMEOUT
    lab.api.create(pod("dev/client", IPS["client"], node=NODE, app="client"))
    lab.wait("client", "web", Outcome.ANSWERED)
    assert lab.probe("client", "other") is Outcome.ANSWERED  # other is not isolated
    lab.api.update(allow_web_from("other"))
    lab.wait("client", "web", Outcome.TIMEOUT)
    lab.wait("other", "web", Outcome.ANSWERED)
    lab.api.delete("v1", "Pod", "client", "dev")
    lab.wait("client", "other", Outcome.TIMEOUT)
    text = lab.metrics()
    assert 'netfence_syncs_total{result="update"}' in text and "netfence_ready 1.0" in text
    assert 'netfence_policy_packets_total{direction="ingress",kind="NetworkPolicy",namespace="dev",policy="web-ingress"}' in text
    run_nft(["insert", "rule", "inet", "netfence", "forward", "accept"], lab.node.netns)
    assert lab.probe("client", "web") is Outcome.ANSWERED  # the edit opened everything
    edited = time.monotonic()
    lab.wait("client", "web", Outcome.TIMEOUT, timeout=12)
    assert time.monotonic() - edited < 10
    assert "netfence_repairs_total 1.0" in lab.metrics()


def test_kill_9_leaves_the_rules_and_a_restart_adopts_them_without_a_leak_or_a_drop(
    lab: Lab, agents: list[subprocess.Popen[bytes]]
) -> None:
    lab.reset()
    lab.api.create(pod("dev/client", IPS["client"], node=NODE, app="client"))
    agents.append(lab.agent())
    lab.wait_table()
    lab.wait("client", "web", Outcome.ANSWERED)
    lab.wait("other", "web", Outcome.TIMEOUT)
    before = NftKernel(lab.node.netns).read()
    outcomes: list[tuple[str, Outcome]] = []
    stop = threading.Event()

    def keep_probing() -> None:
        while not stop.is_set():
            outcomes.append(("allowed", lab.probe("client", "web", timeout=1.0)))
            outcomes.append(("denied", lab.probe("other", "web", timeout=0.3)))

    prober = threading.Thread(target=keep_probing)
    prober.start()
    try:
        time.sleep(0.5)
        agents[0].send_signal(signal.SIGKILL)
        agents[0].wait()
        time.sleep(0.5)
        assert NftKernel(lab.node.netns).read() is not None  # the rules outlive the agent
        agents.append(lab.agent())
        deadline = time.monotonic() + 20
        while "netfence_syncs_total{" not in _quiet_metrics(lab):
            assert time.monotonic() < deadline, lab.logs.read_text()[-3000:]
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        stop.set()
        prober.join()
    allowed = [o for kind, o in outcomes if kind == "allowed"]
    denied = [o for kind, o in outcomes if kind == "denied"]
    assert len(allowed) >= 5 and set(allowed) == {Outcome.ANSWERED}, outcomes
    assert set(denied) == {Outcome.TIMEOUT}, outcomes
    text = lab.metrics()
    assert 'netfence_syncs_total{result="unchanged"} 1.0' in text, text
    after = NftKernel(lab.node.netns).read()
    assert before is not None and after is not None and after.handles == before.handles  # adopted, not rewritten


def _quiet_metrics(lab: Lab) -> str:
    try:
        return lab.metrics()
    except OSError:
        return ""


def test_lab_agents_follow_the_files_until_interrupted(lab: Lab, tmp_path: Path) -> None:
    lab.reset()
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump_all([*cluster(), allow_web_from("client")]))
    command = [sys.executable, "-m", "netfence", "lab", "agents", "-f", str(tmp_path), "--name", lab.plan.name,
               "--interval-ms", "20"]  # fmt: skip
    with open(lab.logs, "ab") as log:
        supervisor = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
    try:
        assert supervisor.stdout is not None
        first = supervisor.stdout.readline().decode()
        assert f"agent for node {NODE} running" in first
        lab.wait_table()
        lab.wait("client", "web", Outcome.ANSWERED)
        (tmp_path / "cluster.yaml").write_text(yaml.safe_dump_all([*cluster(), allow_web_from("other")]))
        lab.wait("client", "web", Outcome.TIMEOUT)
        lab.wait("other", "web", Outcome.ANSWERED)
        supervisor.send_signal(signal.SIGINT)
        assert supervisor.wait(15) == 0
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        assert supervisor.stdout is not None
        supervisor.stdout.close()
    assert NftKernel(lab.node.netns).read() is not None  # the rules stay until `lab down`
    assert not [p for p in _agent_pids() if lab.plan.name.encode() in p[1]]


def _agent_pids() -> list[tuple[int, bytes]]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"netfence\0agent" in argv:
                found.append((int(entry), argv))
    return found


def test_dry_run_reads_and_uninstall_deletes(lab: Lab) -> None:
    lab.reset()
    veths = {p.id: p.veth for p in lab.plan.pods}
    before_objects = [namespace("dev"), pod("dev/web", IPS["web"], node=NODE, app="web"),
                      pod("dev/other", IPS["other"], node=NODE, app="other"), allow_web_from("client")]  # fmt: skip
    desired = build_desired(snapshot(*before_objects), NODE, Interfaces("nfv", "static", veths))
    Reconciler(NftKernel(lab.node.netns)).converge(desired.table)
    lab.api.create(pod("dev/client", IPS["client"], node=NODE, app="client"))
    before = run_nft(["list", "table", "inet", "netfence"], lab.node.netns)
    inside = ["nsenter", f"--net={NETNS_DIR / lab.node.netns}", sys.executable, "-m", "netfence", "agent"]
    dry = subprocess.run(
        [*inside, "--node", NODE, "--lab", lab.plan.name, "--kubeconfig", str(lab.kubeconfig), "--dry-run"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert dry.returncode == 0, dry.stderr
    assert "a sync would replace the rules in place" in dry.stdout  # client's rule appears
    assert f'set local_ifaces: +"{lab.pod("client").veth}"' in dry.stdout
    assert run_nft(["list", "table", "inet", "netfence"], lab.node.netns) == before
    gone = subprocess.run([*inside, "--uninstall"], capture_output=True, text=True, timeout=60, check=False)
    assert gone.returncode == 0 and "deleted" in gone.stdout, gone.stderr
    assert NftKernel(lab.node.netns).read() is None


def test_route_naming_finds_each_pod_interface_from_the_node_routes(lab: Lab) -> None:
    routes = NftKernel(lab.node.netns).routes()
    local = [p for p in lab.plan.pods if p.node == NODE]
    assert {ip: dev for ip, dev in routes.items() if dev.startswith("nfv")} == {p.ip: p.veth for p in local}
    objects = [namespace("dev"), *(pod(f"dev/{name}", ip, node=NODE, app=name) for name, ip in IPS.items())]
    found = build_desired(snapshot(*objects), NODE, Interfaces("nfv", "route"), routes=routes).interfaces
    assert found == {p.id: p.veth for p in local}
