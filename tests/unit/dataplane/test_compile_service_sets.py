"""One Calico rule naming a Service becomes several IR rules with one RuleRef (backends split by
target port, ways in from outside split by port): each keeps its own address set."""

from __future__ import annotations

from collections.abc import Callable

from clusters import Cluster, pod

from netfence.dataplane.host import compile_host
from netfence.dataplane.nft.compile import compile_node
from netfence.dataplane.nft.host import render_host
from netfence.model.endpoints import EndpointId

Make = Callable[..., Cluster]

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: s, namespace: default}
spec:
  type: LoadBalancer
  selector: {app: a}
  ports: [{port: 80, targetPort: web, nodePort: 30080}]
status: {loadBalancer: {ingress: [{ip: 203.0.113.9}]}}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
status: {addresses: [{type: InternalIP, address: 10.9.0.1}]}
---
apiVersion: netfence.dev/v1alpha1
kind: ExternalWorkload
metadata: {name: vm, labels: {app: client}}
spec: {addresses: [192.0.2.1]}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: out}
spec:
  selector: app == 'client'
  types: [Egress]
  egress:
  - action: Allow
    protocol: TCP
    destination: {services: {name: s, namespace: default}}
"""


def cluster_with_two_target_ports(cluster: Make) -> Cluster:
    return cluster(
        pod("default", "a", {"app": "a"}, "10.0.0.1", ports=(("web", 8080, "TCP"),)),
        pod("default", "b", {"app": "a"}, "10.0.0.2", ports=(("web", 9090, "TCP"),)),
        pod("default", "client", {"app": "client"}, "10.0.0.3"),
        SERVICE,
    )


def test_pod_table_keeps_each_target_ports_backends_in_its_own_set(cluster: Make) -> None:
    text = compile_node(cluster_with_two_target_ports(cluster).ruleset, None).render()
    sets = {line.split()[1]: line for line in text.splitlines() if line.strip().startswith("set ")}
    rules = [line.strip() for line in text.splitlines() if "th dport" in line]
    for address, port in (("10.0.0.1", 8080), ("10.0.0.2", 9090)):
        (rule,) = [r for r in rules if f"{{ {port} }}" in r]
        name = rule.split("@")[1].split()[0]
        assert f"elements = {{ {address} }}" in sets[name]


def test_host_table_keeps_load_balancer_and_node_addresses_apart(cluster: Make) -> None:
    text = render_host(compile_host(cluster_with_two_target_ports(cluster).ruleset, EndpointId("ext/vm"))).render()
    sets = {line.split()[1]: line for line in text.splitlines() if line.strip().startswith("set ")}
    rules = [line.strip() for line in text.splitlines() if "th dport" in line]
    for address, port in (("203.0.113.9", 80), ("10.9.0.1", 30080)):
        (rule,) = [r for r in rules if f"{{ {port} }}" in r]
        assert f"elements = {{ {address} }}" in sets[rule.split("@")[1].split()[0]]
