"""Policies as declared, after the API server's defaults are applied."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network

from netfence.errors import Location
from netfence.model.labels import LabelSelector
from netfence.model.ports import Protocol

IPNetwork = IPv4Network | IPv6Network


class Direction(StrEnum):
    INGRESS = "ingress"
    EGRESS = "egress"


class PolicyKind(StrEnum):
    NETWORK_POLICY = "NetworkPolicy"
    CALICO_NETWORK_POLICY = "CalicoNetworkPolicy"
    GLOBAL_NETWORK_POLICY = "GlobalNetworkPolicy"
    ADMIN_NETWORK_POLICY = "AdminNetworkPolicy"
    BASELINE_ADMIN_NETWORK_POLICY = "BaselineAdminNetworkPolicy"
    CLUSTER_NETWORK_POLICY = "ClusterNetworkPolicy"


@dataclass(frozen=True, slots=True)
class IPBlock:
    cidr: IPNetwork
    excepts: tuple[IPNetwork, ...] = ()

    def __str__(self) -> str:
        if not self.excepts:
            return str(self.cidr)
        return f"{self.cidr} except {', '.join(str(e) for e in self.excepts)}"


@dataclass(frozen=True, slots=True)
class Peer:
    """One entry of `from`/`to`: either an ipBlock or pod/namespace selectors.

    NetworkPolicy: without `namespace_selector` the peer means pods of the policy's own namespace;
    an empty `namespace_selector` means every namespace. Without `pod_selector` (but with a
    namespace selector) it means every pod of the selected namespaces.
    """

    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None


@dataclass(frozen=True, slots=True)
class PolicyPort:
    """One entry of `ports`. `port` None: every port of the protocol."""

    protocol: Protocol = Protocol.TCP
    port: int | str | None = None
    end_port: int | None = None

    def __str__(self) -> str:
        if self.port is None:
            return f"{self.protocol} (all ports)"
        if self.end_port is not None:
            return f"{self.protocol} {self.port}-{self.end_port}"
        return f"{self.protocol} {self.port}"


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One ingress or egress rule. `peers`/`ports` None: absent or empty, i.e. all."""

    peers: tuple[Peer, ...] | None = None
    ports: tuple[PolicyPort, ...] | None = None


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    namespace: str
    name: str
    pod_selector: LabelSelector
    #: After defaulting: Ingress always when policyTypes was omitted, Egress when egress rules exist.
    policy_types: frozenset[Direction]
    ingress: tuple[PolicyRule, ...] = ()
    egress: tuple[PolicyRule, ...] = ()
    location: Location | None = None
    kind: PolicyKind = PolicyKind.NETWORK_POLICY

    def rules(self, direction: Direction) -> tuple[PolicyRule, ...]:
        return self.ingress if direction is Direction.INGRESS else self.egress

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"
