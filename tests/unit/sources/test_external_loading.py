"""netfence.dev/v1alpha1 ExternalWorkload and the Service fields that say how clients outside the
cluster reach it: loaded as written, every bad value one exact line."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_address

import pytest

from netfence.errors import InputErrors
from netfence.model.endpoints import WorkloadPort
from netfence.model.ports import Protocol
from netfence.sources.load import load_inventory

Write = Callable[[str, str], str]

EW = "apiVersion: netfence.dev/v1alpha1\nkind: ExternalWorkload\nmetadata: {name: vm}\n"


def test_external_workload_loads_addresses_ports_and_labels(write: Write) -> None:
    path = write(
        "ext.yaml",
        """
        apiVersion: netfence.dev/v1alpha1
        kind: ExternalWorkload
        metadata: {name: haproxy, namespace: ignored, labels: {app: haproxy}}
        spec:
          addresses: [172.18.221.1, "fd00::1"]
          ports: [{name: http, port: 80, protocol: TCP}, {port: 514, protocol: UDP}, {port: 8404}]
        """,
    )
    inventory = load_inventory([path]).inventory
    (workload,) = inventory.external_workloads
    assert workload.id == "ext/haproxy"
    assert dict(workload.labels) == {"app": "haproxy"}
    assert workload.addresses == (ip_address("172.18.221.1"), ip_address("fd00::1"))
    assert workload.ports == (
        WorkloadPort(80, Protocol.TCP, "http"),
        WorkloadPort(514, Protocol.UDP, None),
        WorkloadPort(8404, Protocol.TCP, None),
    )
    assert inventory.external_by_ip(ip_address("fd00::1")) == workload


def test_external_workloads_are_cluster_scoped_so_one_name_is_defined_once(write: Write) -> None:
    doc = EW + "spec: {addresses: [10.0.0.1]}\n"
    path = write("twice.yaml", doc + "---\n" + doc.replace("{name: vm}", "{name: vm, namespace: other}"))
    with pytest.raises(InputErrors) as caught:
        load_inventory([path])
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"{path}:6: ExternalWorkload ") and line.endswith(f"vm: defined twice (first at {path}:1)")


CASES = [
    (EW, "1: ExternalWorkload vm: spec: required field is missing"),
    (EW + "spec: {ports: []}\n", "4: ExternalWorkload vm: spec.addresses: required field is missing"),
    (
        EW + "spec: {addresses: []}\n",
        "4: ExternalWorkload vm: spec.addresses: expected at least one IPv4 or IPv6 address, got []",
    ),
    (
        EW + "spec:\n  addresses: [10.0.0.1, 10.0.0.0/24]\n",
        "5: ExternalWorkload vm: spec.addresses[1]: expected an IPv4 or IPv6 address, got '10.0.0.0/24'",
    ),
    (
        EW + "spec:\n  addresses: [10.0.0.1, 10.0.0.1]\n",
        "5: ExternalWorkload vm: spec.addresses[1]: address 10.0.0.1 is listed twice (first at addresses[0])",
    ),
    (
        EW + "spec:\n  addresses: [10.0.0.1]\n  prots: []\n",
        "6: ExternalWorkload vm: spec.prots: unknown field 'prots'; expected 'ports'",
    ),
    (
        EW + "spec:\n  addresses: [10.0.0.1]\n  ports:\n  - {port: 0}\n",
        "7: ExternalWorkload vm: spec.ports[0].port: expected a port number 1-65535, got 0",
    ),
    (
        EW + "spec:\n  addresses: [10.0.0.1]\n  ports:\n  - {port: 80, protocol: tcp}\n",
        "7: ExternalWorkload vm: spec.ports[0].protocol: expected TCP, UDP or SCTP, got 'tcp'",
    ),
    (
        EW + "spec:\n  addresses: [10.0.0.1]\n  ports:\n  - {name: HTTP, port: 80}\n",
        "7: ExternalWorkload vm: spec.ports[0].name: expected a port name (IANA service name), got 'HTTP'",
    ),
    (
        EW + "spec:\n  addresses: [10.0.0.1]\n  ports:\n  - {port: 80, portName: http}\n",
        "7: ExternalWorkload vm: spec.ports[0].portName: unknown field 'portName'; expected 'port'",
    ),
    (
        EW + "spec:\n  addresses: [10.0.0.1]\n  ports:\n  - {name: web, port: 80}\n  - {name: web, port: 8080}\n",
        "8: ExternalWorkload vm: spec.ports[1].name: port name web is listed twice (first at ports[0])",
    ),
    (
        EW + "spec:\n  addresses: [10.0.0.1]\n  ports:\n  - {port: 80}\n  - {port: 80, protocol: TCP}\n",
        "8: ExternalWorkload vm: spec.ports[1]: port 80/TCP is listed twice (first at ports[0])",
    ),
    (
        "apiVersion: netfence.dev/v1alpha1\nkind: ExternalWorkloads\nmetadata: {name: vm}\n",
        "2: unknown kind ExternalWorkloads in netfence.dev/v1alpha1; expected ExternalWorkload",
    ),
    (
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: dev}\nspec:\n  externalTrafficPolicy: local\n",
        "5: Service dev/s: spec.externalTrafficPolicy: expected Cluster or Local, got 'local'",
    ),
    (
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: dev}\nspec:\n  externalIPs: [1.2.3]\n",
        "5: Service dev/s: spec.externalIPs[0]: expected an IPv4 or IPv6 address, got '1.2.3'",
    ),
    (
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: dev}\nspec: {ports: [{port: 80}]}\n"
        "status:\n  loadBalancer:\n    ingress: [{ip: lb.example.com}]\n",
        "7: Service dev/s: status.loadBalancer.ingress[0].ip: expected an IPv4 or IPv6 address, got 'lb.example.com'",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_bad_external_input_is_one_exact_line(write: Write, text: str, expected: str) -> None:
    path = write("bad.yaml", text)
    with pytest.raises(InputErrors) as caught:
        load_inventory([path])
    assert str(caught.value) == f"{path}:{expected}"


def test_every_problem_of_a_workload_is_reported(write: Write) -> None:
    path = write(
        "bad.yaml",
        EW + "spec:\n  addresses: [10.0.0.1, 10.0.0.1]\n  ports:\n  - {name: web, port: 80}\n  - {name: web, port: 80}\n",
    )
    with pytest.raises(InputErrors) as caught:
        load_inventory([path])
    assert str(caught.value).splitlines() == [
        f"{path}:5: ExternalWorkload vm: spec.addresses[1]: address 10.0.0.1 is listed twice (first at addresses[0])",
        f"{path}:8: ExternalWorkload vm: spec.ports[1].name: port name web is listed twice (first at ports[0])",
        f"{path}:8: ExternalWorkload vm: spec.ports[1]: port 80/TCP is listed twice (first at ports[0])",
    ]


def test_service_keeps_load_balancer_and_external_addresses_and_traffic_policy(write: Write) -> None:
    path = write(
        "svc.yaml",
        """
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop}
        spec:
          type: LoadBalancer
          externalTrafficPolicy: Local
          externalIPs: [192.0.2.10]
          selector: {app: web}
          ports: [{port: 80, targetPort: 8080, nodePort: 31000}]
        status:
          loadBalancer:
            ingress: [{ip: 203.0.113.5}, {hostname: lb.example.com}, {ip: 203.0.113.5}]
        """,
    )
    (service,) = load_inventory([path]).inventory.services
    assert service.load_balancer_ips == (ip_address("203.0.113.5"),)
    assert service.external_ips == (ip_address("192.0.2.10"),)
    assert service.external_traffic_policy == "Local"
    assert service.ports[0].node_port == 31000


def test_service_traffic_policy_defaults_to_cluster(write: Write) -> None:
    path = write("svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n")
    (service,) = load_inventory([path]).inventory.services
    assert (service.external_traffic_policy, service.load_balancer_ips, service.external_ips) == ("Cluster", (), ())
