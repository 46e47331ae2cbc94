"""Calico and AdminNetworkPolicy rule features in a real kernel: what the compiled table lets
through is what the analyzer predicts, for negations, named ports in both directions, ICMP
types, Log, source ports, services, network sets and IP versions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from test_lab_dataplane import disagreements, outcome, pods_by_name

from netfence.ir.build import build_ruleset
from netfence.lab.control import compare, enforce, up
from netfence.lab.plan import lab_inventory
from netfence.lab.probe import Outcome
from netfence.model.ports import FlowPort, Protocol
from netfence.sources.load import load_inventory

pytestmark = pytest.mark.lab

PORTS = [
    FlowPort(Protocol.TCP, 80),
    FlowPort(Protocol.TCP, 8080),
    FlowPort(Protocol.UDP, 53),
    FlowPort(Protocol.UDP, 80),
    FlowPort(Protocol.ICMP, None),
]

CLUSTER = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {zone: in}}
---
apiVersion: v1
kind: Namespace
metadata: {name: other, labels: {zone: out}}
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
  nodeName: node-a
  containers: [{name: c, image: api, ports: [{name: http, containerPort: 8080}]}]
status: {phase: Running, podIP: 10.1.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: probe, namespace: shop, labels: {app: probe}}
spec: {nodeName: node-b, containers: [{name: c, image: busybox}]}
status: {phase: Running, podIP: 10.1.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: other, labels: {app: client}}
spec: {nodeName: node-b, containers: [{name: c, image: busybox}]}
status: {phase: Running, podIP: 10.1.0.4}
---
apiVersion: v1
kind: Pod
metadata: {name: scanner, namespace: other, labels: {app: scanner}}
spec: {nodeName: node-a, containers: [{name: c, image: busybox}]}
status: {phase: Running, podIP: 10.1.0.5}
---
apiVersion: v1
kind: Service
metadata: {name: web-svc, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 8000, targetPort: http}]
"""

POLICIES = """
# The probe's egress: a named port resolved per destination, UDP except 80, a Log rule, ping.
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: probe-out}
spec:
  order: 10
  selector: app == 'probe'
  types: [Egress]
  egress:
  - action: Allow
    protocol: TCP
    destination: {ports: [http]}
  - action: Log
  - action: Allow
    protocol: UDP
    destination: {notPorts: [80]}
  - action: Allow
    protocol: ICMP
    icmp: {type: 8}
---
# The scanner's address, named by labels in a network set.
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: scanners, labels: {role: bad}}
spec: {nets: [SCANNER/32]}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: block-bad}
spec:
  order: 1
  selector: app == 'web'
  types: [Ingress]
  ingress:
  - action: Deny
    source: {selector: role == 'bad'}
---
# web's ingress: IPv6 only (never here), shop pods other than the probe denied, the client's
# address on TCP 80, the probe on the named port, UDP from zone=in namespaces, any ICMP but
# echo replies.
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: web-in, namespace: shop}
spec:
  order: 100
  selector: app == 'web'
  types: [Ingress]
  ingress:
  - action: Allow
    ipVersion: 6
  - action: Deny
    source: {notSelector: app == 'probe'}
  - action: Allow
    protocol: TCP
    source: {nets: [CLIENT/32]}
    destination: {ports: [80]}
  - action: Allow
    protocol: TCP
    source: {selector: app == 'probe'}
    destination: {ports: [http]}
  - action: Allow
    notProtocol: TCP
    source: {namespaceSelector: zone == 'in'}
  - action: Allow
    protocol: ICMP
    notICMP: {type: 0}
---
# Source ports are the client's ephemeral ones: a rule on ports 1-1023 never matches.
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: privileged-sources}
spec:
  selector: app == 'api'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source: {ports: ["1:1023"]}
---
# The client may only reach the web service's pods on their target port.
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: client-out, namespace: other}
spec:
  selector: app == 'client'
  types: [Egress]
  egress:
  - action: Allow
    destination:
      services: {name: web-svc, namespace: shop}
  - action: Deny
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: api-admin}
spec:
  priority: 5
  subject:
    pods:
      namespaceSelector: {}
      podSelector: {matchLabels: {app: api}}
  ingress:
  - action: Deny
    from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: scanner}}}}]
    ports: [{portNumber: {protocol: UDP, port: 53}}]
  - action: Allow
    from: [{namespaces: {matchLabels: {zone: out}}}]
    ports: [{namedPort: http}]
  - action: Pass
    from: [{namespaces: {}}]
"""


def test_calico_and_admin_rule_features_in_the_kernel_match_the_analyzer(
    lab_name: str, write: Callable[[str, str], str]
) -> None:
    cluster = write("cluster.yaml", CLUSTER)
    plan = up(load_inventory([cluster]).inventory, lab_name, PORTS).state.plan
    pod = pods_by_name(plan)
    text = POLICIES.replace("SCANNER", str(pod["scanner"].ip)).replace("CLIENT", str(pod["client"].ip))
    inventory = load_inventory([cluster, write("policies.yaml", text)]).inventory
    ruleset = build_ruleset(lab_inventory(inventory, plan))

    assert enforce(plan, ruleset) == []
    comparison = compare(plan, ruleset, PORTS)

    assert comparison.mismatches == 0, "\n".join(disagreements(comparison))
    report = comparison.report
    tcp80, tcp8080, udp53, udp80, icmp = PORTS
    answered, timeout = Outcome.ANSWERED.value, Outcome.TIMEOUT.value
    cases = [
        ("probe", "web", tcp80, answered),  # named port http = 80 on web, both directions
        ("probe", "api", tcp8080, timeout),  # api's http is 8080 but api's Pass ends in isolation
        ("probe", "web", tcp8080, timeout),
        ("probe", "web", udp53, answered),  # UDP except 80, from zone=in
        ("probe", "web", udp80, timeout),
        ("probe", "web", icmp, answered),  # echo request is not an echo reply
        ("api", "web", tcp80, timeout),  # shop pods other than the probe are denied
        ("client", "web", tcp80, answered),  # the service's target port, and the client's address
        ("client", "web", udp53, timeout),  # the service is TCP; the Deny takes the rest
        ("client", "api", tcp8080, timeout),  # the client's egress reaches the service only
        ("scanner", "api", tcp8080, answered),  # ANP namedPort from zone=out
        ("scanner", "api", udp53, timeout),  # ANP Deny
        ("scanner", "web", icmp, timeout),  # the network set's Deny comes first
    ]
    got = [(s, d, str(p), outcome(report, pod[s], pod[d], p)) for s, d, p, _ in cases]
    assert got == [(s, d, str(p), want) for s, d, p, want in cases]
