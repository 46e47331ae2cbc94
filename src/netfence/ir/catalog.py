"""catalog(inventory): every endpoint and Service with its addresses, ports and the labels a
selector sees on it, for `netfence inventory --selector`.

An endpoint is listed as Calico selectors see it (scope.py: its labels, Calico's derived labels
and netfence's netfence.dev/ labels), so a selector lists exactly what a GlobalNetworkPolicy with
that selector would select, plus the Services it matches. hostNetwork pods are not endpoints
(policies never select them) and are not listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from netfence.ir import metadata
from netfence.ir.scope import Scope, host_endpoint_id
from netfence.model.calico_selector import Selector
from netfence.model.endpoints import IPAddress, Service
from netfence.model.inventory import Inventory
from netfence.model.labels import Labels
from netfence.model.ports import Protocol

#: Listing order of the kinds.
KINDS = ("pod", "service", "external", "host-endpoint")


@dataclass(frozen=True, slots=True)
class CatalogPort:
    port: int
    protocol: Protocol
    name: str | None = None
    #: Services only.
    target_port: int | str | None = None
    node_port: int | None = None

    def __str__(self) -> str:
        text = f"{self.port}:{self.node_port}" if self.node_port is not None else str(self.port)
        text = f"{text}/{self.protocol}"
        if self.name:
            text = f"{self.name}:{text}"
        if self.target_port is not None and self.target_port != self.port:
            text += f"->{self.target_port}"
        return text


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    kind: str
    #: `namespace/name` (pods), `svc/namespace/name`, `ext/name`, `hep/name`.
    id: str
    namespace: str | None
    name: str
    #: The object's own labels, as declared.
    labels: Labels
    #: netfence.dev/ labels (without netfence.dev/address, which takes each address in turn).
    derived: Labels
    addresses: tuple[IPAddress, ...]
    ports: tuple[CatalogPort, ...]
    node: str | None
    #: `namespace/name` of the Services selecting the pod (a Service: itself).
    services: tuple[str, ...]
    #: What a selector is matched against: all labels, once per address.
    selectable: tuple[Labels, ...]

    def matches(self, selector: Selector) -> bool:
        return any(selector.matches(labels) for labels in self.selectable)


def catalog(inventory: Inventory) -> tuple[CatalogEntry, ...]:
    """Pods, Services, external workloads and host endpoints, in KINDS order, each by id."""
    pods = [p for p in inventory.pods if not p.host_network]
    scope = Scope(inventory, pods)
    backed = metadata.backed_services(inventory)
    ports: dict[str, tuple[CatalogPort, ...]] = {}
    own: dict[str, Labels] = {}
    for pod in pods:
        ports[pod.id] = tuple(CatalogPort(p.port, p.protocol, p.name) for p in pod.ports)
        own[pod.id] = pod.labels
    for workload in inventory.external_workloads:
        ports[workload.id] = tuple(CatalogPort(p.port, p.protocol, p.name) for p in workload.ports)
        own[workload.id] = workload.labels
    for hep in inventory.host_endpoints:
        ports[host_endpoint_id(hep.name)] = tuple(CatalogPort(p.port, p.protocol, p.name) for p in hep.ports)
        own[host_endpoint_id(hep.name)] = hep.labels
    entries: list[CatalogEntry] = []
    for member in scope.members:
        if member.endpoint is None:
            continue  # network sets are not endpoints
        services = backed.get(member.endpoint, []) if member.is_pod else []
        derived = metadata.derived(member.kind, member.name, member.namespace, member.node, services)
        entries.append(
            CatalogEntry(
                kind=member.kind,
                id=member.endpoint,
                namespace=member.namespace,
                name=member.name,
                labels=own[member.endpoint],
                derived=Labels(derived),
                addresses=member.addresses,
                ports=ports.get(member.endpoint, ()),
                node=member.node,
                services=tuple(s.id for s in services),
                selectable=scope.selectable_labels(member),
            )
        )
    entries.extend(_service_entry(service) for service in inventory.services)
    return tuple(sorted(entries, key=lambda e: (KINDS.index(e.kind), e.namespace or "", e.name)))


def select(entries: Iterable[CatalogEntry], selector: Selector | None) -> tuple[CatalogEntry, ...]:
    return tuple(e for e in entries if selector is None or e.matches(selector))


def _service_entry(service: Service) -> CatalogEntry:
    derived = metadata.service_labels(service)
    addresses = metadata.service_addresses(service)
    return CatalogEntry(
        kind="service",
        id=f"svc/{service.id}",
        namespace=service.namespace,
        name=service.name,
        labels=service.labels,
        derived=Labels(derived),
        addresses=addresses,
        ports=tuple(CatalogPort(p.port, p.protocol, p.name, p.target_port, p.node_port) for p in service.ports),
        node=None,
        services=(service.id,),
        selectable=metadata.variants({**service.labels, **derived}, addresses),
    )
