"""Well-known derived labels: what netfence knows about every endpoint and Service, as labels
under `netfence.dev/`, so that a Calico selector can say "service wordpress" or "address
172.18.221.1" the way an operator filters an inventory.

    netfence.dev/kind              pod | host-endpoint | external | service
    netfence.dev/name              the object's name
    netfence.dev/namespace         pods and Services
    netfence.dev/node              pods (spec.nodeName) and host endpoints (spec.node)
    netfence.dev/address           an address of the object (see below)
    netfence.dev/service.<name>    the namespace of Service <name>, on every pod that Service
                                   selects (and on the Service itself)

An object with several addresses (dual stack, a host with two interfaces) matches a selector
when the selector matches with one of them in `netfence.dev/address`. The keys are netfence's:
Calico itself does not set them, so policies using them are read by netfence only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from netfence.model.calico_selector import And, Compare, Expr, Has, InSet, Not, Or, Selector
from netfence.model.endpoints import IPAddress, Service
from netfence.model.inventory import Inventory
from netfence.model.labels import Labels

PREFIX = "netfence.dev/"
KIND = PREFIX + "kind"
NAME = PREFIX + "name"
NAMESPACE = PREFIX + "namespace"
NODE = PREFIX + "node"
ADDRESS = PREFIX + "address"
SERVICE_PREFIX = PREFIX + "service."


def uses_derived(selector: Selector) -> bool:
    """Whether the selector reads any netfence.dev/ key (only then are derived labels needed)."""
    return selector.expr is not None and any(key.startswith(PREFIX) for key in _keys(selector.expr))


def _keys(expr: Expr) -> Iterable[str]:
    match expr:
        case Has(key) | Compare(key, _, _) | InSet(key, _, _):
            yield key
        case Not(inner):
            yield from _keys(inner)
        case And(items) | Or(items):
            for item in items:
                yield from _keys(item)


def variants(base: Mapping[str, str], addresses: Sequence[IPAddress]) -> tuple[Labels, ...]:
    """`base` once per address (with netfence.dev/address set), or once without an address."""
    if not addresses:
        return (Labels(base),)
    return tuple(Labels({**base, ADDRESS: str(address)}) for address in addresses)


def backed_services(inventory: Inventory) -> dict[str, list[Service]]:
    """pod id -> the Services whose selector picks it (in inventory order)."""
    out: dict[str, list[Service]] = {}
    for service in inventory.services:
        for pod in inventory.backends(service):
            out.setdefault(pod.id, []).append(service)
    return out


def derived(
    kind: str, name: str, namespace: str | None = None, node: str | None = None, services: Iterable[Service] = ()
) -> dict[str, str]:
    """The derived labels of one object, without its address."""
    labels = {KIND: kind, NAME: name}
    if namespace is not None:
        labels[NAMESPACE] = namespace
    if node:
        labels[NODE] = node
    labels.update((SERVICE_PREFIX + s.name, s.namespace) for s in services)
    return labels


def service_labels(service: Service) -> dict[str, str]:
    return derived("service", service.name, service.namespace, services=(service,))


def service_addresses(service: Service) -> tuple[IPAddress, ...]:
    """Where a Service is reached: cluster IPs, external IPs, load-balancer IPs."""
    return tuple(dict.fromkeys((*service.cluster_ips, *service.external_ips, *service.load_balancer_ips)))
