"""(apiVersion, kind) -> wire model and converter. A new API revision is one more entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from netfence.sources import convert, convert_admin, convert_calico, convert_external
from netfence.sources.schema import calico
from netfence.sources.schema import external as ext
from netfence.sources.schema import kubernetes as k8s
from netfence.sources.schema import network_policy_api as npa


@dataclass(frozen=True)
class Entry:
    wire: type[BaseModel]
    convert: Callable[[convert.Checker, Any], Any]
    namespaced: bool


REGISTRY: dict[tuple[str, str], Entry] = {
    ("v1", "Namespace"): Entry(k8s.Namespace, convert.convert_namespace, namespaced=False),
    ("v1", "Pod"): Entry(k8s.Pod, convert.convert_pod, namespaced=True),
    ("v1", "Service"): Entry(k8s.Service, convert.convert_service, namespaced=True),
    ("networking.k8s.io/v1", "NetworkPolicy"): Entry(
        k8s.NetworkPolicy, convert.convert_network_policy, namespaced=True
    ),
    ("v1", "ServiceAccount"): Entry(k8s.ServiceAccount, convert.convert_service_account, namespaced=True),
    ("v1", "Node"): Entry(k8s.Node, convert.convert_node, namespaced=False),
    ("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy"): Entry(
        npa.AdminNetworkPolicy, convert_admin.convert_admin_network_policy, namespaced=False
    ),
    ("policy.networking.k8s.io/v1alpha1", "BaselineAdminNetworkPolicy"): Entry(
        npa.BaselineAdminNetworkPolicy, convert_admin.convert_baseline_admin_network_policy, namespaced=False
    ),
    ("policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy"): Entry(
        npa.ClusterNetworkPolicy, convert_admin.convert_cluster_network_policy, namespaced=False
    ),
    ("netfence.dev/v1alpha1", "ExternalWorkload"): Entry(
        ext.ExternalWorkload, convert_external.convert_external_workload, namespaced=False
    ),
}


#: Calico: the API server's group and the CRDs underneath it carry one schema.
_CALICO_KINDS = {
    "NetworkPolicy": Entry(calico.NetworkPolicy, convert_calico.convert_network_policy, namespaced=True),
    "GlobalNetworkPolicy": Entry(
        calico.GlobalNetworkPolicy, convert_calico.convert_global_network_policy, namespaced=False
    ),
    "NetworkSet": Entry(calico.NetworkSet, convert_calico.convert_network_set, namespaced=True),
    "GlobalNetworkSet": Entry(calico.NetworkSet, convert_calico.convert_global_network_set, namespaced=False),
    "HostEndpoint": Entry(calico.HostEndpoint, convert_calico.convert_host_endpoint, namespaced=False),
    "Tier": Entry(calico.Tier, convert_calico.convert_tier, namespaced=False),
}
REGISTRY.update(
    ((version, kind), entry)
    for version in ("projectcalico.org/v3", "crd.projectcalico.org/v1")
    for kind, entry in _CALICO_KINDS.items()
)


def known_kinds(api_version: str) -> list[str]:
    return sorted(kind for version, kind in REGISTRY if version == api_version)
