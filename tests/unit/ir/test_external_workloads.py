"""External workloads in the IR: endpoints like pods (selected by labels, cluster-wide like host
endpoints), allowed by default, reached through a Service the way a client outside the cluster
reaches it, and matched by netfence's derived labels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clusters import Cluster, namespace, pod

from netfence.ir.types import Action, EndpointKind

Make = Callable[..., Cluster]

VM = """
apiVersion: netfence.dev/v1alpha1
kind: ExternalWorkload
metadata: {name: vm, labels: {app: lb}}
spec:
  addresses: [192.0.2.10, "2001:db8::10"]
  ports: [{name: http, port: 8080}]
"""

NODES = """
apiVersion: v1
kind: Node
metadata: {name: n1}
status: {addresses: [{type: InternalIP, address: 10.0.0.11}]}
---
apiVersion: v1
kind: Node
metadata: {name: n2}
status: {addresses: [{type: InternalIP, address: 10.0.0.12}, {type: Hostname, address: n2}]}
"""


def web_service(kind: str = "NodePort", policy: str = "Cluster", **extra: Any) -> str:
    status = extra.get("status", "")
    # A ClusterIP service has neither a node port nor an external traffic policy (the API server refuses them).
    outside = kind != "ClusterIP"
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec:
  type: {kind}
  {f"externalTrafficPolicy: {policy}" if outside else ""}
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: http{", nodePort: 30080" if outside else ""}}}]
{status}
"""


def shop() -> list[Any]:
    return [
        namespace("shop"),
        pod("shop", "web", {"app": "web"}, "10.1.0.1", ports=(("http", 8000, "TCP"),), nodeName="n1"),
        pod("shop", "client", {"app": "client"}, "10.1.0.2", nodeName="n2"),
    ]


GNP_EGRESS_TO_WEB = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: to-web}
spec:
  selector: app in {'lb', 'client'}
  types: [Egress]
  egress:
  - action: Allow
    protocol: TCP
    destination: {services: {name: web, namespace: shop}}
"""


def test_external_workload_is_an_endpoint_allowed_by_default(cluster: Make) -> None:
    c = cluster(*shop(), VM)
    vm = c.ruleset.endpoint("ext/vm")  # type: ignore[arg-type]
    assert vm is not None
    assert (vm.kind, vm.namespace, vm.name, vm.node) == (EndpointKind.EXTERNAL, "", "vm", None)
    assert vm.default_action is Action.ALLOW
    assert vm.resolve_port("http", vm.named_ports[0][1]) == 8080
    assert c.allowed("ext/vm", "shop/web", "8000/TCP")
    assert c.allowed("shop/web", "ext/vm", "8080/TCP")


def test_global_policy_selects_external_workload_by_label_and_isolates_it(cluster: Make) -> None:
    gnp = """
    apiVersion: projectcalico.org/v3
    kind: GlobalNetworkPolicy
    metadata: {name: lb}
    spec:
      selector: app == 'lb'
      ingress:
      - action: Allow
        protocol: TCP
        source: {selector: app == 'client'}
        destination: {ports: [http]}
    """
    c = cluster(*shop(), VM, gnp)
    assert c.allowed("shop/client", "ext/vm", "8080/TCP")
    assert not c.allowed("shop/client", "ext/vm", "80/TCP")
    assert not c.allowed("shop/web", "ext/vm", "8080/TCP")
    verdict = c.verdict("shop/web", "ext/vm", "8080/TCP")
    assert verdict.ingress.endpoint == "ext/vm" and not verdict.ingress.allowed


def test_namespaced_policies_neither_select_nor_see_external_workloads_without_global(cluster: Make) -> None:
    policies = """
    apiVersion: projectcalico.org/v3
    kind: NetworkPolicy
    metadata: {name: web, namespace: shop}
    spec:
      selector: all()
      ingress:
      - action: Allow
        source: {selector: app == 'lb'}
      - action: Allow
        source: {selector: app == 'lb', namespaceSelector: global()}
        destination: {ports: [8000]}
        protocol: TCP
    ---
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: client, namespace: shop}
    spec:
      podSelector: {matchLabels: {app: client}}
      ingress:
      - from: [{podSelector: {}, namespaceSelector: {}}]
      - from: [{ipBlock: {cidr: 192.0.2.0/24}}]
        ports: [{port: 81}]
    """
    c = cluster(*shop(), VM, policies)
    subjects = {s for tier in c.ruleset.ingress for p in tier.policies for s in p.subjects}
    assert "ext/vm" not in subjects
    assert c.allowed("ext/vm", "shop/web", "8000/TCP")  # global() reaches it
    assert not c.allowed("ext/vm", "shop/web", "8001/TCP")  # the plain selector stays in shop
    assert not c.allowed("ext/vm", "shop/client", "80/TCP")  # pod and namespace selectors: pods only
    assert c.allowed("ext/vm", "shop/client", "81/TCP")  # ipBlock: by address


def test_derived_labels_select_by_service_address_kind_and_node(cluster: Make) -> None:
    gnp = """
    apiVersion: projectcalico.org/v3
    kind: GlobalNetworkPolicy
    metadata: {name: derived}
    spec:
      selector: has(netfence.dev/service.web) || netfence.dev/address == '2001:db8::10'
      ingress:
      - action: Allow
        source: {selector: netfence.dev/kind == 'pod' && netfence.dev/node == 'n2'}
    """
    c = cluster(*shop(), VM, web_service(), gnp)
    (policy,) = c.ruleset.ingress[0].policies
    assert policy.subjects == {"shop/web", "ext/vm"}
    assert c.allowed("shop/client", "shop/web", "8000/TCP")
    assert c.allowed("shop/client", "ext/vm", "8080/TCP")
    assert not c.allowed("ext/vm", "shop/web", "8000/TCP")


def test_derived_service_label_carries_the_namespace(cluster: Make) -> None:
    gnp = """
    apiVersion: projectcalico.org/v3
    kind: GlobalNetworkPolicy
    metadata: {name: derived}
    spec:
      selector: netfence.dev/service.web == 'other'
      ingress: [{action: Deny}]
    """
    c = cluster(*shop(), web_service(), gnp)
    assert c.ruleset.ingress[0].policies[0].subjects == frozenset()


def test_service_from_outside_is_every_node_at_the_node_port(cluster: Make) -> None:
    c = cluster(*shop(), VM, NODES, web_service(), GNP_EGRESS_TO_WEB)
    assert c.allowed("ext/vm", "10.0.0.11", "30080/TCP")
    assert c.allowed("ext/vm", "10.0.0.12", "30080/TCP")
    assert not c.allowed("ext/vm", "10.0.0.11", "80/TCP")
    # The workload is not on the pod network's path: the backend itself is not in its whitelist.
    assert not c.allowed("ext/vm", "shop/web", "8000/TCP")
    # Pods keep the backends on their target port, and only that.
    assert c.allowed("shop/client", "shop/web", "8000/TCP")
    assert not c.allowed("shop/client", "10.0.0.11", "30080/TCP")


def test_service_with_local_traffic_policy_is_reached_on_nodes_running_a_backend(cluster: Make) -> None:
    c = cluster(*shop(), VM, NODES, web_service(policy="Local"), GNP_EGRESS_TO_WEB)
    assert c.allowed("ext/vm", "10.0.0.11", "30080/TCP")
    assert not c.allowed("ext/vm", "10.0.0.12", "30080/TCP")


def test_load_balancer_service_is_reached_on_its_address_and_node_ports(cluster: Make) -> None:
    status = "status:\n  loadBalancer:\n    ingress: [{ip: 203.0.113.5}]"
    c = cluster(*shop(), VM, NODES, web_service("LoadBalancer", status=status), GNP_EGRESS_TO_WEB)
    assert c.allowed("ext/vm", "203.0.113.5", "80/TCP")
    assert not c.allowed("ext/vm", "203.0.113.5", "30080/TCP")
    assert c.allowed("ext/vm", "10.0.0.12", "30080/TCP")


def test_cluster_ip_service_is_not_reachable_from_outside(cluster: Make) -> None:
    c = cluster(*shop(), VM, NODES, web_service("ClusterIP"), GNP_EGRESS_TO_WEB)
    assert not c.allowed("ext/vm", "10.0.0.11", "30080/TCP")
    assert not c.allowed("ext/vm", "shop/web", "8000/TCP")
    assert c.allowed("shop/client", "shop/web", "8000/TCP")


def test_untracked_and_pre_dnat_policies_do_not_select_external_workloads(cluster: Make) -> None:
    gnp = """
    apiVersion: projectcalico.org/v3
    kind: GlobalNetworkPolicy
    metadata: {name: raw}
    spec:
      selector: all()
      doNotTrack: true
      applyOnForward: true
      ingress: [{action: Deny}]
    """
    c = cluster(*shop(), VM, gnp)
    assert c.ruleset.ingress[0].policies[0].subjects == frozenset()
