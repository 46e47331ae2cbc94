"""Turn `ns/pod`, `IP` or `svc/ns/name` into the parties of a flow."""

from __future__ import annotations

from dataclasses import dataclass

from netfence.analysis.verdict import Party
from netfence.errors import UsageError
from netfence.ir.types import EndpointKind, Ruleset
from netfence.model.endpoints import EndpointId, Pod, Service
from netfence.model.inventory import Inventory, parse_address
from netfence.model.ports import FlowPort


@dataclass(frozen=True)
class ServiceTarget:
    service: Service
    #: (backend, the port the flow really goes to on it)
    backends: tuple[tuple[Party, FlowPort], ...]
    #: Backends skipped because they do not declare the named targetPort.
    missing: tuple[str, ...]


def pod_party(ruleset: Ruleset, pod: Pod) -> Party:
    endpoint = ruleset.endpoint(pod.id)
    if endpoint is None:  # hostNetwork: only its (node) address takes part
        return Party(f"{pod.id} (hostNetwork)", None, pod.ips)
    return Party.of(endpoint)


def resolve_party(inventory: Inventory, ruleset: Ruleset, text: str, namespace: str | None, flag: str) -> Party:
    address = parse_address(text)
    if address is not None:
        pod = inventory.pod_by_ip(address)
        if pod is not None:
            return pod_party(ruleset, pod)
        host = next((e for e in ruleset.endpoints if e.kind is EndpointKind.HOST and address in e.ips), None)
        return Party(host.id, host, (address,)) if host is not None else Party.outside(address)
    if text.startswith("svc/"):
        raise UsageError(f"{flag}: a Service can only be a destination (--to svc/NAMESPACE/NAME)")
    if text.startswith("hep/"):
        host = ruleset.endpoint(EndpointId(text))
        if host is not None and host.kind is EndpointKind.HOST:
            return Party.of(host)
    ns, _, name = text.rpartition("/")
    pod = inventory.pod(EndpointId(f"{ns or namespace or 'default'}/{name}"))
    if pod is None:
        raise UsageError(
            f"{flag}: no pod {ns or namespace or 'default'}/{name} in the inventory"
            " (expected NAMESPACE/POD, hep/HOSTENDPOINT, an IP, or svc/NAMESPACE/NAME)"
        )
    return pod_party(ruleset, pod)


def resolve_service(
    inventory: Inventory, ruleset: Ruleset, text: str, namespace: str | None, port: FlowPort
) -> ServiceTarget | None:
    """The service named `svc/ns/name` (or owning a cluster IP); None when `text` is not a service."""
    service = None
    address = parse_address(text)
    if address is not None:
        service = inventory.service_by_ip(address)
    elif text.startswith("svc/"):
        ns, _, name = text[len("svc/") :].rpartition("/")
        service = inventory.service(ns or namespace or "default", name)
        if service is None:
            raise UsageError(f"--to: no service {ns or namespace or 'default'}/{name} in the inventory")
    if service is None:
        return None
    if port.port is None:
        raise UsageError(f"--port: a Service destination needs a port, not {port}")
    entry = next((p for p in service.ports if p.port == port.port and p.protocol == port.protocol), None)
    if entry is None:
        offered = ", ".join(f"{p.port}/{p.protocol}" for p in service.ports) or "none"
        raise UsageError(f"--port: service {service.id} has no port {port} (its ports: {offered})")
    backends: list[tuple[Party, FlowPort]] = []
    missing: list[str] = []
    for pod in inventory.backends(service):
        target = entry.target_port if entry.target_port is not None else entry.port
        if isinstance(target, str):
            number = next((p.port for p in pod.ports if p.name == target and p.protocol == entry.protocol), None)
            if number is None:
                missing.append(pod.id)
                continue
            target = number
        backends.append((pod_party(ruleset, pod), FlowPort(entry.protocol, target)))
    return ServiceTarget(service, tuple(backends), tuple(missing))
