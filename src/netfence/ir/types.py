"""The intermediate representation. Selectors are already resolved to endpoints here."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from netfence.model.endpoints import EndpointId, IPAddress
from netfence.model.policies import Direction, IPNetwork, PolicyKind
from netfence.model.ports import FlowPort, Protocol


class Action(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    #: Skip the rest of this tier and go on with the next one.
    PASS = "pass"


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """An endpoint policy can select, as the IR needs it."""

    id: EndpointId
    namespace: str
    name: str
    ips: tuple[IPAddress, ...]
    node: str | None
    #: (name, protocol, number) of every named container port.
    named_ports: tuple[tuple[str, Protocol, int], ...] = ()

    def resolve_port(self, name: str, protocol: Protocol) -> int | None:
        for port_name, port_protocol, number in self.named_ports:
            if port_name == name and port_protocol == protocol:
                return number
        return None


@dataclass(frozen=True, slots=True)
class PolicyRef:
    kind: PolicyKind
    namespace: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class RuleRef:
    """Where an IR rule came from; shown in explanations and, later, in nft rule comments."""

    policy: PolicyRef
    direction: Direction
    index: int
    rule_name: str | None = None

    def __str__(self) -> str:
        named = f' "{self.rule_name}"' if self.rule_name else ""
        return f"{self.policy} {self.direction}[{self.index}]{named}"


@dataclass(frozen=True, slots=True)
class CidrBlock:
    network: IPNetwork
    excepts: tuple[IPNetwork, ...] = ()

    def contains(self, address: IPAddress) -> bool:
        if address.version != self.network.version or address not in self.network:
            return False
        return not any(address in e for e in self.excepts)


@dataclass(frozen=True, slots=True)
class PeerMatch:
    """One peer of a rule: endpoints by identity, or addresses by CIDR."""

    index: int
    endpoints: frozenset[EndpointId] = frozenset()
    blocks: tuple[CidrBlock, ...] = ()

    def matches(self, endpoint: EndpointId | None, addresses: tuple[IPAddress, ...]) -> bool:
        if endpoint is not None and endpoint in self.endpoints:
            return True
        return any(block.contains(a) for block in self.blocks for a in addresses)


@dataclass(frozen=True, slots=True)
class PortMatch:
    """One port entry of a rule. Named ports resolve against the destination endpoint."""

    index: int
    protocol: Protocol
    #: None with `name` None: every port of the protocol.
    start: int | None = None
    end: int | None = None
    name: str | None = None

    def matches(self, flow: FlowPort, destination: EndpointInfo | None) -> bool:
        if flow.protocol != self.protocol or flow.port is None:
            return False
        if self.name is not None:
            if destination is None:
                return False
            return destination.resolve_port(self.name, self.protocol) == flow.port
        if self.start is None:
            return True
        return self.start <= flow.port <= (self.end if self.end is not None else self.start)


@dataclass(frozen=True, slots=True)
class Rule:
    ref: RuleRef
    action: Action
    #: None: every peer (NetworkPolicy's absent or empty from/to).
    peers: tuple[PeerMatch, ...] | None
    #: None: every protocol and port, ICMP included.
    ports: tuple[PortMatch, ...] | None


@dataclass(frozen=True, slots=True)
class PolicyRules:
    """One policy's rules for one direction, and the endpoints it applies to."""

    ref: PolicyRef
    subjects: frozenset[EndpointId]
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    policies: tuple[PolicyRules, ...]
    #: What happens to a flow of an endpoint some policy of this tier selects when no rule
    #: decided: DENY (NetworkPolicy isolation), or None to go on with the next tier.
    end_action: Action | None


@dataclass(frozen=True)
class Ruleset:
    endpoints: tuple[EndpointInfo, ...]
    ingress: tuple[Tier, ...]
    egress: tuple[Tier, ...]
    #: The verdict when no tier decided: Kubernetes allows what no policy isolates.
    default_action: Action = Action.ALLOW
    _by_id: dict[EndpointId, EndpointInfo] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update((e.id, e) for e in self.endpoints)

    def tiers(self, direction: Direction) -> tuple[Tier, ...]:
        return self.ingress if direction is Direction.INGRESS else self.egress

    def endpoint(self, endpoint: EndpointId) -> EndpointInfo | None:
        return self._by_id.get(endpoint)
