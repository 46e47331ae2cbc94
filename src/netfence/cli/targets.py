"""Turn `ns/pod`, `IP` or `svc/ns/name` into the parties of a flow."""

from __future__ import annotations

from dataclasses import dataclass

from netfence.analysis.verdict import Party
from netfence.errors import UsageError
from netfence.ir.types import EndpointKind, Ruleset
from netfence.model.endpoints import EXTERNAL_ID_PREFIX, EndpointId, IPAddress, Pod, Service
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
        host = next(
            (e for e in ruleset.endpoints if e.kind in (EndpointKind.HOST, EndpointKind.EXTERNAL) and address in e.ips),
            None,
        )
        return Party(host.id, host, (address,)) if host is not None else Party.outside(address)
    if text.startswith("svc/"):
        raise UsageError(f"{flag}: a Service can only be a destination (--to svc/NAMESPACE/NAME)")
    if text.startswith("hep/"):
        host = ruleset.endpoint(EndpointId(text))
        if host is not None and host.kind is EndpointKind.HOST:
            return Party.of(host)
    if text.startswith(EXTERNAL_ID_PREFIX):
        workload = ruleset.endpoint(EndpointId(text))
        if workload is None or workload.kind is not EndpointKind.EXTERNAL:
            raise UsageError(f"{flag}: no external workload {text[len(EXTERNAL_ID_PREFIX):]} in the inventory")
        return Party.of(workload)
    ns, _, name = text.rpartition("/")
    pod = inventory.pod(EndpointId(f"{ns or namespace or 'default'}/{name}"))
    if pod is None:
        raise UsageError(
            f"{flag}: no pod {ns or namespace or 'default'}/{name} in the inventory"
            " (expected NAMESPACE/POD, hep/HOSTENDPOINT, ext/WORKLOAD, an IP, or svc/NAMESPACE/NAME)"
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


@dataclass(frozen=True)
class OutsideEntry:
    """Where a host outside the cluster connects to reach one backend of a Service."""

    address: IPAddress
    port: FlowPort
    #: How the address was found ("nodePort on k8s-node1", "load balancer", "external IP").
    what: str
    #: The source address the backend sees: None for the client's own (externalTrafficPolicy
    #: Local), else the node's (Cluster: kube-proxy masquerades).
    masquerade: IPAddress | None


def outside_entry(inventory: Inventory, service: Service, port: FlowPort, backend: Pod) -> OutsideEntry | None:
    """What a host outside the cluster connects to for `service` `port` to reach `backend`: the
    load-balancer IP, else the nodePort on the backend's node, else an external IP. None when
    the Service is not published outside the cluster."""
    entry = next((p for p in service.ports if p.port == port.port and p.protocol == port.protocol), None)
    if entry is None:
        return None
    node = next((n for n in inventory.nodes if n.name == backend.node and n.addresses), None)
    if node is None:
        node = next((n for n in inventory.nodes if n.addresses), None)
    local = service.external_traffic_policy == "Local"
    masquerade = None if local or node is None else node.addresses[0]
    if service.type == "LoadBalancer" and service.load_balancer_ips:
        return OutsideEntry(service.load_balancer_ips[0], port, "load balancer", masquerade)
    if service.type in ("NodePort", "LoadBalancer") and entry.node_port is not None and node is not None:
        target = FlowPort(entry.protocol, entry.node_port)
        return OutsideEntry(node.addresses[0], target, f"nodePort on {node.name}", masquerade)
    if service.external_ips:
        return OutsideEntry(service.external_ips[0], port, "external IP", masquerade)
    return None
