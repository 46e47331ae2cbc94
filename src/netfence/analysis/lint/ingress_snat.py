"""ingress-controller-client-block: an ingress rule admitting clients by address to pods that
clients reach through an ingress controller.

An ingress controller (an L7 proxy) ends the client's connection and opens its own to the
backend: the backend sees the controller pod's address, never the client's. A rule admitting
client addresses there never matches proxied traffic; the controller must be the peer, and
clients are filtered at the controller. netfence reports a rule when all of these hold:

- ingress-controller pods are loaded: a label `app`, `app.kubernetes.io/name`,
  `app.kubernetes.io/instance` or `k8s-app` whose value contains `ingress` (ingress-nginx,
  nginx-ingress, haproxy-ingress, istio-ingressgateway, ...) or is one of traefik, contour, kong,
  emissary, ambassador; or a pod of a namespace whose name contains `ingress`;
- it is an Allow rule of ingress, and one of its peers is an address block (ipBlock, Calico nets
  or the nets of a network set) holding none of the controllers' addresses, so it means clients;
- some pod it applies to is only reachable through a proxy: a ClusterIP Service selects it and no
  NodePort or LoadBalancer Service does (those expose pods to clients directly, where client
  addresses can be kept with externalTrafficPolicy: Local), and it is not a controller itself.
"""

from __future__ import annotations

from collections.abc import Iterator

from netfence.analysis.lint.context import Context, PolicyEntry, direction_field, sample
from netfence.analysis.lint.finding import Check, Finding, Severity
from netfence.ir.types import Action, CidrBlock
from netfence.model.endpoints import EndpointId, IPAddress, Pod
from netfence.model.policies import Direction, PolicyKind

CONTROLLER_KEYS = ("app", "app.kubernetes.io/name", "app.kubernetes.io/instance", "k8s-app")
PROXIES = frozenset({"traefik", "contour", "kong", "emissary", "ambassador"})
DIRECT = frozenset({"NodePort", "LoadBalancer"})


def is_controller(pod: Pod) -> bool:
    if "ingress" in pod.namespace:
        return True
    values = [pod.labels[k].lower() for k in CONTROLLER_KEYS if k in pod.labels]
    return any("ingress" in v or v in PROXIES for v in values)


def run(context: Context) -> Iterator[Finding]:
    controllers = [p for p in context.inventory.pods if is_controller(p)]
    if not controllers:
        return
    addresses = [a for p in controllers for a in p.ips]
    backends = _proxied(context, {p.id for p in controllers})
    entries = {entry.ref: entry for entry in context.policies}
    seen: set[tuple[object, int, int]] = set()
    for tier in context.ruleset.ingress:
        for policy in tier.policies:
            entry = entries.get(policy.ref)
            if entry is None:
                continue
            for rule in policy.rules:
                if rule.action is not Action.ALLOW:
                    continue
                behind = sorted(
                    s
                    for s in policy.subjects & backends
                    if rule.local is None or rule.local.matches(s, context.ips(s))
                )
                if not behind:
                    continue
                for peer in rule.peers or ():
                    clients = [b for b in peer.blocks if not any(b.contains(a) for a in addresses)]
                    key = (policy.ref, rule.ref.index, peer.index)
                    if not clients or key in seen:
                        continue
                    seen.add(key)
                    yield _finding(entry, rule.ref.index, peer.index, clients, behind, controllers, addresses)


def _proxied(context: Context, controllers: set[EndpointId]) -> frozenset[EndpointId]:
    """Pods a ClusterIP Service selects and no NodePort or LoadBalancer Service does."""
    behind: set[EndpointId] = set()
    exposed: set[EndpointId] = set()
    for service in context.inventory.services:
        pods = {p.id for p in context.inventory.backends(service) if not p.host_network}
        (exposed if service.type in DIRECT else behind).update(pods)
    return frozenset(behind - exposed - controllers)


def _finding(
    entry: PolicyEntry,
    index: int,
    peer: int,
    clients: list[CidrBlock],
    behind: list[EndpointId],
    controllers: list[Pod],
    addresses: list[IPAddress],
) -> Finding:
    blocks = ", ".join(str(b.network) for b in clients[:3]) + (", ..." if len(clients) > 3 else "")
    controller = controllers[0].id + (f" ({addresses[0]})" if addresses else "")
    if entry.ref.kind is PolicyKind.NETWORK_POLICY:
        field: tuple[str | int, ...] = ("spec", direction_field(Direction.INGRESS), index, "from", peer)
    else:
        field = ("spec", direction_field(Direction.INGRESS), index, "source")
    return CHECK.finding(
        entry.label,
        entry.location,
        f"ingress[{index}] admits clients by address ({blocks}) to {sample(list(behind), 2)}, which clients "
        f"reach through the ingress controller {controller}: the controller connects from its own "
        "address, so this peer never matches proxied traffic",
        "admit the controller's pods (namespaceSelector and podSelector in one peer) and restrict client "
        "addresses at the controller (ingress-nginx: nginx.ingress.kubernetes.io/whitelist-source-range)",
        field,
    )


CHECK = Check(
    "ingress-controller-client-block",
    Severity.WARNING,
    "Ingress from client addresses to pods behind an ingress controller that proxies (SNATs)",
    run,
)
