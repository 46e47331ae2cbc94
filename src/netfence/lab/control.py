"""up / enforce / compare / down: a lab's life, each step usable from a separate invocation."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from netfence.analysis.matrix import Matrix, compute_matrix
from netfence.dataplane.apply import apply_table, delete_table
from netfence.dataplane.host import compile_host
from netfence.dataplane.iptables.apply import apply_iptables, delete_iptables, holds_iptables
from netfence.dataplane.iptables.render import render_iptables
from netfence.dataplane.nft.compile import compile_node
from netfence.dataplane.nft.flowlog import LogOptions
from netfence.dataplane.nft.host import render_host
from netfence.dataplane.nft.objects import Table
from netfence.errors import NetfenceError, UsageError
from netfence.ir.types import EndpointInfo, Ruleset
from netfence.lab.clean import Cleaned, clean
from netfence.lab.netns import create_lab, list_netns
from netfence.lab.plan import LabPlan, lab_prefix, plan_lab
from netfence.lab.probe import Outcome, ProbeReport, probe
from netfence.lab.servers import start_servers
from netfence.lab.state import LabState, load_state, save_state
from netfence.model.inventory import Inventory
from netfence.model.ports import FlowPort

#: The backends an external workload's own firewall can be applied with.
HOST_FIREWALLS = ("nft", "iptables")

@dataclass(frozen=True, slots=True)
class Started:
    state: LabState
    seconds: float


def up(inventory: Inventory, name: str = "default", extra_ports: Sequence[FlowPort] = ()) -> Started:
    """Build lab `name` and start its server; on any failure (or Ctrl-C) remove what was made."""
    started = time.monotonic()
    plan = plan_lab(inventory, name, extra_ports)
    if load_state(name) is not None or list_netns(lab_prefix(name)):
        raise UsageError(f"lab {name} already exists; remove it with `netfence lab down --name {name}`")
    # The state goes first: whatever happens next, `lab down`/`lab clean` can find the lab.
    save_state(LabState(plan))
    try:
        create_lab(plan)
        state = LabState(plan, start_servers(plan))
        save_state(state)
    except BaseException:
        clean(name)
        raise
    return Started(state, time.monotonic() - started)


def down(name: str = "default") -> Cleaned:
    """Remove lab `name`: its server, every `netfence-<name>-*` netns, its state."""
    if load_state(name) is None and not list_netns(lab_prefix(name)):
        raise NetfenceError(f"no lab {name!r}")
    return clean(name)


def enforce(plan: LabPlan, ruleset: Ruleset, host_firewall: str = "nft", log: LogOptions | None = None) -> list[str]:
    """Compile `ruleset` for every node and every external workload, apply each node's table
    atomically in its netns and each external host's own firewall in its netns (`host_firewall`:
    "nft" or "iptables", the other one's rules removed), then flush conntrack (gotchas 7 and 8:
    old flows would outlive the new rules).

    `ruleset` must be built from the lab's inventory (plan.lab_inventory); `log`: the nodes'
    flow logs and audited policies (nft/flowlog.py). Returns warnings.
    """
    if host_firewall not in HOST_FIREWALLS:
        raise UsageError(f"host firewall {host_firewall!r}: expected one of {', '.join(HOST_FIREWALLS)}")
    # Render everything before touching anything: a compiler error leaves the lab as it was.
    tables = node_tables(plan, ruleset, log)
    hosts = {x.netns: compile_host(ruleset, x.id) for x in plan.externals}
    rendered = {}
    if host_firewall == "iptables":
        rendered = {netns: render_iptables(firewall) for netns, firewall in hosts.items()}
    for netns, table in tables.items():
        apply_table(table, netns)
    for netns, firewall in hosts.items():
        if host_firewall == "nft":
            if shutil.which("iptables-save") and shutil.which("ipset") and holds_iptables(netns):
                delete_iptables(netns)
            apply_table(render_host(firewall), netns)
        else:
            delete_table(netns)
            apply_iptables(rendered[netns], netns)
    return flush_conntrack(plan)


def node_tables(plan: LabPlan, ruleset: Ruleset, log: LogOptions | None = None) -> dict[str, Table]:
    """Each lab node's table (by node netns), keyed on the lab's pod veths."""
    return {
        node.netns: compile_node(ruleset, node.name, {p.id: p.veth for p in plan.pods_on(node.name)}, log)
        for node in plan.nodes
    }


def flush_conntrack(plan: LabPlan) -> list[str]:
    if shutil.which("conntrack") is None:
        return ["warning: conntrack not found; flows established before the apply keep their verdict"]
    for netns in (*(n.netns for n in plan.nodes), *(x.netns for x in plan.externals)):
        proc = subprocess.run(
            ["ip", "netns", "exec", netns, "conntrack", "-F"], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise NetfenceError(f"conntrack -F in {netns} failed: {proc.stderr.strip()}")
    return []


@dataclass(frozen=True)
class Comparison:
    """The kernel's verdicts next to the analyzer's, flow by flow."""

    report: ProbeReport
    predicted: Matrix

    @property
    def actual(self) -> Matrix:
        return self.report.matrix()

    @property
    def mismatches(self) -> int:
        return int(np.count_nonzero(self.report.allowed != self.predicted.allowed))

    @property
    def wrong_pod(self) -> int:
        return int(np.count_nonzero(self.report.outcomes == Outcome.WRONG_POD.value))


def predict(plan: LabPlan, ruleset: Ruleset, ports: Sequence[FlowPort]) -> Matrix:
    """The analyzer's matrix over the lab's pods and external workloads, in the lab's order."""
    endpoints: list[EndpointInfo] = []
    for pod in plan.workloads:
        endpoint = ruleset.endpoint(pod.id)
        if endpoint is None:
            raise NetfenceError(f"{pod.id} is in the lab but not in the ruleset")
        endpoints.append(endpoint)
    return compute_matrix(ruleset, ports, endpoints)


def compare(plan: LabPlan, ruleset: Ruleset, ports: Sequence[FlowPort]) -> Comparison:
    """Probe the lab and set the analyzer's predictions beside the results.

    Only timeouts the analyzer predicted allowed are probed again slowly: a block the analyzer
    also predicts cannot become a mismatch by waiting longer.
    """
    predicted = predict(plan, ruleset, ports)
    report = probe(plan, ports, expected=predicted.allowed)
    return Comparison(report, predicted)
