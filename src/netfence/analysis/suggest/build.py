"""The dependency map (who reaches which workload on which ports) and the policies written from it.

Per workload in scope and direction, one policy selecting the workload: one rule per peer
workload with the ports observed between the two (podSelector, plus a namespaceSelector on
`kubernetes.io/metadata.name` when the peer is in another namespace), then one rule per set of
ports for addresses outside the pods, as ipBlocks of exactly those addresses (adjacent ones
merged: 10.0.0.4 and 10.0.0.5 are 10.0.0.4/31). A workload in scope with nothing observed in a
direction still gets its policy: it admits nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, collapse_addresses

from netfence.analysis.suggest.flows import ResolvedFlow
from netfence.analysis.suggest.workloads import Workload
from netfence.model.calico import CalicoAction, CalicoPolicy, CalicoPort, CalicoRule, EntityRule, IcmpMatch
from netfence.model.calico_selector import Selector, parse_selector
from netfence.model.endpoints import NAMESPACE_NAME_LABEL, EndpointId, IPAddress, Pod
from netfence.model.labels import LabelSelector, Operator
from netfence.model.policies import Direction, IPBlock, IPNetwork, NetworkPolicy, Peer, PolicyKind, PolicyPort, PolicyRule
from netfence.model.ports import ICMP_ECHO_REQUEST, FlowPort, Protocol

#: DNS: a flow to one of these ports at an address outside the inventory also gets the usual
#: kube-dns peer, when the inventory shows no kube-system pods (the address is then likely the
#: DNS Service's, which policies never see: they apply after the Service's DNAT).
DNS_PORTS = (FlowPort(Protocol.UDP, 53), FlowPort(Protocol.TCP, 53))
DNS_NAMESPACE = "kube-system"
DNS_LABELS = {"k8s-app": "kube-dns"}

#: The other side of a subject's flows: a workload, or an address outside the pods.
PeerKey = Workload | IPAddress


@dataclass(frozen=True, slots=True)
class Dependencies:
    """What one workload was seen doing in one direction: per peer, the ports."""

    workload: Workload
    direction: Direction
    peers: Mapping[PeerKey, frozenset[FlowPort]]

    @property
    def workload_peers(self) -> list[tuple[Workload, list[FlowPort]]]:
        found = [(p, _sorted_ports(ports)) for p, ports in self.peers.items() if isinstance(p, Workload)]
        return sorted(found, key=lambda item: (item[0].namespace, item[0].name))

    @property
    def address_groups(self) -> list[tuple[list[FlowPort], list[IPNetwork]]]:
        """Addresses with the same ports together, as the fewest CIDRs holding exactly them."""
        groups: dict[frozenset[FlowPort], list[IPAddress]] = {}
        for peer, ports in self.peers.items():
            if not isinstance(peer, Workload):
                groups.setdefault(ports, []).append(peer)
        found = [(_sorted_ports(ports), exact_networks(addresses)) for ports, addresses in groups.items()]
        return sorted(found, key=lambda item: (_network_key(item[1][0]), [p.sort_key for p in item[0]]))


def dependency_map(
    workloads: Sequence[Workload], flows: Iterable[ResolvedFlow], directions: Sequence[Direction], scope: set[str] | None
) -> list[Dependencies]:
    """Per workload (of a namespace in `scope`; None: all) and direction, its peers and ports."""
    of_pod: dict[EndpointId, Workload] = {pod: w for w in workloads for pod in w.pods}
    found: dict[tuple[Workload, Direction], dict[PeerKey, set[FlowPort]]] = {
        (w, d): {} for w in workloads if scope is None or w.namespace in scope for d in directions
    }

    def peer(end: Pod | IPAddress) -> PeerKey:
        return of_pod[end.id] if isinstance(end, Pod) else end

    for flow in flows:
        if isinstance(flow.destination, Pod):
            entry = found.get((of_pod[flow.destination.id], Direction.INGRESS))
            if entry is not None:
                entry.setdefault(peer(flow.source), set()).add(flow.port)
        if isinstance(flow.source, Pod):
            entry = found.get((of_pod[flow.source.id], Direction.EGRESS))
            if entry is not None:
                entry.setdefault(peer(flow.destination), set()).add(flow.port)
    return [
        Dependencies(w, d, {p: frozenset(ports) for p, ports in peers.items()})
        for (w, d), peers in sorted(found.items(), key=lambda item: (item[0][0].namespace, item[0][0].name, item[0][1] != Direction.INGRESS))
    ]


def exact_networks(addresses: Iterable[IPAddress]) -> list[IPNetwork]:
    """The fewest CIDRs covering exactly `addresses`: IPv4 first, each in address order."""
    given = set(addresses)
    v4 = sorted(IPv4Network(a) for a in given if isinstance(a, IPv4Address))
    v6 = sorted(IPv6Network(a) for a in given if isinstance(a, IPv6Address))
    return [*collapse_addresses(v4), *collapse_addresses(v6)]


def policy_name(workload: Workload, direction: Direction) -> str:
    return f"netfence-{workload.name}-{direction.value}"


def _sorted_ports(ports: Iterable[FlowPort]) -> list[FlowPort]:
    return sorted(ports, key=lambda p: p.sort_key)


def _network_key(network: IPNetwork) -> tuple[int, int, int]:
    return (network.version, int(network.network_address), network.prefixlen)


def _dns_ports(dependencies: Dependencies) -> list[FlowPort]:
    seen = {port for peer, ports in dependencies.peers.items() if not isinstance(peer, Workload) for port in ports}
    return [port for port in DNS_PORTS if port in seen]


# --- Kubernetes NetworkPolicy -------------------------------------------------------------------


def network_policies(dependencies: Sequence[Dependencies], dns_peer: bool) -> tuple[NetworkPolicy, ...]:
    """One NetworkPolicy per workload and direction; `dns_peer`: egress DNS to addresses outside
    the inventory also admits kube-system's kube-dns pods."""
    policies = []
    namespaces: dict[str, LabelSelector] = {}
    for item in dependencies:
        workload = item.workload
        rules = [
            PolicyRule(peers=(_peer(w, workload.namespace, namespaces),), ports=_policy_ports(ports))
            for w, ports in item.workload_peers
        ]
        rules += [
            PolicyRule(peers=tuple(Peer(ip_block=IPBlock(n)) for n in networks), ports=_policy_ports(ports))
            for ports, networks in item.address_groups
        ]
        dns = _dns_ports(item) if item.direction is Direction.EGRESS and dns_peer else []
        if dns:
            kube_dns = Peer(
                pod_selector=LabelSelector.from_labels(DNS_LABELS),
                namespace_selector=LabelSelector.from_labels({NAMESPACE_NAME_LABEL: DNS_NAMESPACE}),
            )
            rules.append(PolicyRule(peers=(kube_dns,), ports=_policy_ports(dns)))
        ingress = item.direction is Direction.INGRESS
        policies.append(
            NetworkPolicy(
                namespace=workload.namespace,
                name=policy_name(workload, item.direction),
                pod_selector=workload.selector,
                policy_types=frozenset({item.direction}),
                ingress=tuple(rules) if ingress else (),
                egress=() if ingress else tuple(rules),
            )
        )
    return tuple(policies)


def _peer(workload: Workload, namespace: str, namespaces: dict[str, LabelSelector]) -> Peer:
    # NetworkPolicy: a peer without namespaceSelector means pods of the policy's own namespace.
    if workload.namespace == namespace:
        return Peer(pod_selector=workload.selector)
    if workload.namespace not in namespaces:
        namespaces[workload.namespace] = LabelSelector.from_labels({NAMESPACE_NAME_LABEL: workload.namespace})
    return Peer(pod_selector=workload.selector, namespace_selector=namespaces[workload.namespace])


def _policy_ports(ports: Iterable[FlowPort]) -> tuple[PolicyPort, ...]:
    return tuple(PolicyPort(protocol=p.protocol, port=p.port) for p in ports)


# --- Calico NetworkPolicy ----------------------------------------------------------------------


def calico_selector(selector: LabelSelector) -> Selector:
    """The Calico expression of a label selector of In (one value) and DoesNotExist requirements."""
    parts = []
    for requirement in selector.requirements:
        if requirement.operator is Operator.IN and len(requirement.values) == 1:
            parts.append(f'{requirement.key} == "{requirement.values[0]}"')
        elif requirement.operator is Operator.DOES_NOT_EXIST:
            parts.append(f"!has({requirement.key})")
        else:
            raise ValueError(f"no Calico expression written for {requirement}")
    return parse_selector(" && ".join(parts) or "all()")


def calico_policies(dependencies: Sequence[Dependencies], dns_peer: bool) -> tuple[CalicoPolicy, ...]:
    """One namespaced Calico NetworkPolicy per workload and direction, in the default tier without
    an order (after every ordered policy); a rule per peer and protocol (a Calico rule has one)."""
    policies = []
    for item in dependencies:
        workload = item.workload
        rules: list[CalicoRule] = []
        for peer, ports in item.workload_peers:
            entity = EntityRule(
                selector=calico_selector(peer.selector),
                namespace_selector=(
                    None
                    if peer.namespace == workload.namespace
                    else parse_selector(f'{NAMESPACE_NAME_LABEL} == "{peer.namespace}"')
                ),
            )
            rules += _calico_rules(entity, ports, item.direction)
        for ports, networks in item.address_groups:
            rules += _calico_rules(EntityRule(nets=tuple(networks)), ports, item.direction)
        dns = _dns_ports(item) if item.direction is Direction.EGRESS and dns_peer else []
        if dns:
            kube_dns = EntityRule(
                selector=parse_selector(" && ".join(f'{k} == "{v}"' for k, v in DNS_LABELS.items())),
                namespace_selector=parse_selector(f'{NAMESPACE_NAME_LABEL} == "{DNS_NAMESPACE}"'),
            )
            rules += _calico_rules(kube_dns, dns, item.direction)
        ingress = item.direction is Direction.INGRESS
        policies.append(
            CalicoPolicy(
                kind=PolicyKind.CALICO_NETWORK_POLICY,
                namespace=workload.namespace,
                name=policy_name(workload, item.direction),
                selector=calico_selector(workload.selector),
                types=frozenset({item.direction}),
                ingress=tuple(rules) if ingress else (),
                egress=() if ingress else tuple(rules),
            )
        )
    return tuple(policies)


def _calico_rules(peer: EntityRule, ports: Sequence[FlowPort], direction: Direction) -> list[CalicoRule]:
    rules = []
    for protocol in dict.fromkeys(p.protocol for p in ports):
        numbers = tuple(CalicoPort(p.port, p.port) for p in ports if p.protocol is protocol and p.port is not None)
        icmp = IcmpMatch(*ICMP_ECHO_REQUEST) if protocol is Protocol.ICMP else None
        local = EntityRule(ports=numbers)
        source, destination = (peer, local) if direction is Direction.INGRESS else (EntityRule(), _with_ports(peer, numbers))
        rules.append(CalicoRule(CalicoAction.ALLOW, protocol=protocol, icmp=icmp, source=source, destination=destination))
    return rules


def _with_ports(entity: EntityRule, ports: tuple[CalicoPort, ...]) -> EntityRule:
    return EntityRule(nets=entity.nets, selector=entity.selector, namespace_selector=entity.namespace_selector, ports=ports)
