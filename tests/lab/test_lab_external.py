"""External hosts in the lab: namespaces on the underlay, outside every node, each enforcing its own
side of the whitelist with its own firewall (nftables or iptables), NodePort Services DNATed on the
nodes as kube-proxy does. The kernel must do what the analyzer predicts, with either backend."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from importlib import resources
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from test_lab_dataplane import disagreements

from netfence.dataplane.apply import read_table
from netfence.dataplane.iptables.apply import read_iptables, run_tool
from netfence.ir.build import build_ruleset
from netfence.ir.types import Ruleset
from netfence.lab.connection import probe_address, probe_once
from netfence.lab.control import compare, enforce, up
from netfence.lab.moves import move_pod
from netfence.lab.plan import LabPlan, LabWorkload, lab_inventory
from netfence.lab.probe import Outcome, ProbeReport
from netfence.lab.services import apply_services, read_services
from netfence.model.endpoints import EndpointId
from netfence.model.inventory import Inventory
from netfence.model.ports import FlowPort, Protocol
from netfence.sources.load import load_inventory

pytestmark = pytest.mark.lab

Write = Callable[[str, str], str]
SCENARIO = resources.files("netfence") / "scenarios" / "whitelist"
TCP80, TCP3306 = FlowPort(Protocol.TCP, 80), FlowPort(Protocol.TCP, 3306)
WORDPRESS = "wordpress/wordpress-6dfdd9f64f-d75j2"
MYSQL = "wordpress/wordpress-mysql-5b58bbd695-gxtc4"
ANSWERED, TIMEOUT = Outcome.ANSWERED, Outcome.TIMEOUT


def needs(backend: str) -> None:
    if backend == "iptables" and not (shutil.which("iptables-restore") and shutil.which("ipset")):
        pytest.skip("the iptables backend needs iptables and ipset (scripts/setup.sh installs them)")


def by_id(plan: LabPlan) -> dict[str, LabWorkload]:
    return {w.id: w for w in plan.workloads}


def outcome(report: ProbeReport, source: str, destination: str, port: FlowPort) -> str:
    ids = [e.id for e in report.endpoints]
    return str(report.outcomes[report.ports.index(port), ids.index(source), ids.index(destination)])


def render(plan: LabPlan, files: list[str], backend: str) -> tuple[Inventory, Ruleset]:
    """What an operator does after any change: load the files, enforce everything again."""
    inventory = lab_inventory(load_inventory(files).inventory, plan)
    ruleset = build_ruleset(inventory)
    assert enforce(plan, ruleset, backend) == []
    apply_services(plan, inventory)
    return inventory, ruleset


@pytest.mark.parametrize("backend", ["nft", "iptables"])
def test_haproxy_vm_to_wordpress_nodeport_to_mysql_with_one_whitelist(
    lab_name: str, write: Write, backend: str
) -> None:
    needs(backend)
    cluster_text = (SCENARIO / "cluster.yaml").read_text()
    cluster = write("cluster.yaml", cluster_text)
    whitelist = str(SCENARIO / "whitelist.yaml")
    plan = up(load_inventory([cluster]).inventory, lab_name, [TCP80, TCP3306]).state.plan
    _, ruleset = render(plan, [cluster, whitelist], backend)
    node = {n.name: n for n in plan.nodes}
    ids = by_id(plan)
    haproxy, client = ids["ext/haproxy"], ids["ext/client"]

    # Every direct flow between pods and hosts, both ports: the kernel agrees with the analyzer.
    comparison = compare(plan, ruleset, [TCP80, TCP3306])
    assert comparison.mismatches == 0, "\n".join(disagreements(comparison))
    report = comparison.report
    direct = [
        ("ext/client", "ext/haproxy", TCP80, ANSWERED),  # clients reach HAProxy on 80
        ("wordpress/toolbox", "ext/haproxy", TCP3306, TIMEOUT),  # nothing else reaches the VM
        ("ext/haproxy", "ext/client", TCP80, TIMEOUT),  # the VM reaches nothing else
        ("ext/haproxy", WORDPRESS, TCP80, TIMEOUT),  # not even the backend directly: only the Service
        ("ext/haproxy", MYSQL, TCP3306, TIMEOUT),
        (WORDPRESS, MYSQL, TCP3306, ANSWERED),  # WordPress -> MySQL
        ("wordpress/toolbox", MYSQL, TCP3306, TIMEOUT),
        ("ext/client", WORDPRESS, TCP80, TIMEOUT),
        (WORDPRESS, "ext/haproxy", TCP80, TIMEOUT),
    ]
    got = [(s, d, p, outcome(report, s, d, p)) for s, d, p, _ in direct]
    assert got == [(s, d, p, w.value) for s, d, p, w in direct]

    # HAProxy -> node:nodePort -> WordPress: DNAT on the node, the VM's own rule for that node only
    # (externalTrafficPolicy Local: the node running WordPress is the one that forwards).
    def via(source: LabWorkload, node_name: str, port: int) -> Outcome:
        address = str(node[node_name].ip)
        return probe_address(plan, source.netns, address, FlowPort(Protocol.TCP, port), [WORDPRESS])

    assert via(haproxy, "k8s-node1", 30358) is ANSWERED
    assert via(haproxy, "k8s-node2", 30358) is TIMEOUT  # the VM's firewall
    assert via(client, "k8s-node1", 30358) is TIMEOUT  # WordPress's ingress on the node
    kernel = read_table(haproxy.netns) if backend == "nft" else read_iptables(haproxy.netns)
    assert "30358" in kernel and str(node["k8s-node1"].ip) in (kernel + _ipsets(haproxy.netns))

    # The nodePort changes: the same whitelist, rendered again, follows it.
    moved_port = write("cluster.yaml", cluster_text.replace("nodePort: 30358", "nodePort: 31999"))
    render(plan, [moved_port, whitelist], backend)
    assert via(haproxy, "k8s-node1", 31999) is ANSWERED
    assert via(haproxy, "k8s-node1", 30358) is TIMEOUT

    # MySQL is rescheduled and gets another address: rendered again, WordPress still reaches it.
    new_ip = IPv4Address("10.244.3.77")
    plan = move_pod(plan, EndpointId(MYSQL), new_ip)
    moved_pod = write("cluster.yaml", Path(moved_port).read_text().replace("10.244.3.18", str(new_ip)))
    _, ruleset = render(plan, [moved_pod, whitelist], backend)
    mysql = by_id(plan)[MYSQL]
    assert mysql.ip == new_ip
    assert probe_once(plan, by_id(plan)[WORDPRESS].netns, mysql, TCP3306) is ANSWERED
    assert probe_once(plan, by_id(plan)["wordpress/toolbox"].netns, mysql, TCP3306) is TIMEOUT
    assert via(haproxy, "k8s-node1", 31999) is ANSWERED
    comparison = compare(plan, ruleset, [TCP80, TCP3306])
    assert comparison.mismatches == 0, "\n".join(disagreements(comparison))


def _ipsets(netns: str) -> str:
    """The sets' members (the iptables backend keeps addresses there, not in the rules)."""
    if shutil.which("ipset") is None:
        return ""
    return run_tool(["ipset", "list"], netns)


CLUSTER = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {zone: in}}
---
apiVersion: v1
kind: Node
metadata: {name: node-a}
---
apiVersion: v1
kind: Node
metadata: {name: node-b}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  nodeName: node-a
  containers:
  - name: c
    image: nginx
    ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 53, protocol: UDP}]
status: {phase: Running, podIP: 10.1.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
spec:
  nodeName: node-b
  containers: [{name: c, image: api, ports: [{name: http, containerPort: 80}]}]
status: {phase: Running, podIP: 10.1.0.2}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80, targetPort: http, nodePort: 30080}]
status: {loadBalancer: {ingress: [{ip: 203.0.113.80}]}}
---
apiVersion: netfence.dev/v1alpha1
kind: ExternalWorkload
metadata: {name: vm, labels: {role: vm}}
spec:
  addresses: [192.0.2.10]
  ports: [{name: http, port: 80}, {name: dns, port: 53, protocol: UDP}]
---
apiVersion: netfence.dev/v1alpha1
kind: ExternalWorkload
metadata: {name: db, labels: {role: db}}
spec:
  addresses: [192.0.2.20]
  ports: [{name: http, port: 8080}]
---
apiVersion: netfence.dev/v1alpha1
kind: ExternalWorkload
metadata: {name: scanner, labels: {role: scanner}}
spec:
  addresses: [198.51.100.66]
"""

POLICIES = """
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: scanners, labels: {feed: bad}}
spec: {nets: [198.51.100.0/24]}
---
# Before everything: the scanners' network is denied on every host; the rest passes on.
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.block}
spec:
  tier: security
  selector: has(role)
  types: [Ingress]
  ingress:
  - action: Log
  - action: Deny
    source: {selector: feed == 'bad'}
  - action: Pass
---
# The VM: in, its named ports (http, dns) from pods, ping but not an echo reply; out, the web
# Service (its load balancer and node ports), DNS anywhere but port 80, ICMP.
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: vm}
spec:
  selector: role == 'vm'
  types: [Ingress, Egress]
  ingress:
  - action: Allow
    protocol: TCP
    source: {selector: has(netfence.dev/namespace)}
    destination: {ports: [http]}
  - action: Allow
    protocol: UDP
    source: {namespaceSelector: zone == 'in'}
    destination: {ports: [dns]}
  - action: Allow
    protocol: ICMP
    notICMP: {type: 0}
  - action: Allow
    ipVersion: 6
  egress:
  - action: Allow
    protocol: TCP
    destination: {services: {name: web, namespace: shop}}
  - action: Allow
    protocol: UDP
    destination: {notPorts: [80]}
  - action: Allow
    protocol: ICMP
    icmp: {type: 8, code: 0}
---
# The database host: TCP only, from anything but the api pod, on its named port; a rule on
# privileged source ports never matches a client's ephemeral port.
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: db}
spec:
  selector: role == 'db'
  types: [Ingress, Egress]
  ingress:
  - action: Allow
    protocol: TCP
    source: {ports: ["1:1023"]}
  - action: Deny
    source: {selector: app == 'api'}
  - action: Allow
    protocol: TCP
    destination: {ports: [http, 9999]}
  egress:
  - action: Allow
    notProtocol: UDP
    destination: {selector: role == 'vm', namespaceSelector: global()}
---
# Pods: web's ingress is isolated by a Kubernetes NetworkPolicy admitting only the VM's address.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-in, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{ipBlock: {cidr: 192.0.2.0/27, except: [192.0.2.20/32]}}]
"""

FEATURE_PORTS = [
    FlowPort(Protocol.TCP, 80),
    FlowPort(Protocol.TCP, 8080),
    FlowPort(Protocol.UDP, 53),
    FlowPort(Protocol.UDP, 80),
    FlowPort(Protocol.ICMP, None),
]


@pytest.mark.parametrize("backend", ["nft", "iptables"])
def test_host_firewall_rule_features_in_the_kernel_match_the_analyzer(
    lab_name: str, write: Write, backend: str
) -> None:
    needs(backend)
    cluster = write("cluster.yaml", CLUSTER)
    plan = up(load_inventory([cluster]).inventory, lab_name, FEATURE_PORTS).state.plan
    _, ruleset = render(plan, [cluster, write("policies.yaml", POLICIES)], backend)

    comparison = compare(plan, ruleset, FEATURE_PORTS)
    assert comparison.mismatches == 0, "\n".join(disagreements(comparison))
    report = comparison.report
    tcp80, tcp8080, udp53, udp80, icmp = FEATURE_PORTS
    cases = [
        ("shop/api", "ext/vm", tcp80, ANSWERED),  # the VM's named port http, from a pod
        ("ext/db", "ext/vm", tcp80, TIMEOUT),  # the db's egress allows it; the VM takes http from pods only
        ("shop/web", "ext/vm", udp53, ANSWERED),  # dns from zone=in
        ("ext/scanner", "ext/vm", tcp80, TIMEOUT),  # the security tier's Deny (a network set)
        ("shop/api", "ext/vm", icmp, ANSWERED),  # not an echo reply; the reply leaves as established
        ("shop/web", "ext/db", tcp8080, ANSWERED),  # the db's named port http = 8080
        ("shop/api", "ext/db", tcp8080, TIMEOUT),  # the Deny before it
        ("ext/vm", "ext/db", udp53, TIMEOUT),  # the VM lets UDP out; the db takes TCP only
        ("ext/vm", "ext/db", tcp8080, TIMEOUT),  # the VM's whitelist: the Service, UDP, ping
        ("ext/vm", "shop/web", tcp8080, TIMEOUT),  # direct to the backend: not the VM's whitelist
        ("ext/vm", "shop/api", udp53, ANSWERED),  # UDP except 80
        ("ext/vm", "shop/api", udp80, Outcome.UNREACHABLE),  # dropped on output: the sender gets EPERM
        ("ext/scanner", "shop/web", tcp8080, TIMEOUT),  # web admits 192.0.2.0/27 only
    ]
    got = [(s, d, str(p), outcome(report, s, d, p)) for s, d, p, _ in cases]
    assert got == [(s, d, str(p), w.value) for s, d, p, w in cases]

    # The web Service from the VM: its load balancer (routed through a node) and a node port.
    vm = by_id(plan)["ext/vm"]
    web = ["shop/web"]
    assert "dport 30080" in read_services(plan.nodes[0].netns)
    node_port = FlowPort(Protocol.TCP, 30080)
    node_a, node_b = (str(n.ip) for n in plan.nodes)
    assert probe_address(plan, vm.netns, "203.0.113.80", tcp80, web) is ANSWERED
    assert probe_address(plan, vm.netns, node_a, node_port, web) is ANSWERED
    # externalTrafficPolicy Cluster: node-b forwards to web on node-a and masquerades, so web's
    # ingress (192.0.2.0/27) sees node-b's address, not the VM's.
    assert probe_address(plan, vm.netns, node_b, node_port, web) is TIMEOUT
    assert probe_address(plan, vm.netns, node_a, FlowPort(Protocol.TCP, 30081), web) is TIMEOUT  # the VM's firewall
