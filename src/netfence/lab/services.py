"""NodePort and LoadBalancer Services in the lab, implemented as kube-proxy implements them: DNAT
on every node, so a host outside the cluster really goes host -> node:nodePort -> pod.

Each node gets `table ip netfence_services` (replaced whole in one nft transaction):

- prerouting: a packet to one of the node's own addresses (`fib daddr type local`) at a
  nodePort, or to a load-balancer or external IP at the Service's port, is DNATed to a backend
  pod at its target port (one backend chosen at random per connection, as kube-proxy does);
- externalTrafficPolicy Local: only the node's own backends, and the client's address is kept
  (a node without one has no rule, so the connection finds no listener there);
- Cluster: any backend, and the connection is masqueraded to the node's address (postrouting),
  so replies come back through the node that translated them.

External hosts reach a load-balancer IP through a node that has a backend (Local) or the first
node, the way a layer-2 load balancer announces it. The lab's addresses are the pods' lab IPs:
apply with the lab's inventory (plan.lab_inventory).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from netfence.dataplane.apply import apply_script, run_nft
from netfence.dataplane.nft.objects import comment
from netfence.lab.netns import ip_batch
from netfence.lab.plan import POD_INTERFACE, LabNode, LabPlan, LabPod
from netfence.model.inventory import Inventory
from netfence.model.ports import Protocol

TABLE = "netfence_services"
#: Marks a connection to masquerade (externalTrafficPolicy Cluster): "NF" in ASCII.
MASQUERADE_MARK = "0x4e46"
_L4 = {Protocol.TCP: "tcp", Protocol.UDP: "udp"}


@dataclass(frozen=True, slots=True)
class Entry:
    """One way into a Service from outside: an address (None: every address of the node) and a port."""

    service: str
    protocol: Protocol
    address: IPv4Address | None
    port: int
    #: (pod, target port) the node may send it to.
    backends: tuple[tuple[LabPod, int], ...]
    masquerade: bool


def entries(plan: LabPlan, inventory: Inventory, node: LabNode) -> list[Entry]:
    """What `node` translates, Service by Service, port by port."""
    pods = {p.id: p for p in plan.pods}
    out: list[Entry] = []
    for service in inventory.services:
        if service.type not in ("NodePort", "LoadBalancer") and not service.external_ips:
            continue
        local = service.external_traffic_policy == "Local"
        backends = [p for p in inventory.backends(service) if p.id in pods]
        for port in service.ports:
            if port.protocol not in _L4:
                continue
            targets = []
            for pod in backends:
                lab_pod = pods[pod.id]
                if local and lab_pod.node != node.name:
                    continue
                target = port.target_port if port.target_port is not None else port.port
                if isinstance(target, str):
                    number = next((c.port for c in pod.ports if c.name == target and c.protocol == port.protocol), None)
                    if number is None:
                        continue
                    target = number
                targets.append((lab_pod, target))
            if not targets:
                continue
            ways: list[tuple[IPv4Address | None, int]] = []
            if service.type in ("NodePort", "LoadBalancer") and port.node_port is not None:
                ways.append((None, port.node_port))
            addresses = (*(service.load_balancer_ips if service.type == "LoadBalancer" else ()), *service.external_ips)
            ways += [(a, port.port) for a in addresses if isinstance(a, IPv4Address)]
            for address, number in ways:
                out.append(Entry(service.id, port.protocol, address, number, tuple(targets), not local))
    return out


def services_script(plan: LabPlan, inventory: Inventory, node: LabNode) -> str:
    """The node's `table ip netfence_services`, replacing any previous one in one transaction."""
    prerouting, postrouting = [], []
    found = entries(plan, inventory, node)
    for entry in found:
        where = "fib daddr type local" if entry.address is None else f"ip daddr {entry.address}"
        if len(entry.backends) == 1:
            pod, port = entry.backends[0]
            target = f"dnat to {pod.ip}:{port}"
        else:
            items = ", ".join(f"{i} : {pod.ip} . {port}" for i, (pod, port) in enumerate(entry.backends))
            target = f"dnat to numgen random mod {len(entry.backends)} map {{ {items} }}"
        mark = f"meta mark set {MASQUERADE_MARK} " if entry.masquerade else ""
        rule = f"{where} {_L4[entry.protocol]} dport {entry.port} {mark}{target} {comment(entry.service)}"
        prerouting.append(f"\t\t{rule}")
    if any(entry.masquerade for entry in found):
        postrouting.append(f"\t\tmeta mark {MASQUERADE_MARK} snat to {node.ip}")
    return "\n".join(
        [
            f"table ip {TABLE} {{}}",
            f"delete table ip {TABLE}",
            f"table ip {TABLE} {{",
            "\tchain prerouting {",
            "\t\ttype nat hook prerouting priority dstnat; policy accept;",
            *prerouting,
            "\t}",
            "\tchain postrouting {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
            *postrouting,
            "\t}",
            "}",
            "",
        ]
    )


def apply_services(plan: LabPlan, inventory: Inventory) -> None:
    """Every node's Service table, and routes to load-balancer and external IPs on every
    external host. Render all, then apply."""
    scripts = {node.netns: services_script(plan, inventory, node) for node in plan.nodes}
    routes = _routes(plan, inventory)
    for netns, script in scripts.items():
        apply_script(script, netns)
    for external in plan.externals:
        if routes:
            ip_batch([f"route replace {a}/32 via {via} dev {POD_INTERFACE}" for a, via in routes], external.netns)


def read_services(netns: str) -> str:
    return run_nft(["list", "table", "ip", TABLE], netns)


def _routes(plan: LabPlan, inventory: Inventory) -> list[tuple[IPv4Address, IPv4Address]]:
    """(load-balancer or external IP, the node it is reached through)."""
    pods = {p.id: p for p in plan.pods}
    out: dict[IPv4Address, IPv4Address] = {}
    for service in inventory.services:
        addresses = (*(service.load_balancer_ips if service.type == "LoadBalancer" else ()), *service.external_ips)
        if not addresses or not plan.nodes:
            continue
        via = plan.nodes[0].ip
        if service.external_traffic_policy == "Local":
            # A backend's node: the others have no rule for it.
            hosting = sorted({pods[p.id].node for p in inventory.backends(service) if p.id in pods})
            if hosting:
                via = plan.node(hosting[0]).ip
        for address in addresses:
            if isinstance(address, IPv4Address):
                out.setdefault(address, via)
    return sorted(out.items())
