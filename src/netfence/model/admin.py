"""AdminNetworkPolicy, BaselineAdminNetworkPolicy (policy.networking.k8s.io/v1alpha1) and
ClusterNetworkPolicy (v1alpha2), as declared: one shape for all three."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from netfence.errors import Location
from netfence.model.labels import LabelSelector
from netfence.model.policies import Direction, IPNetwork, PolicyKind
from netfence.model.ports import Protocol


class AdminTier(StrEnum):
    ADMIN = "Admin"
    BASELINE = "Baseline"


class AdminAction(StrEnum):
    #: ClusterNetworkPolicy's `Accept` is the same action.
    ALLOW = "Allow"
    DENY = "Deny"
    PASS = "Pass"


@dataclass(frozen=True, slots=True)
class PodsSelector:
    namespace_selector: LabelSelector
    pod_selector: LabelSelector


@dataclass(frozen=True, slots=True)
class AdminSubject:
    """Exactly one of the two is set."""

    namespaces: LabelSelector | None = None
    pods: PodsSelector | None = None


@dataclass(frozen=True, slots=True)
class AdminPeer:
    """Exactly one field is set; none set means a peer of a newer API that netfence does not
    know (it fails closed)."""

    namespaces: LabelSelector | None = None
    pods: PodsSelector | None = None
    networks: tuple[IPNetwork, ...] = ()
    nodes: LabelSelector | None = None
    domain_names: tuple[str, ...] = ()

    @property
    def unknown(self) -> bool:
        return (
            self.namespaces is None
            and self.pods is None
            and not self.networks
            and self.nodes is None
            and not self.domain_names
        )


@dataclass(frozen=True, slots=True)
class AdminPort:
    """portNumber (start == end), portRange (start..end), or namedPort (name; any protocol)."""

    protocol: Protocol = Protocol.TCP
    start: int | None = None
    end: int | None = None
    name: str | None = None

    def __str__(self) -> str:
        if self.name is not None:
            return f"named port {self.name}"
        if self.start == self.end:
            return f"{self.protocol} {self.start}"
        return f"{self.protocol} {self.start}-{self.end}"


@dataclass(frozen=True, slots=True)
class AdminRule:
    action: AdminAction
    peers: tuple[AdminPeer, ...]
    #: None: every port and protocol, ICMP included.
    ports: tuple[AdminPort, ...] | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class AdminPolicy:
    """kind ADMIN_NETWORK_POLICY / BASELINE_ADMIN_NETWORK_POLICY / CLUSTER_NETWORK_POLICY."""

    kind: PolicyKind
    name: str
    tier: AdminTier
    #: Lower first. None for a BaselineAdminNetworkPolicy (there is only one).
    priority: int | None
    subject: AdminSubject
    ingress: tuple[AdminRule, ...] = ()
    egress: tuple[AdminRule, ...] = ()
    location: Location | None = None

    def rules(self, direction: Direction) -> tuple[AdminRule, ...]:
        return self.ingress if direction is Direction.INGRESS else self.egress
