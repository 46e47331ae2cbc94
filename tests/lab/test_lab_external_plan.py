"""External workloads in the lab plan (pure, no root): their namespaces and addresses, the state
file, and the inventory the analyzer predicts the lab with."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_network
from pathlib import Path

import pytest

from netfence.cli.demo import scenario_dir
from netfence.errors import UsageError
from netfence.lab import state
from netfence.lab.netns import external_batch, node_batch, underlay_batch
from netfence.lab.plan import lab_inventory, plan_lab
from netfence.lab.services import services_script
from netfence.lab.state import LabState, load_state, save_state
from netfence.model.inventory import Inventory
from netfence.model.ports import FlowPort, Protocol
from netfence.sources.load import load_inventory

TCP80 = FlowPort(Protocol.TCP, 80)


def whitelist() -> Inventory:
    base = scenario_dir() / "whitelist"
    return load_inventory([str(base / "cluster.yaml"), str(base / "whitelist.yaml")]).inventory


def test_external_workloads_get_a_netns_on_the_underlay_their_address_and_their_ports() -> None:
    plan = plan_lab(whitelist(), "wl", [TCP80])
    client, haproxy = plan.externals
    assert (haproxy.id, haproxy.netns, haproxy.uplink, haproxy.ip) == (
        "ext/haproxy",
        "netfence-wl-x1",
        "nfulx1",
        IPv4Address("172.18.221.1"),
    )
    assert haproxy.ports == (TCP80,) and client.ports == (TCP80,)
    assert plan.netns[-2:] == ("netfence-wl-x0", "netfence-wl-x1")
    assert [w.id for w in plan.workloads][-2:] == ["ext/client", "ext/haproxy"]
    assert not plan.network.overlaps(ip_network("172.18.221.1/32"))


def test_hosts_are_wired_to_the_underlay_and_every_node_routes_to_them() -> None:
    plan = plan_lab(whitelist(), "wl")
    haproxy = plan.externals[1]
    wire = f"link add nfulx1 type veth peer name eth0 netns netfence-wl-x1 address {haproxy.mac}"
    assert wire in underlay_batch(plan)
    node = node_batch(plan, "k8s-node2")
    assert "route add 172.18.221.1/32 dev nfeth0" in node
    assert f"neigh replace 172.18.221.1 lladdr {haproxy.mac} dev nfeth0 nud permanent" in node
    host = external_batch(plan, haproxy.netns)
    assert "address add 172.18.221.1/32 dev eth0" in host
    assert f"route add 10.244.3.18/32 via {plan.node('k8s-node3').ip} dev eth0" in host
    assert "route add 198.51.100.7/32 dev eth0 scope link src 172.18.221.1" in host


def test_a_host_without_a_usable_address_gets_one_from_the_top_of_the_underlay(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nstatus: {podIP: 10.0.0.1}\n---\n"
        "apiVersion: netfence.dev/v1alpha1\nkind: ExternalWorkload\nmetadata: {name: v6}\n"
        "spec: {addresses: ['fd00::7']}\n---\n"
        "apiVersion: netfence.dev/v1alpha1\nkind: ExternalWorkload\nmetadata: {name: clash}\n"
        "spec: {addresses: [10.0.0.1]}\n"
    )
    plan = plan_lab(load_inventory([str(path)]).inventory, "wl")
    clash, v6 = plan.externals
    assert (clash.ip, clash.allocated) == (plan.network[-2], True)
    assert (v6.ip, v6.allocated) == (plan.network[-3], True)
    assert "ext/clash: address 10.0.0.1 is a pod's address in the lab" in plan.notes
    assert f"ext/v6: no usable IPv4 in the inventory; the lab gives it {v6.ip}" in plan.notes


def test_lab_inventory_gives_hosts_and_nodes_their_lab_addresses() -> None:
    inventory = whitelist()
    plan = plan_lab(inventory, "wl")
    lab = lab_inventory(inventory, plan)
    assert {n.name: n.addresses for n in lab.nodes} == {n.name: (n.ip,) for n in plan.nodes}
    assert [w.addresses for w in lab.external_workloads] == [(x.ip,) for x in plan.externals]
    other = load_inventory([str(scenario_dir() / "colors" / "cluster.yaml")]).inventory
    with pytest.raises(UsageError):
        lab_inventory(other, plan)


def test_state_file_keeps_the_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "STATE_DIR", tmp_path)
    plan = plan_lab(whitelist(), "wl", [TCP80])
    save_state(LabState(plan, 42))
    loaded = load_state("wl")
    assert loaded is not None and loaded.plan == plan


def test_node_port_is_dnat_to_the_nodes_own_backend_with_local_traffic_policy() -> None:
    inventory = whitelist()
    plan = plan_lab(inventory, "wl")
    lab = lab_inventory(inventory, plan)
    node1 = services_script(plan, lab, plan.node("k8s-node1"))
    assert 'fib daddr type local tcp dport 30358 dnat to 10.244.1.94:80 comment "wordpress/wordpress"' in node1
    assert "snat" not in node1
    assert "dport 30358" not in services_script(plan, lab, plan.node("k8s-node2"))
