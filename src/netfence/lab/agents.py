"""`netfence lab agents`: one `netfence agent` per lab node, each inside its node's namespace,
and one `netfence agent --host NAME` per external workload, inside the host's namespace,
watching the same files, until interrupted.

Each agent runs as `nsenter --net=/run/netns/<node netns> python -m netfence agent --node NODE
--lab LAB -f FILES ...`, as a DaemonSet pod with hostNetwork runs in its node's namespace: it
applies its table there with plain `nft`, and its /metrics listens on the node's own loopback
(127.0.0.1:9617 in every node). With `--lab` the agent maps pods to the lab's veths (`nfv*`,
also the prefix of the fail-closed rules) and gives pods the lab's addresses and nodes.
`lab down` and `lab clean` stop agents left running: they live in lab namespaces.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from netfence.errors import NetfenceError
from netfence.lab.netns import NETNS_DIR
from netfence.lab.plan import LabExternal, LabNode, LabPlan, lab_addresses
from netfence.model.inventory import Inventory

#: Every pod veth of a lab node starts with this (and no other lab interface does).
LAB_INTERFACE_PREFIX = "nfv"
METRICS_ADDRESS = "127.0.0.1:9617"
_GRACE = 5.0


def lab_transform(plan: LabPlan) -> Callable[[Inventory], Inventory]:
    """What the lab holds, as the lab runs it (plan.lab_addresses, as `lab apply` gives them):
    pods get their lab address and node, external workloads their lab address, nodes their
    underlay address (a host's rules for a NodePort Service name them). What the lab does not
    hold is left as it is (a pod without an interface on any lab node)."""

    def transform(inventory: Inventory) -> Inventory:
        return lab_addresses(inventory, plan)

    return transform


def agent_command(plan: LabPlan, node: LabNode, files: Sequence[str], interval_ms: int, extra: Sequence[str] = ()) -> list[str]:
    nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
    argv = [nsenter, f"--net={NETNS_DIR / node.netns}", sys.executable, "-m", "netfence", "agent"]
    argv += ["--node", node.name, "--lab", plan.name, "--interval-ms", str(interval_ms), "--metrics-addr", METRICS_ADDRESS]
    for path in files:
        argv += ["-f", str(Path(path).resolve())]
    return argv + list(extra)


def host_command(plan: LabPlan, host: LabExternal, files: Sequence[str], interval_ms: int, extra: Sequence[str] = ()) -> list[str]:
    """The agent of an external workload, inside its namespace, enforcing its own firewall."""
    nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
    argv = [nsenter, f"--net={NETNS_DIR / host.netns}", sys.executable, "-m", "netfence", "agent"]
    argv += ["--host", host.name, "--lab", plan.name, "--interval-ms", str(interval_ms), "--metrics-addr", METRICS_ADDRESS]
    for path in files:
        argv += ["-f", str(Path(path).resolve())]
    return argv + list(extra)


def start_agents(plan: LabPlan, files: Sequence[str], interval_ms: int, extra: Sequence[str] = ()) -> dict[str, subprocess.Popen[bytes]]:
    """One agent per node (by node name) and one per external workload (by its id, `ext/NAME`);
    stdout and stderr are this process's."""
    started: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for node in plan.nodes:
            started[node.name] = subprocess.Popen(agent_command(plan, node, files, interval_ms, extra))
        for host in plan.externals:
            started[host.id] = subprocess.Popen(host_command(plan, host, files, interval_ms, extra))
    except BaseException:
        stop_agents(started.values())
        raise
    return started


def stop_agents(processes: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (the agents leave their tables in place), SIGKILL after a grace period."""
    procs = list(processes)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _GRACE
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_agents(
    plan: LabPlan, files: Sequence[str], interval_ms: int, announce: Callable[[str], None] = print
) -> int:
    """Run the agents until interrupted (Ctrl-C, SIGTERM) or until one exits; then stop them all.
    Returns 0 after an interruption, 1 when an agent ended by itself."""
    for path in files:
        if not Path(path).exists():
            raise NetfenceError(f"-f {path}: no such file or directory")
    agents = start_agents(plan, files, interval_ms)
    hosts: dict[str, LabExternal] = {x.id: x for x in plan.externals}
    for name, proc in agents.items():
        if name in hosts:
            where = f"host {hosts[name].name} running, pid {proc.pid}, metrics on {METRICS_ADDRESS} in {hosts[name].netns}"
        else:
            where = f"node {name} running, pid {proc.pid}, metrics on {METRICS_ADDRESS} in {plan.node(name).netns}"
        announce(f"lab {plan.name}: agent for {where}")
    announce(f"lab {plan.name}: watching {', '.join(files)}; Ctrl-C stops the agents (the rules stay until `lab down`)")
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            ended = [name for name, proc in agents.items() if proc.poll() is not None]
            if ended:
                what = f"host {hosts[ended[0]].name}" if ended[0] in hosts else f"node {ended[0]}"
                announce(f"lab {plan.name}: the agent for {what} exited with status {agents[ended[0]].returncode}")
                return 1
            time.sleep(0.2)
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_agents(agents.values())
