"""Inventory: one immutable snapshot of everything that was loaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import ip_address

from netfence.model.admin import AdminPolicy
from netfence.model.calico import CalicoPolicy, HostEndpoint, NetworkSet, Tier
from netfence.model.endpoints import (
    NAMESPACE_NAME_LABEL,
    EndpointId,
    ExternalWorkload,
    IPAddress,
    Namespace,
    Node,
    Pod,
    Service,
    ServiceAccount,
)
from netfence.model.labels import Labels
from netfence.model.policies import NetworkPolicy


@dataclass(frozen=True)
class Inventory:
    """Everything loaded, each kind sorted by namespace and name."""

    namespaces: tuple[Namespace, ...] = ()
    pods: tuple[Pod, ...] = ()
    services: tuple[Service, ...] = ()
    #: Kubernetes NetworkPolicies.
    policies: tuple[NetworkPolicy, ...] = ()
    service_accounts: tuple[ServiceAccount, ...] = ()
    nodes: tuple[Node, ...] = ()
    #: Calico NetworkPolicies and GlobalNetworkPolicies.
    calico_policies: tuple[CalicoPolicy, ...] = ()
    tiers: tuple[Tier, ...] = ()
    network_sets: tuple[NetworkSet, ...] = ()
    host_endpoints: tuple[HostEndpoint, ...] = ()
    #: AdminNetworkPolicies, BaselineAdminNetworkPolicies and ClusterNetworkPolicies.
    admin_policies: tuple[AdminPolicy, ...] = ()
    #: netfence ExternalWorkloads: hosts outside the cluster.
    external_workloads: tuple[ExternalWorkload, ...] = ()
    _ns_index: dict[str, Namespace] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._ns_index.update((ns.name, ns) for ns in self.namespaces)

    def namespace(self, name: str) -> Namespace:
        """The namespace, or an implicit one carrying only its name label."""
        found = self._ns_index.get(name)
        if found is None:
            found = Namespace(name, Labels({NAMESPACE_NAME_LABEL: name}))
        return found

    @property
    def policy_count(self) -> int:
        return len(self.policies) + len(self.calico_policies) + len(self.admin_policies)

    def service_account(self, namespace: str, name: str) -> ServiceAccount:
        """The account, or an implicit one without labels."""
        for account in self.service_accounts:
            if account.namespace == namespace and account.name == name:
                return account
        return ServiceAccount(namespace, name)

    def pod(self, endpoint: EndpointId) -> Pod | None:
        namespace, _, name = endpoint.partition("/")
        for pod in self.pods:
            if pod.namespace == namespace and pod.name == name:
                return pod
        return None

    def pod_by_ip(self, address: IPAddress) -> Pod | None:
        """The non-hostNetwork pod owning an address (hostNetwork pods share their node's IP)."""
        for pod in self.pods:
            if not pod.host_network and address in pod.ips:
                return pod
        return None

    def external_workload(self, name: str) -> ExternalWorkload | None:
        for workload in self.external_workloads:
            if workload.name == name:
                return workload
        return None

    def external_by_ip(self, address: IPAddress) -> ExternalWorkload | None:
        for workload in self.external_workloads:
            if address in workload.addresses:
                return workload
        return None

    def service(self, namespace: str, name: str) -> Service | None:
        for svc in self.services:
            if svc.namespace == namespace and svc.name == name:
                return svc
        return None

    def service_by_ip(self, address: IPAddress) -> Service | None:
        for svc in self.services:
            if address in svc.cluster_ips:
                return svc
        return None

    def backends(self, service: Service) -> tuple[Pod, ...]:
        """Pods a Service sends traffic to: same namespace, labels matching its selector."""
        if not service.selector:
            # A Service without a selector (or an empty one) gets no endpoints from the controller.
            return ()
        sel = service.selector
        return tuple(
            p
            for p in self.pods
            if p.namespace == service.namespace and all(p.labels.get(k) == v for k, v in sel.items())
        )


def parse_address(text: str) -> IPAddress | None:
    try:
        return ip_address(text)
    except ValueError:
        return None
