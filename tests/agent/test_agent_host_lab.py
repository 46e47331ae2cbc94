"""`netfence agent --host haproxy --lab NAME` inside the HAProxy VM's namespace of the whitelist
scenario's lab: the VM's own firewall follows a nodePort change in the watched directory without
a policy edit, and a probe through the node's nodePort confirms it."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from netfence.dataplane.apply import DataplaneError, read_table
from netfence.lab.agents import host_command
from netfence.lab.clean import clean
from netfence.lab.connection import probe_address
from netfence.lab.control import up
from netfence.lab.netns import list_netns
from netfence.lab.plan import LabPlan, lab_addresses, lab_prefix
from netfence.lab.probe import Outcome
from netfence.lab.services import apply_services
from netfence.model.ports import FlowPort, Protocol
from netfence.sources.load import load_inventory

pytestmark = pytest.mark.lab

SCENARIO = resources.files("netfence") / "scenarios" / "whitelist"
TCP80, TCP3306 = FlowPort(Protocol.TCP, 80), FlowPort(Protocol.TCP, 3306)
WORDPRESS = "wordpress/wordpress-6dfdd9f64f-d75j2"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[LabPlan, Path]]:
    name = f"h{os.getpid()}"
    for file in ("cluster.yaml", "whitelist.yaml"):
        (tmp_path / file).write_text((SCENARIO / file).read_text())
    try:
        yield up(load_inventory([str(tmp_path / "cluster.yaml")]).inventory, name, [TCP80, TCP3306]).state.plan, tmp_path
    finally:
        clean(name)
        assert list_netns(lab_prefix(name)) == []


def host_table(netns: str) -> str:
    try:
        return read_table(netns) or ""
    except DataplaneError:
        return ""


def wait_for(netns: str, text: str, agent: subprocess.Popen[bytes], log: Path, timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in host_table(netns):
        assert agent.poll() is None, log.read_text()[-3000:]
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in the host's table: " + log.read_text()[-3000:])
        time.sleep(0.05)


def test_the_host_agent_follows_a_nodeport_change_in_the_vm_kernel(lab: tuple[LabPlan, Path], tmp_path: Path) -> None:
    plan, folder = lab
    haproxy = next(x for x in plan.externals if x.name == "haproxy")
    node1 = next(n for n in plan.nodes if n.name == "k8s-node1")
    cluster = folder / "cluster.yaml"

    def publish() -> None:  # kube-proxy's part: the nodePort DNAT on the nodes
        apply_services(plan, lab_addresses(load_inventory([str(cluster)]).inventory, plan))

    def via(port: int) -> Outcome:
        return probe_address(plan, haproxy.netns, str(node1.ip), FlowPort(Protocol.TCP, port), [WORDPRESS])

    publish()
    log = tmp_path / "agent.log"
    command = host_command(plan, haproxy, [str(folder)], 20, ["--metrics-addr", "off"])
    with open(log, "wb") as out:
        agent = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(haproxy.netns, "30358", agent, log)
        table = host_table(haproxy.netns)
        assert "hook output" in table and str(node1.ip) in table
        assert via(30358) is Outcome.ANSWERED

        cluster.write_text(cluster.read_text().replace("nodePort: 30358", "nodePort: 31999"))
        publish()
        wait_for(haproxy.netns, "31999", agent, log)
        assert "30358" not in host_table(haproxy.netns)
        assert via(31999) is Outcome.ANSWERED
        assert via(30358) is Outcome.TIMEOUT  # published nowhere now, and the VM's firewall drops it
    finally:
        agent.terminate()
        agent.wait(10)
    assert "31999" in host_table(haproxy.netns)  # stopping the agent leaves the table
