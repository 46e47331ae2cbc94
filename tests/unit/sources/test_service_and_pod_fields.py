"""Service, Pod and Node fields read as the API server reads them: empty values it defaults are
defaults here too (type, protocol, targetPort, nodePort, port name, podIP), and what it accepts
loads (any nodePort 1-65535, long Service port names, dual-stack clusterIPs and podIPs). What it
refuses is in tests/robustness/bad_inputs/ (service-*, pod-ips-*, pod-container-*, node-*,
external-workload-*)."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_address

import pytest

from netfence.errors import InputErrors
from netfence.model.endpoints import ServicePort
from netfence.model.ports import Protocol
from netfence.sources.load import load_inventory

Write = Callable[[str, str], str]

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: dev}
spec:
"""


def load_service(write: Write, spec: str):  # type: ignore[no-untyped-def]
    (service,) = load_inventory([write("svc.yaml", SERVICE + spec)]).inventory.services
    return service


def test_empty_type_protocol_target_port_node_port_and_name_are_the_api_servers_defaults(write: Write) -> None:
    service = load_service(
        write,
        """
          type: ""
          ports: [{name: "", port: 80, protocol: "", targetPort: 0, nodePort: 0}]
        """,
    )
    assert service.type == "ClusterIP"
    assert service.ports == (ServicePort(80, Protocol.TCP, None, None, None),)


def test_an_empty_target_port_is_the_port_itself(write: Write) -> None:
    service = load_service(write, '  ports: [{port: 80, targetPort: ""}]\n')
    assert service.ports[0].target_port is None


def test_a_service_port_name_is_a_dns_label_not_an_iana_name(write: Write) -> None:
    # 17 characters: too long for a container port name, fine for a Service port.
    service = load_service(write, "  ports: [{name: web-frontend-http, port: 80, targetPort: http}]\n")
    assert service.ports[0].name == "web-frontend-http"


@pytest.mark.parametrize("node_port", [80, 8080, 30000, 32767, 40000, 65535])
def test_any_node_port_1_to_65535_loads_as_the_node_port_range_is_the_clusters_choice(
    write: Write, node_port: int
) -> None:
    service = load_service(write, f"  type: NodePort\n  ports: [{{port: 80, nodePort: {node_port}}}]\n")
    assert service.ports[0].node_port == node_port


def test_one_port_needs_no_name_and_several_named_ports_load(write: Write) -> None:
    service = load_service(
        write,
        """
          ports:
          - {name: dns, port: 53, protocol: UDP}
          - {name: dns-tcp, port: 53, protocol: TCP}
        """,
    )
    assert [(p.port, p.protocol, p.name) for p in service.ports] == [(53, Protocol.UDP, "dns"), (53, Protocol.TCP, "dns-tcp")]


def test_cluster_ip_alone_or_with_matching_dual_stack_cluster_ips(write: Write) -> None:
    alone = load_service(write, "  clusterIP: 10.96.0.10\n  ports: [{port: 80}]\n")
    assert alone.cluster_ips == (ip_address("10.96.0.10"),)
    both = load_service(write, '  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.10, "fd00::10"]\n  ports: [{port: 80}]\n')
    assert both.cluster_ips == (ip_address("10.96.0.10"), ip_address("fd00::10"))


def test_a_service_as_kubectl_prints_it_with_ip_families_loads(write: Write) -> None:
    service = load_service(
        write,
        """
          type: ClusterIP
          clusterIP: "fd00::10"
          clusterIPs: ["fd00::10", 10.96.0.10]
          ipFamilies: [IPv6, IPv4]
          ipFamilyPolicy: PreferDualStack
          internalTrafficPolicy: Cluster
          sessionAffinity: None
          ports: [{name: http, port: 80, protocol: TCP, targetPort: http}]
        """,
    )
    assert service.cluster_ips == (ip_address("fd00::10"), ip_address("10.96.0.10"))


def test_headless_and_external_name_services_need_no_ports(write: Write) -> None:
    headless = load_service(write, "  clusterIP: None\n  clusterIPs: [None]\n  selector: {app: db}\n")
    assert headless.ports == () and headless.cluster_ips == ()
    external = load_service(write, "  type: ExternalName\n  externalName: db.example.com.\n")
    assert external.type == "ExternalName"


def test_external_traffic_policy_empty_on_a_cluster_ip_service_and_set_on_external_ips(write: Write) -> None:
    assert load_service(write, '  externalTrafficPolicy: ""\n  ports: [{port: 80}]\n').external_traffic_policy == "Cluster"
    service = load_service(write, "  externalIPs: [192.0.2.10]\n  externalTrafficPolicy: Local\n  ports: [{port: 80}]\n")
    assert service.external_traffic_policy == "Local"


def test_every_problem_of_a_service_spec_is_listed(write: Write) -> None:
    path = write(
        "svc.yaml",
        SERVICE
        + """
          clusterIPs: [10.96.0.10]
          ports:
          - {port: 80, nodePort: 30080}
          - {port: 80}
        """,
    )
    with pytest.raises(InputErrors) as caught:
        load_inventory([path])
    assert [line.split(": ", 2)[2] for line in str(caught.value).splitlines()] == [
        "spec.clusterIPs: expected no clusterIPs when clusterIP is not set, got ['10.96.0.10']",
        "spec.ports[0].name: required when a Service has more than one port",
        "spec.ports[0].nodePort: expected no nodePort for type ClusterIP, got 30080",
        "spec.ports[1].name: required when a Service has more than one port",
        "spec.ports[1]: port 80/TCP is already used by ports[0]",
    ]


POD = """
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: dev}
spec:
  containers: [{name: web, ports: [{containerPort: 80, protocol: ""}]}]
"""


def test_an_empty_pod_ip_is_no_address_and_an_empty_container_port_protocol_is_tcp(write: Write) -> None:
    (pod,) = load_inventory([write("pod.yaml", POD + 'status: {phase: Pending, podIP: ""}\n')]).inventory.pods
    assert pod.ips == ()
    assert pod.ports[0].protocol == Protocol.TCP


def test_dual_stack_pod_ips_starting_with_pod_ip_load(write: Write) -> None:
    status = 'status: {podIP: 10.1.0.5, podIPs: [{ip: 10.1.0.5}, {ip: "fd00::5"}]}\n'
    (pod,) = load_inventory([write("pod.yaml", POD + status)]).inventory.pods
    assert pod.ips == (ip_address("10.1.0.5"), ip_address("fd00::5"))


def test_an_external_workload_may_have_a_link_local_address(write: Write) -> None:
    # A cloud's metadata server is such a host.
    text = """
    apiVersion: netfence.dev/v1alpha1
    kind: ExternalWorkload
    metadata: {name: metadata.cloud}
    spec: {addresses: [169.254.169.254]}
    """
    (workload,) = load_inventory([write("ext.yaml", text)]).inventory.external_workloads
    assert workload.addresses == (ip_address("169.254.169.254"),)
