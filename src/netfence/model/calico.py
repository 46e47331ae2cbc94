"""Calico resources as declared (projectcalico.org/v3 and crd.projectcalico.org/v1 alike)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from netfence.errors import Location
from netfence.model.calico_selector import Selector
from netfence.model.endpoints import IPAddress
from netfence.model.labels import Labels
from netfence.model.policies import Direction, IPNetwork, PolicyKind
from netfence.model.ports import Protocol, RuleProtocol

DEFAULT_TIER = "default"
#: Calico's built-in tiers and their fixed orders.
DEFAULT_TIER_ORDER = 1_000_000.0
ADMIN_TIER = "kube-admin"
ADMIN_TIER_ORDER = 1_000.0
BASELINE_TIER = "kube-baseline"
BASELINE_TIER_ORDER = 10_000_000.0
#: Where Calico puts Kubernetes NetworkPolicies inside the default tier.
NETWORK_POLICY_ORDER = 1_000.0


class CalicoAction(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"
    LOG = "Log"
    PASS = "Pass"


class TierDefaultAction(StrEnum):
    DENY = "Deny"
    PASS = "Pass"


@dataclass(frozen=True, slots=True)
class CalicoPort:
    """One entry of ports/notPorts: a number, a range `a:b` (start..end), or a port name."""

    start: int | None = None
    end: int | None = None
    name: str | None = None

    def __str__(self) -> str:
        if self.name is not None:
            return self.name
        return str(self.start) if self.start == self.end else f"{self.start}:{self.end}"


@dataclass(frozen=True, slots=True)
class ServiceAccountMatch:
    names: tuple[str, ...] = ()
    selector: Selector | None = None


@dataclass(frozen=True, slots=True)
class ServiceMatch:
    name: str
    #: Already defaulted to the policy's namespace where the policy has one.
    namespace: str


@dataclass(frozen=True, slots=True)
class EntityRule:
    """The source or destination of a Calico rule. Empty tuples and None: no constraint."""

    nets: tuple[IPNetwork, ...] = ()
    not_nets: tuple[IPNetwork, ...] = ()
    selector: Selector | None = None
    not_selector: Selector | None = None
    namespace_selector: Selector | None = None
    ports: tuple[CalicoPort, ...] = ()
    not_ports: tuple[CalicoPort, ...] = ()
    service_accounts: ServiceAccountMatch | None = None
    services: ServiceMatch | None = None

    @property
    def has_selector_fields(self) -> bool:
        """Whether the side gets a positive selector (and so a namespace scope)."""
        return (
            self.selector is not None
            or self.not_selector is not None
            or self.namespace_selector is not None
            or self.service_accounts is not None
        )


@dataclass(frozen=True, slots=True)
class IcmpMatch:
    type: int | None = None
    code: int | None = None


@dataclass(frozen=True, slots=True)
class CalicoRule:
    action: CalicoAction
    protocol: RuleProtocol | None = None
    not_protocol: RuleProtocol | None = None
    icmp: IcmpMatch | None = None
    not_icmp: IcmpMatch | None = None
    ip_version: int | None = None
    source: EntityRule = EntityRule()
    destination: EntityRule = EntityRule()


@dataclass(frozen=True, slots=True)
class CalicoPolicy:
    """A Calico NetworkPolicy (namespace set) or GlobalNetworkPolicy (namespace None)."""

    kind: PolicyKind
    namespace: str | None
    name: str
    tier: str = DEFAULT_TIER
    #: None: after every ordered policy of the tier.
    order: float | None = None
    #: The endpoints it applies to; an empty selector is all().
    selector: Selector = Selector("")
    namespace_selector: Selector | None = None
    service_account_selector: Selector | None = None
    #: After defaulting from the rules when `types` was omitted.
    types: frozenset[Direction] = frozenset({Direction.INGRESS})
    ingress: tuple[CalicoRule, ...] = ()
    egress: tuple[CalicoRule, ...] = ()
    do_not_track: bool = False
    pre_dnat: bool = False
    apply_on_forward: bool = False
    #: `types` was omitted (Calico's API layer filled it in from the rules).
    types_defaulted: bool = False
    location: Location | None = None

    def rules(self, direction: Direction) -> tuple[CalicoRule, ...]:
        return self.ingress if direction is Direction.INGRESS else self.egress

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    #: None: after every ordered tier.
    order: float | None
    default_action: TierDefaultAction = TierDefaultAction.DENY
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class NetworkSet:
    """A NetworkSet (namespace set) or GlobalNetworkSet (namespace None): labelled CIDRs."""

    namespace: str | None
    name: str
    labels: Labels
    nets: tuple[IPNetwork, ...] = ()
    location: Location | None = None

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class HostEndpointPort:
    name: str
    port: int
    protocol: Protocol = Protocol.TCP


@dataclass(frozen=True, slots=True)
class HostEndpoint:
    name: str
    labels: Labels
    node: str | None = None
    interface_name: str | None = None
    expected_ips: tuple[IPAddress, ...] = ()
    profiles: tuple[str, ...] = ()
    ports: tuple[HostEndpointPort, ...] = ()
    location: Location | None = None
