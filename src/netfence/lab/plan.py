"""plan_lab(inventory) -> LabPlan: every name, address and port of a lab, decided before any I/O.

Topology (a routed CNI, as in design/lab-dataplane-notes.md §1):

    underlay netns  netfence-<lab>-ul:     bridge nfbr0, one port nful<i> per node
    node netns      netfence-<lab>-n<i>:   nfeth0 (underlay address), one veth nfv<j> per local pod
    pod netns       netfence-<lab>-n<i>-p<j>: eth0 with the pod's IPv4 as a /32, default via 169.254.1.1
    external netns  netfence-<lab>-x<k>:   eth0 on the underlay bridge (port nfulx<k>), the host's IPv4
                                            as a /32, routes to the underlay, to every pod via its node

Every pod gets a /32 route: pod addresses in a real inventory are not tidy per-node CIDRs.
External workloads sit outside every node, as a VM or a bare-metal server beside the cluster
does: they reach pods on a routed (flat) pod network and Services through the nodes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network

from netfence.errors import UsageError
from netfence.model.endpoints import EndpointId, Node, Pod
from netfence.model.inventory import Inventory
from netfence.model.policies import IPNetwork
from netfence.model.ports import FlowPort, Protocol

#: Every netns the lab creates starts with this; `lab clean` finds leftovers by it.
NETNS_PREFIX = "netfence-"
#: Node the IR and the lab give pods the inventory places on no node.
DEFAULT_NODE = "netfence-lab-node"
#: The pods' default gateway: an address no pod owns, answered by the node's static neighbour.
GATEWAY = IPv4Address("169.254.1.1")
#: MAC of every node-side pod veth (and so of the gateway, as pods see it).
GATEWAY_MAC = "ee:ee:ee:ee:ee:ee"
BRIDGE = "nfbr0"
NODE_UPLINK = "nfeth0"
POD_INTERFACE = "eth0"
#: Protocols the lab's servers and prober speak (this kernel has no SCTP sockets).
SERVED_PROTOCOLS = (Protocol.TCP, Protocol.UDP)

_LAB_NAME = re.compile(r"[a-z0-9]{1,32}")
#: Where pods without a usable IPv4 get one: carrier-grade NAT space, then benchmark space.
_POD_RANGES = tuple(IPv4Network(f"100.{n}.0.0/16") for n in range(64, 128)) + (
    IPv4Network("198.18.0.0/16"),
    IPv4Network("198.19.0.0/16"),
)
#: Where node (underlay) addresses go.
_UNDERLAY_RANGES = tuple(IPv4Network(f"10.{n}.0.0/16") for n in range(250, 256)) + tuple(
    IPv4Network(f"172.{n}.0.0/16") for n in range(16, 32)
)
#: A pod address the lab cannot route as a unicast /32 of its own.
_UNUSABLE = (
    IPv4Network("0.0.0.0/8"),
    IPv4Network("127.0.0.0/8"),
    IPv4Network("169.254.0.0/16"),
    IPv4Network("224.0.0.0/4"),
    IPv4Network("240.0.0.0/4"),
)


@dataclass(frozen=True, slots=True)
class LabNode:
    name: str
    netns: str
    ip: IPv4Address
    mac: str
    #: The node's port on the underlay bridge (in the underlay netns).
    uplink: str


@dataclass(frozen=True, slots=True)
class LabPod:
    id: EndpointId
    node: str
    netns: str
    #: Node-side veth, in the node netns; what the nft compiler keys its maps on.
    veth: str
    ip: IPv4Address
    mac: str
    #: What the lab's server answers on in this pod (TCP and UDP only).
    ports: tuple[FlowPort, ...]
    #: True when the inventory gave no usable IPv4 and the lab chose this one.
    allocated: bool = False

    @property
    def namespace(self) -> str:
        return self.id.partition("/")[0]

    @property
    def name(self) -> str:
        return self.id.partition("/")[2]


@dataclass(frozen=True, slots=True)
class LabExternal:
    """An external workload: a netns on the underlay, outside every node."""

    id: EndpointId
    netns: str
    #: Its port on the underlay bridge (in the underlay netns).
    uplink: str
    ip: IPv4Address
    mac: str
    ports: tuple[FlowPort, ...]
    allocated: bool = False

    @property
    def namespace(self) -> str:
        return ""

    @property
    def name(self) -> str:
        return self.id.removeprefix("ext/")


#: What the lab probes between: pods and external workloads.
LabWorkload = LabPod | LabExternal


@dataclass(frozen=True, slots=True)
class LabPlan:
    name: str
    underlay: str
    network: IPv4Network
    nodes: tuple[LabNode, ...]
    #: In inventory order (namespace, name), which is the IR's endpoint order.
    pods: tuple[LabPod, ...]
    #: What the lab leaves out or changes (hostNetwork pods, SCTP ports, chosen addresses).
    notes: tuple[str, ...] = ()
    #: In inventory order (by name), which is the IR's endpoint order after the pods.
    externals: tuple[LabExternal, ...] = ()

    @property
    def prefix(self) -> str:
        """Every netns of this lab starts with it (and no other lab's does)."""
        return lab_prefix(self.name)

    @property
    def netns(self) -> tuple[str, ...]:
        """Every netns of the lab: underlay, nodes, pods, external workloads."""
        return (
            self.underlay,
            *(n.netns for n in self.nodes),
            *(p.netns for p in self.pods),
            *(x.netns for x in self.externals),
        )

    @property
    def workloads(self) -> tuple[LabWorkload, ...]:
        """Pods, then external workloads: what probes go between, in the IR's order."""
        return (*self.pods, *self.externals)

    def node(self, name: str) -> LabNode:
        return next(n for n in self.nodes if n.name == name)

    def pods_on(self, node: str) -> tuple[LabPod, ...]:
        return tuple(p for p in self.pods if p.node == node)

    def served_ports(self) -> tuple[FlowPort, ...]:
        """Every port some pod's (or external workload's) server answers on, in matrix order."""
        return tuple(sorted({port for item in self.workloads for port in item.ports}, key=lambda p: p.sort_key))


def check_lab_name(name: str) -> str:
    if not _LAB_NAME.fullmatch(name):
        raise UsageError(f"--name: expected 1-32 lowercase letters or digits, got {name!r}")
    return name


def lab_prefix(name: str) -> str:
    # Lab names have no '-', so `netfence-<name>-` never prefixes another lab's netns.
    return f"{NETNS_PREFIX}{name}-"


def plan_lab(inventory: Inventory, name: str = "default", extra_ports: Sequence[FlowPort] = ()) -> LabPlan:
    """The lab for `inventory`'s pods; every pod also serves `extra_ports`."""
    check_lab_name(name)
    notes: list[str] = []
    pods = [p for p in inventory.pods if not p.host_network]
    for pod in inventory.pods:
        if pod.host_network:
            notes.append(f"{pod.id}: hostNetwork pod, not in the lab (it shares its node's address)")
    if not pods:
        raise UsageError("no pods to build a lab from: the inventory has no (non-hostNetwork) pods")
    extra = _served(extra_ports, "--port", notes)

    addresses = _pod_addresses(inventory, pods, notes)
    external_ips = _external_addresses(inventory, {ip for ip, _ in addresses.values()}, notes)
    node_names = sorted({p.node or DEFAULT_NODE for p in pods})
    taken = [IPv4Network(ip) for ip, _ in addresses.values()] + _service_networks(inventory)
    taken += [IPv4Network(ip) for ip in external_ips.values() if ip is not None]
    network = _free_range(_UNDERLAY_RANGES, taken, "node")
    underlay = f"{lab_prefix(name)}ul"
    nodes = tuple(
        LabNode(node, f"{lab_prefix(name)}n{i}", network[i + 1], _mac("0a:59", network[i + 1]), f"nful{i:x}")
        for i, node in enumerate(node_names)
    )
    index = {n.name: i for i, n in enumerate(nodes)}
    lab_pods = []
    for j, pod in enumerate(pods):
        node = pod.node or DEFAULT_NODE
        ip, allocated = addresses[pod.id]
        declared = [FlowPort(p.protocol, p.port) for p in pod.ports]
        ports = _served(declared, pod.id, notes)
        ports = tuple(sorted(dict.fromkeys((*ports, *extra)), key=lambda p: p.sort_key))
        lab_pods.append(
            LabPod(
                pod.id,
                node,
                f"{lab_prefix(name)}n{index[node]}-p{j}",
                f"nfv{j:x}",
                ip,
                _mac("0a:58", ip),
                ports,
                allocated,
            )
        )
    externals = []
    spare = (network[-2 - k] for k in range(network.num_addresses))  # from the top: nodes take the bottom
    for k, workload in enumerate(inventory.external_workloads):
        declared_ip = external_ips[workload.id]
        allocated = declared_ip is None
        ip = next(spare) if declared_ip is None else declared_ip
        if allocated:
            notes.append(f"{workload.id}: no usable IPv4 in the inventory; the lab gives it {ip}")
        declared = [FlowPort(p.protocol, p.port) for p in workload.ports]
        ports = tuple(sorted(dict.fromkeys((*_served(declared, workload.id, notes), *extra)), key=lambda p: p.sort_key))
        externals.append(
            LabExternal(workload.id, f"{lab_prefix(name)}x{k}", f"nfulx{k:x}", ip, _mac("0a:5a", ip), ports, allocated)
        )
    return LabPlan(name, underlay, network, nodes, tuple(lab_pods), tuple(notes), tuple(externals))


def lab_inventory(inventory: Inventory, plan: LabPlan) -> Inventory:
    """`inventory` as the lab runs it: each pod with its lab IPv4 (only) and lab node.

    The analyzer's predictions for a lab must use these, so that ipBlock peers see the
    addresses the kernel sees. Pods the lab does not know are an error: the lab was built from
    other files.
    """
    by_id = {p.id: p for p in plan.pods}
    wanted = {p.id for p in inventory.pods if not p.host_network}
    missing, extra = sorted(set(by_id) - wanted), sorted(wanted - set(by_id))
    if missing or extra:
        parts = []
        if extra:
            parts.append(f"not in lab {plan.name}: {_few(extra)}")
        if missing:
            parts.append(f"in lab {plan.name} but not in the files: {_few(missing)}")
        raise UsageError(
            "the files describe other pods than the lab was built from ("
            + "; ".join(parts)
            + "); give the same cluster files as to `lab up`"
        )
    externals = {x.id for x in plan.externals}
    declared = {w.id for w in inventory.external_workloads}
    if declared != externals:
        raise UsageError(
            f"the files describe other external workloads than lab {plan.name} was built from"
            f" ({_few(sorted(declared ^ externals))}); give the same cluster files as to `lab up`"
        )
    return lab_addresses(inventory, plan)


def lab_addresses(inventory: Inventory, plan: LabPlan) -> Inventory:
    """The lab's addresses and nodes for what the lab holds, without lab_inventory's checks: pods
    get their lab IPv4 and node, external workloads their lab address, the lab's nodes their
    underlay address; pods and hosts the lab does not hold are left as they are (an agent's
    files may say less, or more, than the lab was built from)."""
    by_id = {p.id: p for p in plan.pods}
    pods = tuple(
        replace(p, ips=(by_id[p.id].ip,), node=by_id[p.id].node) if p.id in by_id and not p.host_network else p
        for p in inventory.pods
    )
    externals = {x.id: x for x in plan.externals}
    workloads = tuple(
        replace(w, addresses=(externals[w.id].ip,)) if w.id in externals else w for w in inventory.external_workloads
    )
    # The nodes answer on their underlay addresses (NodePort Services, node peers).
    given = {n.name: n for n in inventory.nodes}
    nodes = [replace(given.get(n.name, Node(n.name)), addresses=(n.ip,)) for n in plan.nodes]
    nodes += [n for n in inventory.nodes if n.name not in {lab.name for lab in plan.nodes}]
    return replace(inventory, pods=pods, external_workloads=workloads, nodes=tuple(sorted(nodes, key=lambda n: n.name)))


def _few(ids: Sequence[str]) -> str:
    return ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")


def _served(ports: Iterable[FlowPort], owner: str, notes: list[str]) -> tuple[FlowPort, ...]:
    kept = []
    for port in ports:
        if port.protocol in SERVED_PROTOCOLS and port.port is not None:
            kept.append(port)
        elif port.protocol is Protocol.SCTP:
            notes.append(f"{owner}: {port} not served: the lab cannot probe SCTP")
    return tuple(kept)


def _pod_addresses(inventory: Inventory, pods: Sequence[Pod], notes: list[str]) -> dict[EndpointId, tuple[IPv4Address, bool]]:
    """Each pod's IPv4: its first usable declared one, else one from a range nothing else uses."""
    chosen: dict[EndpointId, tuple[IPv4Address, bool]] = {}
    owner: dict[IPv4Address, EndpointId] = {}
    needs: list[Pod] = []
    for pod in pods:
        ip = next((a for a in pod.ips if isinstance(a, IPv4Address)), None)
        if ip is None:
            needs.append(pod)
        elif any(ip in net for net in _UNUSABLE):
            notes.append(f"{pod.id}: address {ip} cannot be a pod address in the lab")
            needs.append(pod)
        elif ip in owner:
            notes.append(f"{pod.id}: address {ip} already belongs to {owner[ip]}")
            needs.append(pod)
        else:
            chosen[pod.id] = (ip, False)
            owner[ip] = pod.id
    if needs:
        declared = [IPv4Network(a) for p in inventory.pods for a in p.ips if isinstance(a, IPv4Address)]
        taken = declared + _service_networks(inventory) + _policy_networks(inventory)
        try:
            pool = _free_range(_POD_RANGES, taken, "pod")
        except UsageError:  # every candidate overlaps some ipBlock: then only addresses count
            pool = _free_range(_POD_RANGES, declared + _service_networks(inventory), "pod")
        hosts = (h for h in pool.hosts() if h not in owner)
        for pod in needs:
            ip = next(hosts)
            chosen[pod.id] = (ip, True)
            owner[ip] = pod.id
            notes.append(f"{pod.id}: no usable IPv4 in the inventory; the lab gives it {ip}")
    return chosen


def _service_networks(inventory: Inventory) -> list[IPv4Network]:
    """Every address of a Service: cluster, external and load-balancer IPs."""
    return [
        IPv4Network(a)
        for s in inventory.services
        for a in (*s.cluster_ips, *s.external_ips, *s.load_balancer_ips)
        if isinstance(a, IPv4Address)
    ]


def _external_addresses(
    inventory: Inventory, pod_ips: set[IPv4Address], notes: list[str]
) -> dict[EndpointId, IPv4Address | None]:
    """Each external workload's first usable IPv4, or None (the lab gives it one)."""
    chosen: dict[EndpointId, IPv4Address | None] = {}
    owner: dict[IPv4Address, str] = {}
    services = _service_networks(inventory)
    for workload in inventory.external_workloads:
        ip = next((a for a in workload.addresses if isinstance(a, IPv4Address)), None)
        reason = _unusable_external(ip, pod_ips, owner, services) if ip is not None else None
        if reason is not None:
            notes.append(f"{workload.id}: address {ip} {reason}")
            ip = None
        if ip is not None:
            owner[ip] = workload.id
        chosen[workload.id] = ip
    return chosen


def _unusable_external(
    ip: IPv4Address, pod_ips: set[IPv4Address], owner: dict[IPv4Address, str], services: list[IPv4Network]
) -> str | None:
    if any(ip in net for net in _UNUSABLE):
        return "cannot be a host address in the lab"
    if ip in pod_ips:
        return "is a pod's address in the lab"
    if ip in owner:
        return f"already belongs to {owner[ip]}"
    if any(ip in net for net in services):
        return "is a Service's address"
    return None


def _policy_networks(inventory: Inventory) -> list[IPv4Network]:
    found: list[IPNetwork] = []
    for policy in inventory.policies:
        for rule in (*policy.ingress, *policy.egress):
            for peer in rule.peers or ():
                if peer.ip_block is not None:
                    found.append(peer.ip_block.cidr)
    return [n for n in found if isinstance(n, IPv4Network)]


def _free_range(candidates: Sequence[IPv4Network], taken: Sequence[IPv4Network], what: str) -> IPv4Network:
    for candidate in candidates:
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    raise UsageError(f"no free address range for lab {what} addresses: every candidate overlaps the inventory")


def _mac(head: str, ip: IPv4Address) -> str:
    """`head` (two locally administered octets) followed by the address's four octets."""
    return head + "".join(f":{b:02x}" for b in ip.packed)
