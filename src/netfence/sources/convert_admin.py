"""network-policy-api wire models -> AdminPolicy: AdminNetworkPolicy, BaselineAdminNetworkPolicy and
ClusterNetworkPolicy in one shape.

ClusterNetworkPolicy's `Accept` is AdminNetworkPolicy's `Allow`; its `protocols` entries become the
same ports. A peer with no field known here (written for a newer API) becomes an AdminPeer with
every field empty, which fails closed, and a warning says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import ip_network

from netfence.model.admin import (
    AdminAction,
    AdminPeer,
    AdminPolicy,
    AdminPort,
    AdminRule,
    AdminSubject,
    AdminTier,
    PodsSelector,
)
from netfence.model.policies import Direction, PolicyKind
from netfence.model.ports import Protocol
from netfence.sources.convert import Checker, Path, convert_selector
from netfence.sources.schema import network_policy_api as npa

_ACTIONS = {"Allow": AdminAction.ALLOW, "Accept": AdminAction.ALLOW, "Deny": AdminAction.DENY, "Pass": AdminAction.PASS}

Subject = npa.Subject | npa.ClusterSubject
Pods = npa.NamespacedPod | npa.ClusterNamespacedPod
Peer = npa.IngressPeer | npa.EgressPeer | npa.BaselineEgressPeer | npa.ClusterIngressPeer | npa.ClusterEgressPeer
AdminRuleWire = npa.AdminIngressRule | npa.AdminEgressRule | npa.BaselineIngressRule | npa.BaselineEgressRule
ClusterRuleWire = npa.ClusterIngressRule | npa.ClusterEgressRule


def convert_admin_network_policy(check: Checker, wire: npa.AdminNetworkPolicy) -> AdminPolicy:
    spec = wire.spec
    return AdminPolicy(
        kind=PolicyKind.ADMIN_NETWORK_POLICY,
        name=wire.metadata.name,
        tier=AdminTier.ADMIN,
        priority=spec.priority,
        subject=_subject(spec.subject),
        ingress=tuple(_rule(check, r, Direction.INGRESS, i) for i, r in enumerate(spec.ingress or ())),
        egress=tuple(_rule(check, r, Direction.EGRESS, i) for i, r in enumerate(spec.egress or ())),
        location=check.doc.location(),
    )


def convert_baseline_admin_network_policy(check: Checker, wire: npa.BaselineAdminNetworkPolicy) -> AdminPolicy:
    spec = wire.spec
    return AdminPolicy(
        kind=PolicyKind.BASELINE_ADMIN_NETWORK_POLICY,
        name=wire.metadata.name,
        tier=AdminTier.BASELINE,
        priority=None,  # there is only one
        subject=_subject(spec.subject),
        ingress=tuple(_rule(check, r, Direction.INGRESS, i) for i, r in enumerate(spec.ingress or ())),
        egress=tuple(_rule(check, r, Direction.EGRESS, i) for i, r in enumerate(spec.egress or ())),
        location=check.doc.location(),
    )


def convert_cluster_network_policy(check: Checker, wire: npa.ClusterNetworkPolicy) -> AdminPolicy:
    spec = wire.spec
    return AdminPolicy(
        kind=PolicyKind.CLUSTER_NETWORK_POLICY,
        name=wire.metadata.name,
        tier=AdminTier(spec.tier),
        priority=spec.priority,
        subject=_subject(spec.subject),
        ingress=tuple(_cluster_rule(check, r, Direction.INGRESS, i) for i, r in enumerate(spec.ingress or ())),
        egress=tuple(_cluster_rule(check, r, Direction.EGRESS, i) for i, r in enumerate(spec.egress or ())),
        location=check.doc.location(),
    )


def _subject(wire: Subject) -> AdminSubject:
    if wire.pods is not None:
        return AdminSubject(pods=_pods(wire.pods))
    assert wire.namespaces is not None  # exactly one is set (schema)
    return AdminSubject(namespaces=convert_selector(wire.namespaces))


def _pods(wire: Pods) -> PodsSelector:
    return PodsSelector(convert_selector(wire.namespace_selector), convert_selector(wire.pod_selector))


def _rule(check: Checker, wire: AdminRuleWire, direction: Direction, index: int) -> AdminRule:
    ports = None
    if wire.ports is not None:
        ports = tuple(_port(p) for p in wire.ports)
    return AdminRule(
        action=_ACTIONS[wire.action],
        peers=_peers(check, wire, direction, index),
        ports=ports,
        name=wire.name or None,
    )


def _cluster_rule(check: Checker, wire: ClusterRuleWire, direction: Direction, index: int) -> AdminRule:
    ports = None
    if wire.protocols is not None:
        ports = tuple(_protocol_port(p) for p in wire.protocols)
    return AdminRule(
        action=_ACTIONS[wire.action],
        peers=_peers(check, wire, direction, index),
        ports=ports,
        name=wire.name or None,
    )


def _peers(
    check: Checker, wire: AdminRuleWire | ClusterRuleWire, direction: Direction, index: int
) -> tuple[AdminPeer, ...]:
    field = "from" if direction is Direction.INGRESS else "to"
    peers: Sequence[Peer] = getattr(wire, "from_" if direction is Direction.INGRESS else "to")
    out = []
    for position, peer in enumerate(peers):
        if peer.unknown_fields:
            path: Path = ("spec", str(direction), index, field, position)
            check.warn(path, _fails_closed(peer.unknown_fields, wire.action))
        out.append(_peer(peer))
    return tuple(out)


def _fails_closed(fields: Sequence[str], action: str) -> str:
    # network-policy-api: a peer with no known field fails closed; an allowing rule then matches
    # nothing, a Deny or Pass rule denies everything.
    effect = "matches nothing" if _ACTIONS[action] is AdminAction.ALLOW else "denies all traffic"
    return (
        f"peer has no field netfence knows ({', '.join(fields)}; written for a newer API version?); "
        f"the {action} rule fails closed: it {effect}"
    )


def _peer(wire: Peer) -> AdminPeer:
    if wire.unknown_fields:
        return AdminPeer()
    pods = wire.pods
    nodes = getattr(wire, "nodes", None)
    networks: list[str] = getattr(wire, "networks", None) or []
    domain_names: list[str] = getattr(wire, "domain_names", None) or []
    return AdminPeer(
        namespaces=convert_selector(wire.namespaces) if wire.namespaces is not None else None,
        pods=_pods(pods) if pods is not None else None,
        networks=tuple(ip_network(n, strict=False) for n in networks),
        nodes=convert_selector(nodes) if nodes is not None else None,
        domain_names=tuple(domain_names),
    )


def _port(wire: npa.AdminNetworkPolicyPort) -> AdminPort:
    if wire.port_number is not None:
        number = wire.port_number
        return AdminPort(Protocol(number.protocol), number.port, number.port)
    if wire.port_range is not None:
        span = wire.port_range
        return AdminPort(Protocol(span.protocol), span.start, span.end)
    return AdminPort(name=wire.named_port)


def _protocol_port(wire: npa.ClusterNetworkPolicyProtocol) -> AdminPort:
    if wire.destination_named_port is not None:
        return AdminPort(name=wire.destination_named_port)
    for protocol, match in ((Protocol.TCP, wire.tcp), (Protocol.UDP, wire.udp), (Protocol.SCTP, wire.sctp)):
        if match is not None:
            port = match.destination_port
            if port.range is not None:
                return AdminPort(protocol, port.range.start, port.range.end)
            return AdminPort(protocol, port.number, port.number)
    raise AssertionError("a protocol entry sets exactly one field (schema)")
