"""(apiVersion, kind) -> wire model and converter. A new API revision is one more entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from netfence.sources import convert
from netfence.sources.schema import kubernetes as k8s


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
}


def known_kinds(api_version: str) -> list[str]:
    return sorted(kind for version, kind in REGISTRY if version == api_version)
