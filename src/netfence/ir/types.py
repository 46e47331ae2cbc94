"""The intermediate representation. Selectors are already resolved to endpoints here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import ip_network

from netfence.model.endpoints import EndpointId, IPAddress
from netfence.model.policies import Direction, IPNetwork, PolicyKind
from netfence.model.ports import ICMP_ECHO_REQUEST, PORTED_PROTOCOLS, FlowPort, Protocol, RuleProtocol

#: The source ports a client picks from: Linux's default net.ipv4.ip_local_port_range (set per
#: network namespace), both ends included. A flow's source port is one of these.
EPHEMERAL_PORTS: tuple[int, int] = (32768, 60999)


class Action(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    #: Skip the rest of this tier and go on with the next one.
    PASS = "pass"
    #: Record the packet and go on with the next rule (Calico's Log); never decides.
    LOG = "log"


class EndpointKind(StrEnum):
    POD = "pod"
    #: A Calico HostEndpoint: a host interface policies can select.
    HOST = "host"
    #: A netfence ExternalWorkload: a host outside the cluster, enforced by its own firewall.
    EXTERNAL = "external"


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
    kind: EndpointKind = EndpointKind.POD
    #: The verdict when no tier decided; None: the ruleset's default (a HostEndpoint without
    #: the default-allow profile is denied).
    default_action: Action | None = None

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

    @classmethod
    def of(cls, address: IPAddress) -> CidrBlock:
        """The block holding just this address."""
        return cls(ip_network(address))

    def contains(self, address: IPAddress) -> bool:
        if address.version != self.network.version or address not in self.network:
            return False
        return not any(address in e for e in self.excepts)


@dataclass(frozen=True, slots=True)
class AddressGroup:
    """Addresses: those of some endpoints, plus CIDR blocks."""

    endpoints: frozenset[EndpointId] = frozenset()
    blocks: tuple[CidrBlock, ...] = ()

    def contains(self, endpoint: EndpointId | None, address: IPAddress | None) -> bool:
        if endpoint is not None and endpoint in self.endpoints:
            return True
        return address is not None and any(block.contains(address) for block in self.blocks)


@dataclass(frozen=True, slots=True)
class PeerMatch:
    """One peer of a rule: the addresses in `endpoints` and `blocks` (or every address when
    `any_address`), that are also in every group of `also`, and in no group of `excluded`.

    Matching is per address: one address of the party must pass every test. An endpoint's
    addresses are all in a group that names the endpoint.
    """

    index: int
    endpoints: frozenset[EndpointId] = frozenset()
    blocks: tuple[CidrBlock, ...] = ()
    any_address: bool = False
    also: tuple[AddressGroup, ...] = ()
    excluded: tuple[AddressGroup, ...] = ()

    @property
    def positive(self) -> AddressGroup:
        return AddressGroup(self.endpoints, self.blocks)

    @property
    def is_plain(self) -> bool:
        """Only the positive part (a Kubernetes or ANP peer)."""
        return not self.any_address and not self.also and not self.excluded

    def matches(self, endpoint: EndpointId | None, addresses: tuple[IPAddress, ...]) -> bool:
        candidates: tuple[IPAddress | None, ...] = addresses or (None,)
        return any(self.matches_address(endpoint, a) for a in candidates)

    def matches_address(self, endpoint: EndpointId | None, address: IPAddress | None) -> bool:
        if not self.any_address:
            if not (endpoint is not None and endpoint in self.endpoints) and not (
                address is not None and any(block.contains(address) for block in self.blocks)
            ):
                return False
        if not all(group.contains(endpoint, address) for group in self.also):
            return False
        return not any(group.contains(endpoint, address) for group in self.excluded)


@dataclass(frozen=True, slots=True)
class PortMatch:
    """One port entry of a rule. Named ports resolve against the destination endpoint."""

    index: int
    #: None: any protocol (an AdminNetworkPolicy namedPort takes the pod's port protocol).
    protocol: RuleProtocol | None
    #: None with `name` None: every port of the protocol.
    start: int | None = None
    end: int | None = None
    name: str | None = None

    def matches(self, flow: FlowPort, destination: EndpointInfo | None) -> bool:
        if self.protocol is not None and flow.protocol != self.protocol:
            return False
        if self.name is not None:
            if destination is None or flow.port is None:
                return False
            return destination.resolve_port(self.name, flow.protocol) == flow.port
        if self.start is None:
            return self.protocol is not None
        if flow.port is None:
            return False
        return self.start <= flow.port <= (self.end if self.end is not None else self.start)


def resolve_named_ports(entries: Sequence[PortMatch], destination: EndpointInfo | None) -> list[PortMatch]:
    """The entries with names replaced by the numbers `destination` gives them, the first number
    per protocol as EndpointInfo.resolve_port does; a name the destination (or a flow without
    one) cannot resolve drops out."""
    out: list[PortMatch] = []
    for entry in entries:
        if entry.name is None:
            out.append(entry)
        elif destination is not None:
            seen: set[Protocol] = set()
            for name, protocol, number in destination.named_ports:
                wanted = entry.protocol is None or entry.protocol == protocol
                if name == entry.name and wanted and protocol not in seen:
                    seen.add(protocol)
                    out.append(PortMatch(entry.index, protocol, number, number))
    return out


def by_named_ports(endpoints: Iterable[EndpointInfo]) -> list[list[EndpointInfo]]:
    """The endpoints grouped by their named-port map (members of a group resolve every name
    alike), groups in the order of their maps."""
    groups: dict[tuple[tuple[str, Protocol, int], ...], list[EndpointInfo]] = {}
    for endpoint in endpoints:
        groups.setdefault(endpoint.named_ports, []).append(endpoint)
    return [members for _, members in sorted(groups.items())]


@dataclass(frozen=True, slots=True)
class IcmpMatch:
    type: int
    code: int | None = None

    def matches(self, flow: FlowPort) -> bool:
        # A flow with protocol ICMP stands for an echo request.
        if flow.protocol is not Protocol.ICMP:
            return False
        kind, code = ICMP_ECHO_REQUEST
        return self.type == kind and (self.code is None or self.code == code)


class SourcePortMatch(StrEnum):
    """How a rule's source-port criterion holds over the ephemeral ports (EPHEMERAL_PORTS)."""

    #: For every one: the criterion matches.
    ALL = "all"
    #: For none: it does not match.
    NONE = "none"
    #: For some only: the verdict depends on the port the client picks. netfence reads the
    #: criterion as not matching (lint check source-port-split says so).
    SOME = "some"


def port_spans(entries: Sequence[PortMatch], protocol: Protocol, source: EndpointInfo | None) -> list[tuple[int, int]]:
    """The port ranges of the entries that apply to `protocol`, names resolved on `source` (its
    first port of the name and protocol; None or a source without it: the entry has none)."""
    found: list[tuple[int, int]] = []
    for entry in entries:
        if entry.protocol is not None and entry.protocol != protocol:
            continue
        if entry.name is not None:
            number = source.resolve_port(entry.name, protocol) if source is not None else None
            if number is not None:
                found.append((number, number))
        elif entry.start is None:
            if entry.protocol is not None:
                found.append((0, 65535))  # every port of its protocol
        else:
            found.append((entry.start, entry.end if entry.end is not None else entry.start))
    return found


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule matches a flow when every criterion it has holds."""

    ref: RuleRef
    action: Action
    #: The other end of the flow. None: every peer (NetworkPolicy's absent or empty from/to).
    peers: tuple[PeerMatch, ...] | None
    #: Any of these. None: every protocol and port, ICMP included.
    ports: tuple[PortMatch, ...] | None
    #: None of these (Calico notPorts).
    not_ports: tuple[PortMatch, ...] = ()
    protocol: RuleProtocol | None = None
    not_protocol: RuleProtocol | None = None
    icmp: IcmpMatch | None = None
    not_icmp: IcmpMatch | None = None
    #: Source ports (Calico source.ports / notPorts); names resolve on the source endpoint. A
    #: flow's source port is an ephemeral one (EPHEMERAL_PORTS): see source_port_match.
    source_ports: tuple[PortMatch, ...] = ()
    not_source_ports: tuple[PortMatch, ...] = ()
    #: 4 or 6: only addresses of that family.
    ip_version: int | None = None
    #: The policy's own endpoint must match too (a Calico ingress rule's destination fields,
    #: an egress rule's source fields).
    local: PeerMatch | None = None

    @property
    def constrains_source_port(self) -> bool:
        return bool(self.source_ports or self.not_source_ports)

    @property
    def names_source_port(self) -> bool:
        return any(entry.name is not None for entry in (*self.source_ports, *self.not_source_ports))

    def source_port_match(self, protocol: Protocol, source: EndpointInfo | None) -> SourcePortMatch:
        """How the source-port criterion (source_ports and not_source_ports together) holds for
        a flow of `protocol` from `source` (None: an address outside the ruleset), over every
        ephemeral port the client may pick.

        A protocol without ports has no source port: source_ports never match it, and
        not_source_ports exclude nothing of it. Named entries resolve on the source endpoint
        (its first port of that name and protocol); one the source does not declare matches no
        port.
        """
        if not self.source_ports and not self.not_source_ports:
            return SourcePortMatch.ALL
        low, high = EPHEMERAL_PORTS
        held = self.source_port_spans(protocol, source)
        covered = sum(b - a + 1 for a, b in held)
        if covered == 0:
            return SourcePortMatch.NONE
        return SourcePortMatch.ALL if covered == high - low + 1 else SourcePortMatch.SOME

    def source_port_spans(self, protocol: Protocol, source: EndpointInfo | None) -> list[tuple[int, int]]:
        """The ephemeral ports (EPHEMERAL_PORTS) the source-port criterion holds for, as sorted
        disjoint ranges: the ones source_ports name (all without them), less not_source_ports."""
        low, high = EPHEMERAL_PORTS
        if protocol not in PORTED_PROTOCOLS:
            return [] if self.source_ports else [(low, high)]
        wanted = port_spans(self.source_ports, protocol, source) if self.source_ports else [(low, high)]
        held: list[tuple[int, int]] = []  # merged, within the ephemeral ports
        for a, b in sorted((max(a, low), min(b, high)) for a, b in wanted):
            if a > b:
                continue
            if held and a <= held[-1][1] + 1:
                held[-1] = (held[-1][0], max(held[-1][1], b))
            else:
                held.append((a, b))
        for start, end in port_spans(self.not_source_ports, protocol, source):
            held = [part for a, b in held for part in ((a, min(b, start - 1)), (max(a, end + 1), b)) if part[0] <= part[1]]
        return held

    def matches_source_port(self, protocol: Protocol, source: EndpointInfo | None) -> bool:
        """Whether the source-port criterion matches: it must hold for every ephemeral port (a
        criterion that holds for some only depends on the client's pick, and does not match)."""
        if not self.source_ports and not self.not_source_ports:
            return True
        return self.source_port_match(protocol, source) is SourcePortMatch.ALL

    def matches_port(self, flow: FlowPort, destination: EndpointInfo | None) -> bool:
        """The protocol, destination port and ICMP criteria (the addresses and the source port
        are matched apart: matches_source_port)."""
        if self.protocol is not None and flow.protocol != self.protocol:
            return False
        if self.not_protocol is not None and flow.protocol == self.not_protocol:
            return False
        if self.icmp is not None and not self.icmp.matches(flow):
            return False
        if self.not_icmp is not None and self.not_icmp.matches(flow):
            return False
        return not any(entry.matches(flow, destination) for entry in self.not_ports)


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
    #: The tier's place (Calico order); informational, the tuple order is what counts.
    order: float | None = None


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
