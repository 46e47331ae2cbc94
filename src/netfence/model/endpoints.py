"""Namespaces, pods and services as declared."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import NewType

from netfence.errors import Location
from netfence.model.labels import Labels
from netfence.model.ports import Protocol

#: `namespace/name` of a pod: the identity endpoints are known by everywhere.
EndpointId = NewType("EndpointId", str)

IPAddress = IPv4Address | IPv6Address

#: Set on every namespace by the API server (since Kubernetes 1.21).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: Labels
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class ContainerPort:
    """A port a container declares; `name` makes it usable as a named port in policies."""

    port: int
    protocol: Protocol = Protocol.TCP
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Pod:
    namespace: str
    name: str
    labels: Labels
    ips: tuple[IPAddress, ...] = ()
    node: str | None = None
    service_account: str = "default"
    host_network: bool = False
    ports: tuple[ContainerPort, ...] = ()
    location: Location | None = None

    @property
    def id(self) -> EndpointId:
        return EndpointId(f"{self.namespace}/{self.name}")


@dataclass(frozen=True, slots=True)
class ServicePort:
    port: int
    protocol: Protocol = Protocol.TCP
    name: str | None = None
    #: A number, a container port name, or None (same as `port`).
    target_port: int | str | None = None
    node_port: int | None = None


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    #: None: the service has no selector (endpoints managed by hand), so it selects no pod.
    selector: Labels | None
    ports: tuple[ServicePort, ...] = ()
    cluster_ips: tuple[IPAddress, ...] = ()
    type: str = "ClusterIP"
    labels: Labels = Labels()
    location: Location | None = None
    #: status.loadBalancer.ingress[].ip: where clients outside the cluster reach a LoadBalancer.
    load_balancer_ips: tuple[IPAddress, ...] = ()
    #: spec.externalIPs: addresses outside the cluster that nodes also accept the service on.
    external_ips: tuple[IPAddress, ...] = ()
    #: spec.externalTrafficPolicy: "Cluster" (any node forwards to any backend, the client's
    #: address masqueraded to the node's) or "Local" (a node forwards to its own backends only,
    #: keeping the client's address).
    external_traffic_policy: str = "Cluster"

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class WorkloadPort:
    """A port an external workload listens on; `name` makes it usable as a named port."""

    port: int
    protocol: Protocol = Protocol.TCP
    name: str | None = None


#: Endpoint ids of external workloads start with this (pods: `namespace/name`, host endpoints `hep/`).
EXTERNAL_ID_PREFIX = "ext/"


@dataclass(frozen=True, slots=True)
class ExternalWorkload:
    """A host outside the cluster (a VM, a bare-metal server): netfence.dev/v1alpha1 ExternalWorkload.

    Cluster-scoped. Policies select it by its labels, like a pod; its own firewall enforces them
    (`netfence compile --host NAME`).
    """

    name: str
    labels: Labels
    addresses: tuple[IPAddress, ...] = ()
    ports: tuple[WorkloadPort, ...] = ()
    location: Location | None = None

    @property
    def id(self) -> EndpointId:
        return EndpointId(f"{EXTERNAL_ID_PREFIX}{self.name}")


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    namespace: str
    name: str
    labels: Labels = Labels()
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    labels: Labels = Labels()
    #: status.addresses of type InternalIP / ExternalIP.
    addresses: tuple[IPAddress, ...] = ()
    location: Location | None = None
