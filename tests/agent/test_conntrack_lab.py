"""The agent deletes the conntrack entries of a local pod address that went away, with the real
agent process and kernel in a lab node's network namespace: pod a holds a TCP connection to pod
b that b's policy allows; a policy change that denies a leaves it flowing (an established
entry passes whatever the policy says); then b is deleted and a new pod c gets b's address
under a policy that denies a: the entry is deleted, and a's packets on the old connection no
longer reach c."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_apiserver import FakeApiServer
from kube_objects import namespace, netpol, pod
from lab_api import METRICS_PORT, agent_metrics, serve_in

from netfence.agent.kernel import NftKernel
from netfence.dataplane.apply import DataplaneError
from netfence.lab.clean import clean
from netfence.lab.connection import HeldConnection, hold_connection, socket_in
from netfence.lab.control import up
from netfence.lab.netns import NETNS_DIR, list_netns
from netfence.lab.plan import LabPlan, LabPod, lab_prefix
from netfence.sources.documents import Document, Source
from netfence.sources.load import build_inventory

pytestmark = pytest.mark.lab

NODE = "node-a"
PORT = 8080  # the held connection's (the lab's servers answer on 80)
IPS = {"a": "10.79.0.2", "b": "10.79.0.3"}
_NAMES = itertools.count()


@dataclass
class Lab:
    plan: LabPlan
    api: FakeApiServer
    kubeconfig: Path
    logs: Path

    @property
    def netns(self) -> str:
        return self.plan.node(NODE).netns

    def pod(self, name: str) -> LabPod:
        return next(p for p in self.plan.pods if p.id == f"dev/{name}")

    def entries(self, held: HeldConnection) -> list[str]:
        """The node's conntrack entries of the held connection's 5-tuple."""
        source_port = held.client.getsockname()[1]
        argv = ["nsenter", f"--net={NETNS_DIR / self.netns}", "conntrack", "-L", "-p", "tcp",
                "--orig-src", IPS["a"], "--orig-dst", IPS["b"], "--sport", str(source_port), "--dport", str(PORT)]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        assert proc.returncode == 0, proc.stderr
        return [line for line in proc.stdout.splitlines() if line.strip()]

    def connects(self, timeout: float = 0.3) -> bool:
        """Whether a new connection from a to b's address on PORT gets through the node (nobody
        listens there any more: a refusal means it got through, a timeout that it was dropped)."""
        sock = socket_in(self.pod("a").netns, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect((IPS["b"], PORT))
        except ConnectionRefusedError:
            return True
        except TimeoutError:
            return False
        finally:
            sock.close()
        return True

    def isolated(self) -> set[str]:
        """The interfaces of the node's pods that an ingress policy selects."""
        try:
            view = NftKernel(self.netns).read()
        except DataplaneError:  # the table is being replaced right now
            return set()
        return set() if view is None else {iface for iface, _ in view.maps.get("ingress_ep", ())}

    def metric(self, name: str) -> float:
        for line in agent_metrics(self.netns).splitlines():
            if line.startswith(f"{name} "):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"no metric {name}")

    def until(self, condition: object, what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not _holds(condition):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.logs.read_text()[-3000:]}")
            time.sleep(0.05)


def _holds(condition: object) -> bool:
    assert callable(condition)
    try:
        return bool(condition())
    except OSError:  # the agent's metrics are not served yet
        return False


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    name = f"c{os.getpid()}n{next(_NAMES)}"
    objects = [namespace("dev"), *(pod(f"dev/{p}", ip, node=NODE, app=p) for p, ip in IPS.items()),
               netpol("dev/b-ingress", {"app": "b"}, {"app": "a"}, port=PORT)]  # fmt: skip
    inventory = build_inventory([Document(Source("test", ""), 0, None, obj) for obj in objects]).inventory
    api = FakeApiServer()
    try:
        plan = up(inventory, name).state.plan
        assert {str(p.ip) for p in plan.pods} == set(IPS.values())
        config = serve_in(api, plan.node(NODE).netns, tmp_path)
        for obj in objects:
            api.create(obj)
        yield Lab(plan, api, config, tmp_path / "agent.log")
    finally:
        api.stop()
        clean(name)
        assert list_netns(lab_prefix(name)) == []


@pytest.fixture
def agent(lab: Lab) -> Iterator[subprocess.Popen[bytes]]:
    # Route naming: a pod's interface is the one its address is routed to, so the new pod c,
    # given b's address, owns b's veth (as a CNI would give it a veth of its own).
    argv = ["nsenter", f"--net={NETNS_DIR / lab.netns}", sys.executable, "-m", "netfence", "agent",
            "--node", NODE, "--kubeconfig", str(lab.kubeconfig), "--interval-ms", "20",
            "--interface-prefix", "nfv", "--interface-naming", "route",
            "--metrics-addr", f"127.0.0.1:{METRICS_PORT}", "--log-format", "json"]  # fmt: skip
    with open(lab.logs, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def hold(lab: Lab, stack: ExitStack, timeout: float = 10.0) -> HeldConnection:
    """a's connection to b:PORT, once the agent's first table lets it through."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return stack.enter_context(hold_connection(lab.plan, lab.pod("a"), lab.pod("b"), PORT, timeout=0.5))
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError("a cannot connect to b: " + lab.logs.read_text()[-3000:]) from None
            time.sleep(0.1)


def reached(held: HeldConnection, payload: bytes, timeout: float = 1.5) -> bool:
    """Send `payload` from a on the held connection; whether it reaches the other end."""
    held.client.sendall(payload)
    held.server.settimeout(timeout)
    try:
        return held.server.recv(len(payload)) == payload
    except TimeoutError:
        return False


def test_the_entries_of_a_deleted_pod_go_and_its_address_reused_by_a_denied_pod_gets_nothing(
    lab: Lab, agent: subprocess.Popen[bytes]
) -> None:
    lab.until(lambda: lab.metric("netfence_ready") == 1, "the first table")
    with ExitStack() as stack:
        held = hold(lab, stack)
        held.exchange(b"before")
        (entry,) = lab.entries(held)
        assert "ESTABLISHED" in entry

        # A policy change flushes nothing: the connection keeps flowing though a is now denied.
        lab.api.update(netpol("dev/b-ingress", {"app": "b"}, {"app": "nobody"}, port=PORT))
        lab.until(lambda: not lab.connects(), "the policy that denies a")
        held.exchange(b"after the policy change")
        assert len(lab.entries(held)) == 1  # the entry that would let a's packets through
        assert lab.metric("netfence_conntrack_flushed_entries_total") == 0.0

        # b goes; c gets b's address (and b's veth, by route) under a policy that denies a.
        lab.api.delete("v1", "Pod", "b", "dev")
        lab.api.create(pod("dev/c", IPS["b"], node=NODE, app="c"))
        lab.api.create(netpol("dev/c-ingress", {"app": "c"}, {"app": "nobody"}, port=PORT))
        lab.until(lambda: lab.entries(held) == [], "the entry to be deleted")
        lab.until(lambda: lab.metric("netfence_conntrack_flushed_entries_total") >= 1, "the flush metric")
        lab.until(lambda: lab.pod("b").veth in lab.isolated(), "c's policy")
        assert not reached(held, b"after the address changed hands")
        assert [e for e in lab.entries(held) if "ESTABLISHED" in e] == []
        assert lab.metric("netfence_conntrack_flush_errors_total") == 0.0
    assert agent.poll() is None, lab.logs.read_text()[-3000:]
