"""`netfence lab agents`: one `netfence agent` per lab node, each inside its node's namespace,
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
from dataclasses import replace
from pathlib import Path

from netfence.errors import NetfenceError
from netfence.lab.netns import NETNS_DIR
from netfence.lab.plan import LabNode, LabPlan
from netfence.model.inventory import Inventory

#: Every pod veth of a lab node starts with this (and no other lab interface does).
LAB_INTERFACE_PREFIX = "nfv"
METRICS_ADDRESS = "127.0.0.1:9617"
_GRACE = 5.0


def lab_transform(plan: LabPlan) -> Callable[[Inventory], Inventory]:
    """Pods the lab holds get their lab address and node (as `lab apply` gives them); pods it
    does not hold are left as they are (they have no interface on any lab node)."""
    by_id = {p.id: p for p in plan.pods}

    def transform(inventory: Inventory) -> Inventory:
        pods = tuple(
            replace(p, ips=(by_id[p.id].ip,), node=by_id[p.id].node) if p.id in by_id and not p.host_network else p
            for p in inventory.pods
        )
        return replace(inventory, pods=pods)

    return transform


def agent_command(plan: LabPlan, node: LabNode, files: Sequence[str], interval_ms: int, extra: Sequence[str] = ()) -> list[str]:
    nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
    argv = [nsenter, f"--net={NETNS_DIR / node.netns}", sys.executable, "-m", "netfence", "agent"]
    argv += ["--node", node.name, "--lab", plan.name, "--interval-ms", str(interval_ms), "--metrics-addr", METRICS_ADDRESS]
    for path in files:
        argv += ["-f", str(Path(path).resolve())]
    return argv + list(extra)


def start_agents(plan: LabPlan, files: Sequence[str], interval_ms: int, extra: Sequence[str] = ()) -> dict[str, subprocess.Popen[bytes]]:
    """One agent per node (by node name); stdout and stderr are this process's."""
    started: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for node in plan.nodes:
            started[node.name] = subprocess.Popen(agent_command(plan, node, files, interval_ms, extra))
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
    for name, proc in agents.items():
        announce(f"lab {plan.name}: agent for node {name} running, pid {proc.pid}, metrics on {METRICS_ADDRESS} in {plan.node(name).netns}")
    announce(f"lab {plan.name}: watching {', '.join(files)}; Ctrl-C stops the agents (the rules stay until `lab down`)")
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            ended = [name for name, proc in agents.items() if proc.poll() is not None]
            if ended:
                announce(f"lab {plan.name}: the agent for node {ended[0]} exited with status {agents[ended[0]].returncode}")
                return 1
            time.sleep(0.2)
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_agents(agents.values())
