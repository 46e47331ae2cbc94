"""The lab plan is pure: names, addresses and ports decided from the inventory alone (no root)."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network, ip_address
from pathlib import Path

import pytest
from clusters import Cluster, namespace, pod

from netfence.cli.demo import scenario_dir
from netfence.errors import UsageError
from netfence.lab import state
from netfence.lab.plan import DEFAULT_NODE, lab_inventory, plan_lab
from netfence.lab.state import LabState, load_state, save_state
from netfence.model.inventory import Inventory
from netfence.model.ports import FlowPort, Protocol
from netfence.sources.load import load_inventory

Make = Callable[..., Cluster]
TCP80, UDP53 = FlowPort(Protocol.TCP, 80), FlowPort(Protocol.UDP, 53)


def colors() -> Inventory:
    return load_inventory([str(scenario_dir() / "colors" / "cluster.yaml")]).inventory


def test_one_node_netns_per_distinct_node_and_one_netns_per_pod_all_prefixed() -> None:
    plan = plan_lab(colors(), "demo")
    assert [n.name for n in plan.nodes] == ["k8s-node1", "k8s-node2", "k8s-node3"]
    assert len(plan.pods) == 6
    assert len(set(plan.netns)) == 1 + 3 + 6
    assert all(ns.startswith("netfence-demo-") for ns in plan.netns)
    blue = next(p for p in plan.pods if p.id == "dev/blue-786db8bbc8-pvz95")
    assert blue.netns.startswith(plan.node("k8s-node1").netns + "-p")
    assert blue.ip == IPv4Address("10.244.3.6") and not blue.allocated


def test_interface_names_fit_the_kernel_limit_and_carry_the_nf_prefix() -> None:
    plan = plan_lab(colors())
    names = [p.veth for p in plan.pods] + [n.uplink for n in plan.nodes]
    assert len(set(names)) == len(names)
    assert all(name.startswith("nf") and len(name) <= 15 for name in names)


def test_macs_are_unique_and_locally_administered() -> None:
    plan = plan_lab(colors())
    macs = [p.mac for p in plan.pods] + [n.mac for n in plan.nodes]
    assert len(set(macs)) == len(macs)
    assert all(int(mac[:2], 16) & 0b11 == 0b10 for mac in macs)  # local, unicast


def test_node_addresses_collide_with_no_pod_or_service_address(cluster: Make) -> None:
    c = cluster(
        pod("a", "p1", ip="10.250.0.2", nodeName="n1"),
        pod("a", "p2", ip="10.251.3.4", nodeName="n2"),
    )
    plan = plan_lab(c.inventory)
    assert not any(p.ip in plan.network for p in plan.pods)
    assert all(n.ip in plan.network for n in plan.nodes)


def test_pods_without_a_node_go_to_the_default_node(cluster: Make) -> None:
    plan = plan_lab(cluster(pod("a", "p1", ip="10.0.0.1")).inventory)
    assert [n.name for n in plan.nodes] == [DEFAULT_NODE]
    assert plan.pods[0].node == DEFAULT_NODE


def test_hostnetwork_pods_are_left_out_with_a_note(cluster: Make) -> None:
    c = cluster(pod("a", "p1", ip="10.0.0.1"), pod("kube-system", "proxy", ip="192.168.1.10", hostNetwork=True))
    plan = plan_lab(c.inventory)
    assert [p.id for p in plan.pods] == ["a/p1"]
    assert any("kube-system/proxy" in note and "hostNetwork" in note for note in plan.notes)


def test_pods_without_ipv4_get_an_address_that_collides_with_nothing_declared(cluster: Make) -> None:
    c = cluster(
        pod("a", "v6only", ip="fd00::5"),
        pod("a", "none"),
        pod("a", "taken", ip="100.64.0.1"),
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "cgnat", "namespace": "a"},
            "spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "100.65.0.0/16"}}]}]},
        },
    )
    plan = plan_lab(c.inventory)
    by_id = {p.id: p for p in plan.pods}
    chosen = [by_id["a/v6only"].ip, by_id["a/none"].ip]
    assert by_id["a/v6only"].allocated and by_id["a/none"].allocated and not by_id["a/taken"].allocated
    assert len(set(chosen)) == 2
    for ip in chosen:
        assert ip not in IPv4Network("100.64.0.0/16") and ip not in IPv4Network("100.65.0.0/16")
    assert sum("no usable IPv4" in note for note in plan.notes) == 2


def test_a_duplicate_pod_address_is_replaced_for_the_second_pod(cluster: Make) -> None:
    c = cluster(pod("a", "first", ip="10.0.0.7"), pod("a", "second", ip="10.0.0.7"))
    plan = plan_lab(c.inventory)
    first, second = plan.pods
    assert first.ip == IPv4Address("10.0.0.7") and second.ip != first.ip and second.allocated


def test_each_pod_serves_its_container_ports_plus_every_extra_port(cluster: Make) -> None:
    c = cluster(
        pod("a", "dns", ip="10.0.0.1", ports=[("dns", 53, "UDP"), ("sig", 3868, "SCTP")]),
        pod("a", "web", ip="10.0.0.2"),
    )
    plan = plan_lab(c.inventory, extra_ports=[TCP80, FlowPort(Protocol.ICMP, None)])
    by_id = {p.id: p for p in plan.pods}
    assert by_id["a/dns"].ports == (UDP53, TCP80)
    assert by_id["a/web"].ports == (TCP80,)
    assert any("SCTP" in note for note in plan.notes)
    assert plan.served_ports() == (UDP53, TCP80)


@pytest.mark.parametrize("name", ["", "Default", "a-b", "x" * 33, "../etc"])
def test_lab_names_are_short_lowercase_words(name: str, cluster: Make) -> None:
    with pytest.raises(UsageError, match="--name"):
        plan_lab(cluster(pod("a", "p", ip="10.0.0.1")).inventory, name)


def test_an_inventory_without_pods_is_an_error(cluster: Make) -> None:
    with pytest.raises(UsageError, match="no pods"):
        plan_lab(cluster(namespace("a")).inventory)


def test_lab_inventory_gives_the_analyzer_the_lab_addresses_and_nodes(cluster: Make) -> None:
    c = cluster(pod("a", "v6only", ip="fd00::5"), pod("a", "web", ip="10.0.0.2", nodeName="n1"))
    plan = plan_lab(c.inventory)
    inventory = lab_inventory(c.inventory, plan)
    by_id = {p.id: p for p in inventory.pods}
    assert by_id["a/v6only"].ips == (plan.pods[0].ip,)
    assert by_id["a/v6only"].node == DEFAULT_NODE
    assert by_id["a/web"].ips == (ip_address("10.0.0.2"),) and by_id["a/web"].node == "n1"


def test_lab_inventory_refuses_files_describing_other_pods(cluster: Make) -> None:
    plan = plan_lab(cluster(pod("a", "p1", ip="10.0.0.1")).inventory)
    other = cluster(pod("a", "p2", ip="10.0.0.2")).inventory
    with pytest.raises(UsageError, match="other pods than the lab was built from"):
        lab_inventory(other, plan)


def test_state_file_round_trips_the_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "STATE_DIR", tmp_path)
    plan = plan_lab(colors(), "rt", extra_ports=[UDP53])
    save_state(LabState(plan, 4242))
    assert load_state("rt") == LabState(plan, 4242)
    assert load_state("absent") is None
