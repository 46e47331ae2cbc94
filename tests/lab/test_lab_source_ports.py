"""Calico source ports in a real kernel: the analyzer's ephemeral-port model against the probes.

A client's source port is one of 32768-60999 (Linux's default net.ipv4.ip_local_port_range, set
explicitly in every pod netns of the lab). Source-port criteria that cover that range or miss it
all get the same verdict from the kernel whatever port the client picks, and the analyzer must
predict it: ranges, notPorts, and named source ports resolved on the source pod. A client bound to
its own named port shows the kernel resolving the name per source address.
"""

from __future__ import annotations

import socket
import struct
import subprocess
from collections.abc import Callable

import pytest
from test_lab_dataplane import disagreements, outcome, pods_by_name

from netfence.analysis.lint import lint
from netfence.ir.build import build_ruleset
from netfence.ir.types import EPHEMERAL_PORTS
from netfence.lab.connection import socket_in
from netfence.lab.control import compare, enforce, up
from netfence.lab.plan import LabPod, lab_inventory
from netfence.lab.probe import Outcome
from netfence.lab.servers import answer
from netfence.model.ports import FlowPort, Protocol
from netfence.sources.load import load_inventory

pytestmark = pytest.mark.lab

PORTS = [FlowPort(Protocol.TCP, 80), FlowPort(Protocol.TCP, 8080), FlowPort(Protocol.UDP, 53), FlowPort(Protocol.ICMP, None)]

#: The client's named port: declared in the analyzed cluster only, so that the lab does not serve
#: it and a client socket can be bound to it.
NAMED = 5555

PODS = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  nodeName: node-a
  containers: [{name: c, image: nginx, ports: [{name: http, containerPort: 80}, {name: dns, containerPort: 53, protocol: UDP}]}]
status: {phase: Running, podIP: 10.1.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
spec:
  nodeName: node-b
  containers: [{name: c, image: api, ports: [{name: http, containerPort: 8080}]}]
status: {phase: Running, podIP: 10.1.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: other, labels: {app: client}}
spec:
  nodeName: node-b
  containers: [{name: c, image: busybox CLIENT_PORTS}]
status: {phase: Running, podIP: 10.1.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: batch, namespace: other, labels: {app: batch}}
spec: {nodeName: node-a, containers: [{name: c, image: busybox}]}
status: {phase: Running, podIP: 10.1.0.4}
"""

POLICIES = """
# web: privileged source ports never match (no client picks one), 1024-65535 always does; UDP
# from any source but its own dns port (53: every ephemeral port is left).
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: web-in, namespace: shop}
spec:
  selector: app == 'web'
  types: [Ingress]
  ingress:
  - {action: Deny, protocol: TCP, source: {ports: ["1:1023"]}}
  - {action: Allow, protocol: TCP, source: {ports: ["1024:65535"]}}
  - {action: Allow, protocol: UDP, source: {notPorts: [dns]}}
---
# api: from the client's named port only (a named port is one number: no ephemeral pick is it),
# then every TCP source port but 80 is denied, the rest allowed.
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: api-in}
spec:
  selector: app == 'api'
  types: [Ingress]
  ingress:
  - {action: Allow, protocol: TCP, source: {selector: app == 'client', ports: [src]}}
  - {action: Deny, protocol: TCP, source: {notPorts: [80]}}
  - {action: Allow}
---
# client: TCP from the whole ephemeral range and from its own port src, no UDP (every port but
# 61000-65535), ICMP.
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: client-out, namespace: other}
spec:
  selector: app == 'client'
  types: [Egress]
  egress:
  - {action: Allow, protocol: TCP, source: {ports: ["32768:60999", src]}}
  - {action: Deny, protocol: UDP, source: {notPorts: ["61000:65535"]}}
  - {action: Allow, protocol: ICMP}
"""


def connect_from(pod: LabPod, source_port: int, destination: LabPod, port: int) -> Outcome:
    """One TCP connection from `pod` bound to `source_port`, to `destination`'s server."""
    sock = socket_in(pod.netns, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((str(pod.ip), source_port))
        sock.settimeout(1.5)
        try:
            sock.connect((str(destination.ip), port))
            data = sock.recv(2048)
        except TimeoutError:
            return Outcome.TIMEOUT
        return Outcome.ANSWERED if data.split(b"\n", 1)[0] + b"\n" == answer(destination.id) else Outcome.WRONG_POD
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def test_source_port_rules_in_the_kernel_match_the_analyzers_ephemeral_port_model(
    lab_name: str, write: Callable[[str, str], str]
) -> None:
    served = load_inventory([write("lab.yaml", PODS.replace("CLIENT_PORTS", ""))]).inventory
    plan = up(served, lab_name, PORTS).state.plan
    pod = pods_by_name(plan)
    for lab_pod in plan.pods:
        found = subprocess.run(
            ["ip", "netns", "exec", lab_pod.netns, "cat", "/proc/sys/net/ipv4/ip_local_port_range"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert tuple(int(x) for x in found) == EPHEMERAL_PORTS

    client_ports = f", ports: [{{name: src, containerPort: {NAMED}}}]"
    cluster = write("cluster.yaml", PODS.replace("CLIENT_PORTS", client_ports))
    inventory = load_inventory([cluster, write("policies.yaml", POLICIES)]).inventory
    ruleset = build_ruleset(lab_inventory(inventory, plan))
    # Nothing here depends on the client's pick.
    assert [f for f in lint(inventory, ruleset) if f.code == "source-port-split"] == []

    assert enforce(plan, ruleset) == []
    comparison = compare(plan, ruleset, PORTS)
    assert comparison.mismatches == 0, "\n".join(disagreements(comparison))

    tcp80, tcp8080, udp53, icmp = PORTS
    answered, timeout = Outcome.ANSWERED.value, Outcome.TIMEOUT.value
    cases = [
        ("batch", "web", tcp80, answered),  # source ports 1024:65535 hold for every pick
        ("client", "web", tcp80, answered),  # and the client's 32768:60999 too
        ("batch", "web", udp53, answered),  # notPorts [dns]: batch declares no dns
        ("api", "web", udp53, answered),
        ("web", "web", udp53, answered),  # a pod reaching itself
        ("client", "web", udp53, timeout),  # the client's notPorts [61000:65535] Deny holds
        ("client", "web", icmp, timeout),  # web isolated: its rules are TCP and UDP
        ("client", "api", icmp, answered),
        ("web", "api", tcp8080, timeout),  # notPorts [80]: every pick is denied
        ("client", "api", tcp8080, timeout),  # the named port is not an ephemeral pick
        ("web", "api", udp53, answered),
        ("batch", "api", icmp, answered),
    ]
    got = [(s, d, str(p), outcome(comparison.report, pod[s], pod[d], p)) for s, d, p, _ in cases]
    assert got == [(s, d, str(p), want) for s, d, p, want in cases]

    # The kernel resolves the name per source address: bound to its port src, the client leaves
    # (its egress, the local pod's name) and reaches api (api's ingress, the remote pod's name);
    # batch on the same port does not, nor does the client from another port outside the range.
    assert connect_from(pod["client"], NAMED, pod["api"], 8080) is Outcome.ANSWERED
    assert connect_from(pod["batch"], NAMED, pod["api"], 8080) is Outcome.TIMEOUT
    assert connect_from(pod["client"], NAMED + 1, pod["api"], 8080) is Outcome.TIMEOUT
