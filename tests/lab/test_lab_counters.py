"""Per-rule counters read back from the kernel: hits per policy rule after real traffic."""

from __future__ import annotations

import pytest

from netfence.cli.demo import scenario_dir
from netfence.dataplane.apply import read_counters
from netfence.ir.build import build_ruleset
from netfence.lab.control import enforce, up
from netfence.lab.plan import lab_inventory
from netfence.lab.probe import probe
from netfence.model.ports import FlowPort, Protocol
from netfence.sources.load import load_inventory

pytestmark = pytest.mark.lab

INGRESS_RULE = "NetworkPolicy dev/allow-tcp-80-from-blue-to-green ingress[0]"
END_OF_TIER = "default: isolated, no rule allowed"


def test_counters_show_which_rule_let_traffic_in_and_how_much_was_dropped(lab_name: str) -> None:
    inventory = load_inventory([str(scenario_dir() / "colors")]).inventory
    port = FlowPort(Protocol.TCP, 80)
    plan = up(inventory, lab_name, [port]).state.plan
    enforce(plan, build_ruleset(lab_inventory(inventory, plan)))
    (red_node,) = [n for n in plan.nodes if n.name == "k8s-node2"]
    assert read_counters(red_node.netns)[INGRESS_RULE][0] == 0
    probe(plan, [port])
    counters = read_counters(red_node.netns)
    packets, octets = counters[INGRESS_RULE]
    assert packets >= 1 and octets > 0  # dev/blue's SYN (the rest of the flow is established)
    assert counters[END_OF_TIER][0] >= 4  # green, and prod's three pods, were dropped at least once
    blue_node = next(n for n in plan.nodes if n.name == "k8s-node1")
    assert read_counters(blue_node.netns) == {}  # no pod of that node is isolated: no policy rule there
