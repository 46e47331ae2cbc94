"""Minimal cases the differential fuzzing found (bench/fuzz.py), each kept as a regression test:
the analyzer's reading, the compiled statement, and (marked lab) the kernel agreeing with the
per-flow evaluator on the case."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest
from cluster_strategies import LAB_LAYOUT, ClusterSpec
from differential import KernelLab, base_objects, load

from netfence.analysis.verdict import Flow, Party, evaluate
from netfence.dataplane.apply import apply_table
from netfence.dataplane.nft.compile import compile_node
from netfence.dataplane.nft.objects import Table
from netfence.errors import InputError
from netfence.ir.build import build_ruleset
from netfence.model.ports import FlowPort, Protocol
from netfence.sources.documents import Source, parse_source
from netfence.sources.load import build_inventory

# Found after 932 kernel scenarios (seed 7): a Calico egress rule without a protocol, excluding a
# named port with notPorts. The destination names TCP 53 `dns`; the compiled rule excluded port 53
# of every protocol (`th dport != { 53 }`), so UDP 53 — which the rule allows — was dropped, and
# an ICMP packet was tested on its checksum. Calico resolves a named port to protocol and port.
NOT_NAMED_PORT = [
    {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": "c0", "namespace": "beta"},
        "spec": {
            "selector": "app == 'web'",
            "egress": [{"action": "Allow", "destination": {"notPorts": ["dns"]}}],
        },
    }
]


def with_named_ports(objects: list[dict[str, object]]) -> list[dict[str, object]]:
    """LAB_LAYOUT's pods, every one app=web, alpha/a0 naming TCP 53 `dns` and TCP 80 `http`."""
    out = []
    for obj in objects:
        if obj["kind"] == "Pod":
            obj = {**obj, "metadata": {**obj["metadata"], "labels": {"app": "web"}}}  # type: ignore[dict-item]
            if obj["metadata"]["name"] == "a0":  # type: ignore[index]
                ports = [{"name": "dns", "containerPort": 53, "protocol": "TCP"}, {"name": "http", "containerPort": 80}]
                obj["spec"] = {"nodeName": "node-a", "containers": [{"name": "c", "ports": ports}]}
        out.append(obj)
    return out


@pytest.fixture(scope="module")
def not_named_port() -> ClusterSpec:
    return ClusterSpec(LAB_LAYOUT, tuple(with_named_ports(base_objects(LAB_LAYOUT)) + NOT_NAMED_PORT))


def test_not_ports_with_a_named_port_exclude_only_that_protocols_port(not_named_port: ClusterSpec) -> None:
    ruleset = build_ruleset(load(not_named_port))
    b0, a0 = ruleset.endpoint("beta/b0"), ruleset.endpoint("alpha/a0")
    assert b0 is not None and a0 is not None

    def allowed(port: FlowPort) -> bool:
        return evaluate(ruleset, Flow(Party.of(b0), Party.of(a0), port)).allowed

    assert not allowed(FlowPort(Protocol.TCP, 53))
    assert allowed(FlowPort(Protocol.UDP, 53))
    assert allowed(FlowPort(Protocol.TCP, 80))
    assert allowed(FlowPort(Protocol.ICMP, None))

    statements = [r.statement for c in compile_node(ruleset, "node-a").chains for r in c.rules]
    assert any("meta l4proto . th dport != { tcp . 53 }" in s for s in statements), statements
    assert not any("th dport != { 53 }" in s for s in statements)


@pytest.fixture(scope="module")
def kernel_lab() -> Iterator[KernelLab]:
    lab = KernelLab()
    try:
        yield lab
    finally:
        lab.close()


@pytest.mark.lab
def test_the_kernel_agrees_on_not_ports_with_a_named_port(kernel_lab: KernelLab, not_named_port: ClusterSpec) -> None:
    assert kernel_lab.disagreements(not_named_port) == []


# Found by compiling the fuzzer's clusters with `nft --check`: a Calico rule on named source ports
# rendered `th sport { }` (names were not resolved in the dataplane), and nft refused the node's
# whole table, so no policy of the node could be applied. Named source ports now resolve per
# source endpoint (`ip saddr . th sport { address . port }`), and a family without any such
# endpoint gets no set at all: the entry matches nothing there.
NAMED_SOURCE_PORTS = """
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
spec: {nodeName: n1, containers: [{name: c, ports: [{name: dns, containerPort: 53}]}]}
status: {podIP: 10.1.0.2}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  selector: all()
  ingress:
  - {action: Allow, source: {notPorts: [dns]}}
  - {action: Allow, source: {ports: [dns]}}
  - {action: Allow, protocol: TCP, source: {ports: [dns, 1024]}}
"""


def named_source_ports_table() -> Table:
    problems: list[InputError] = []
    inventory = build_inventory(parse_source(Source("cluster.yaml", NAMED_SOURCE_PORTS), problems)).inventory
    assert problems == []
    return compile_node(build_ruleset(inventory), "n1")


def test_a_rule_on_named_source_ports_compiles_to_no_empty_port_set() -> None:
    statements = [r.statement for c in named_source_ports_table().chains for r in c.rules]
    assert not any("{  }" in s for s in statements), statements
    assert [s for s in statements if "sport" in s] == [
        "meta nfproto ipv4 meta l4proto . ip saddr . th sport != { tcp . 10.1.0.2 . 53 } counter accept",
        "meta nfproto ipv4 meta l4proto . ip saddr . th sport { tcp . 10.1.0.2 . 53 } counter accept",
        "meta nfproto ipv4 meta l4proto tcp th sport { 1024 } counter accept",
        "meta nfproto ipv4 meta l4proto tcp ip saddr . th sport { 10.1.0.2 . 53 } counter accept",
        "meta nfproto ipv6 meta l4proto tcp th sport { 1024 } counter accept",
    ]


@pytest.mark.lab
def test_a_rule_on_named_source_ports_is_accepted_by_the_kernel() -> None:
    name = f"netfence-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        assert apply_table(named_source_ports_table(), name) == "replace"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


# Found by the kernel property once Calico source ports joined its clusters: an egress Allow with
# `source: {notPorts: [53]}` and `destination: {notPorts: [80]}` let TCP 80 through. nft (1.0.6)
# merges the two single-value tests of the adjacent port fields, `th sport != 53 th dport != 80`,
# into one 32-bit `!=` that holds when either port differs. A negated source port is now written
# as a range (`th sport != { 53-53 }`), which nft never merges.
SOURCE_AND_DESTINATION_NOT_PORTS = [
    {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": "c0", "namespace": "alpha"},
        "spec": {
            "selector": "app == 'web'",
            "egress": [
                {"action": "Allow", "protocol": "TCP", "source": {"notPorts": [53]}, "destination": {"notPorts": [80]}}
            ],
        },
    }
]


@pytest.fixture(scope="module")
def both_not_ports() -> ClusterSpec:
    return ClusterSpec(LAB_LAYOUT, tuple(with_named_ports(base_objects(LAB_LAYOUT)) + SOURCE_AND_DESTINATION_NOT_PORTS))


def test_a_negated_source_port_is_a_range_test_nft_cannot_merge_with_a_negated_destination_port(
    both_not_ports: ClusterSpec,
) -> None:
    ruleset = build_ruleset(load(both_not_ports))
    a0, b0 = ruleset.endpoint("alpha/a0"), ruleset.endpoint("beta/b0")
    assert a0 is not None and b0 is not None
    assert not evaluate(ruleset, Flow(Party.of(a0), Party.of(b0), FlowPort(Protocol.TCP, 80))).allowed
    assert evaluate(ruleset, Flow(Party.of(a0), Party.of(b0), FlowPort(Protocol.TCP, 8080))).allowed
    statements = [r.statement for c in compile_node(ruleset, "node-a").chains for r in c.rules]
    assert "meta l4proto tcp th sport != { 53-53 } th dport != { 80 } counter return" in statements


@pytest.mark.lab
def test_the_kernel_agrees_on_negated_source_and_destination_ports(
    kernel_lab: KernelLab, both_not_ports: ClusterSpec
) -> None:
    assert kernel_lab.disagreements(both_not_ports) == []
