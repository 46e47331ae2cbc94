"""(apiVersion, kind) -> wire model and converter. A new API revision is one more entry."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from netfence.sources.convert import Checker


@dataclass(frozen=True)
class Entry:
    """A kind's wire model and converter, named as `module:attribute` under netfence.sources and
    imported on first use: a run that reads no Calico or ANP object never imports their schemas."""

    wire_name: str
    convert_name: str
    namespaced: bool

    @functools.cached_property
    def wire(self) -> type[BaseModel]:
        return _resolve(f"schema.{self.wire_name}")  # type: ignore[no-any-return]

    @functools.cached_property
    def convert(self) -> Callable[[Checker, Any], Any]:
        return _resolve(self.convert_name)  # type: ignore[no-any-return]


def _resolve(name: str) -> Any:
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(f"netfence.sources.{module}"), attribute)


REGISTRY: dict[tuple[str, str], Entry] = {
    ("v1", "Namespace"): Entry("kubernetes:Namespace", "convert:convert_namespace", namespaced=False),
    ("v1", "Pod"): Entry("kubernetes:Pod", "convert:convert_pod", namespaced=True),
    ("v1", "Service"): Entry("kubernetes:Service", "convert:convert_service", namespaced=True),
    ("networking.k8s.io/v1", "NetworkPolicy"): Entry(
        "kubernetes:NetworkPolicy", "convert:convert_network_policy", namespaced=True
    ),
    ("v1", "ServiceAccount"): Entry("kubernetes:ServiceAccount", "convert:convert_service_account", namespaced=True),
    ("v1", "Node"): Entry("kubernetes:Node", "convert:convert_node", namespaced=False),
    ("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy"): Entry(
        "network_policy_api:AdminNetworkPolicy", "convert_admin:convert_admin_network_policy", namespaced=False
    ),
    ("policy.networking.k8s.io/v1alpha1", "BaselineAdminNetworkPolicy"): Entry(
        "network_policy_api:BaselineAdminNetworkPolicy",
        "convert_admin:convert_baseline_admin_network_policy",
        namespaced=False,
    ),
    ("policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy"): Entry(
        "network_policy_api:ClusterNetworkPolicy", "convert_admin:convert_cluster_network_policy", namespaced=False
    ),
    ("netfence.dev/v1alpha1", "ExternalWorkload"): Entry(
        "external:ExternalWorkload", "convert_external:convert_external_workload", namespaced=False
    ),
}


#: Calico: the API server's group and the CRDs underneath it carry one schema.
_CALICO_KINDS = {
    "NetworkPolicy": Entry("calico:NetworkPolicy", "convert_calico:convert_network_policy", namespaced=True),
    "GlobalNetworkPolicy": Entry(
        "calico:GlobalNetworkPolicy", "convert_calico:convert_global_network_policy", namespaced=False
    ),
    "NetworkSet": Entry("calico:NetworkSet", "convert_calico:convert_network_set", namespaced=True),
    "GlobalNetworkSet": Entry("calico:NetworkSet", "convert_calico:convert_global_network_set", namespaced=False),
    "HostEndpoint": Entry("calico:HostEndpoint", "convert_calico:convert_host_endpoint", namespaced=False),
    "Tier": Entry("calico:Tier", "convert_calico:convert_tier", namespaced=False),
}
REGISTRY.update(
    ((version, kind), entry)
    for version in ("projectcalico.org/v3", "crd.projectcalico.org/v1")
    for kind, entry in _CALICO_KINDS.items()
)


def known_kinds(api_version: str) -> list[str]:
    return sorted(kind for version, kind in REGISTRY if version == api_version)
