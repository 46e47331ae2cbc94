"""Hypothesis strategies for IR Rulesets built directly, with every feature the IR has.

The loader only produces what its sources can express; these draw what the IR can express:
peers with `any_address`, `also` and `excluded` groups, local matches, not-ports, protocol and
ICMP criteria, source-port rules, `ip_version`, Pass/Deny/Log actions, tiers with and without an
end action, endpoints with a default action of their own, host endpoints, dual-stack and
address-less endpoints, named ports that resolve differently per endpoint. Vocabularies are
tiny so that criteria overlap: most endpoint pairs meet several rules.

Used by test_matrix_differential.py and, for long runs, bench/fuzz_matrix.py.
"""

from __future__ import annotations

from ipaddress import ip_address, ip_network

from hypothesis import strategies as st

from netfence.ir.types import (
    Action,
    AddressGroup,
    CidrBlock,
    EndpointInfo,
    EndpointKind,
    IcmpMatch,
    PeerMatch,
    PolicyRef,
    PolicyRules,
    PortMatch,
    Rule,
    RuleProtocol,
    RuleRef,
    Ruleset,
    Tier,
)
from netfence.model.endpoints import EndpointId, IPAddress
from netfence.model.policies import Direction, PolicyKind
from netfence.model.ports import FlowPort, Protocol

#: Flows checked: protocol mix-ups (80/SCTP, 53/TCP) and ICMP (an echo request, no port).
IR_FLOW_PORTS: tuple[FlowPort, ...] = (
    FlowPort(Protocol.TCP, 80),
    FlowPort(Protocol.TCP, 8080),
    FlowPort(Protocol.UDP, 53),
    FlowPort(Protocol.TCP, 53),
    FlowPort(Protocol.SCTP, 80),
    FlowPort(Protocol.ICMP, None),
)

NAMESPACES = ("a", "b")
ADDRESSES: tuple[IPAddress, ...] = tuple(
    ip_address(a) for a in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.9", "10.0.1.1", "10.0.1.2", "fd00::1", "fd00::2")
)
NETWORKS = tuple(
    ip_network(n)
    for n in (
        "10.0.0.0/24", "10.0.0.0/30", "10.0.0.2/31", "10.0.0.9/32", "10.0.1.0/24", "10.0.0.0/16",
        "0.0.0.0/0", "fd00::/64", "fd00::2/128", "::/0",
    )
)  # fmt: skip
NAMED_PORTS: tuple[tuple[str, Protocol, int], ...] = (
    ("http", Protocol.TCP, 80),
    ("http", Protocol.TCP, 8080),
    ("dns", Protocol.UDP, 53),
    ("dns", Protocol.TCP, 53),
    ("web", Protocol.SCTP, 80),
    # Ports in the ephemeral range: a named source port can exclude a client's pick.
    ("eph", Protocol.TCP, 40000),
    ("eph", Protocol.UDP, 32768),
)
PORT_NAMES = ("http", "dns", "web", "eph", "nope")
RULE_PROTOCOLS: tuple[RuleProtocol | None, ...] = (None, Protocol.TCP, Protocol.UDP, Protocol.SCTP, Protocol.ICMP, 47)


_FLAGS: dict[int, st.SearchStrategy[bool]] = {}


def sometimes(one_in: int) -> st.SearchStrategy[bool]:
    """True about once in `one_in` draws; shrinks to False. Built once per rate (building
    strategies is most of the cost of drawing from them otherwise)."""
    if one_in not in _FLAGS:
        _FLAGS[one_in] = st.sampled_from((False,) * (one_in - 1) + (True,))
    return _FLAGS[one_in]


#: Endpoint i has id IDS[i]; sets are drawn over all of them, so a set may name an id no
#: endpoint of a small ruleset has (as a set built from a larger inventory would).
MAX_ENDPOINTS = 7
IDS = tuple(EndpointId(f"{NAMESPACES[i % 2]}/e{i}") for i in range(MAX_ENDPOINTS + 1))

_SET_MASKS = st.integers(0, 2 ** len(IDS) - 1)
ENDPOINT_SETS = _SET_MASKS.map(lambda mask: frozenset(IDS[k] for k in range(len(IDS)) if mask >> k & 1))
_NAMED_PORT_LISTS = st.lists(st.sampled_from(NAMED_PORTS), max_size=3, unique=True).map(tuple)
_ADDRESS_LISTS = st.lists(st.sampled_from(ADDRESSES), max_size=2, unique=True).map(tuple)
_KINDS = st.sampled_from((EndpointKind.POD,) * 3 + (EndpointKind.HOST,))
_DEFAULTS = st.sampled_from((None, None, None, Action.DENY, Action.ALLOW))


@st.composite
def _endpoint_info(draw: st.DrawFn, i: int) -> EndpointInfo:
    endpoint = IDS[i]
    namespace, name = endpoint.split("/")
    ips = draw(_ADDRESS_LISTS)
    return EndpointInfo(endpoint, namespace, name, ips, None, draw(_NAMED_PORT_LISTS), draw(_KINDS), draw(_DEFAULTS))


ENDPOINT_INFOS = [_endpoint_info(i) for i in range(MAX_ENDPOINTS)]


@st.composite
def endpoint_infos(draw: st.DrawFn) -> list[EndpointInfo]:
    return [draw(ENDPOINT_INFOS[i]) for i in range(draw(st.integers(1, MAX_ENDPOINTS)))]


_NETWORKS = st.sampled_from(NETWORKS)
_NETWORK_LISTS = st.lists(_NETWORKS, max_size=2, unique=True)


@st.composite
def _cidr_block(draw: st.DrawFn) -> CidrBlock:
    network = draw(_NETWORKS)
    excepts = tuple(n for n in draw(_NETWORK_LISTS) if n.version == network.version)
    return CidrBlock(network, excepts)


CIDR_BLOCKS = _cidr_block()
_BLOCK_LISTS = st.lists(CIDR_BLOCKS, max_size=2).map(tuple)


@st.composite
def _address_group(draw: st.DrawFn) -> AddressGroup:
    endpoints = draw(ENDPOINT_SETS) if draw(st.booleans()) else frozenset()
    return AddressGroup(endpoints, draw(_BLOCK_LISTS))


ADDRESS_GROUPS = _address_group()
_GROUP_LISTS = st.lists(ADDRESS_GROUPS, max_size=2).map(tuple)


@st.composite
def _peer_match(draw: st.DrawFn, index: int) -> PeerMatch:
    any_address = draw(sometimes(4))
    endpoints = frozenset() if any_address or draw(sometimes(3)) else draw(ENDPOINT_SETS)
    blocks = () if any_address else draw(_BLOCK_LISTS)
    also = draw(_GROUP_LISTS) if draw(sometimes(3)) else ()
    excluded = draw(_GROUP_LISTS) if draw(sometimes(3)) else ()
    return PeerMatch(index, endpoints, blocks, any_address, also, excluded)


PEER_MATCHES = [_peer_match(k) for k in range(3)]
_RULE_PROTOCOLS = st.sampled_from(RULE_PROTOCOLS)
_SHAPES = st.sampled_from(("all", "number", "range", "name"))
_PORT_NAMES = st.sampled_from(PORT_NAMES)
_NUMBERS = st.sampled_from((53, 80, 443, 8080))
_STARTS = st.sampled_from((53, 79, 80, 8000))
_WIDTHS = st.sampled_from((0, 1, 100))


@st.composite
def _port_match(draw: st.DrawFn, index: int) -> PortMatch:
    protocol = draw(_RULE_PROTOCOLS)
    shape = draw(_SHAPES)
    if shape == "name":
        return PortMatch(index, protocol, name=draw(_PORT_NAMES))
    if shape == "number":
        return PortMatch(index, protocol, draw(_NUMBERS))
    if shape == "range":
        start = draw(_STARTS)
        return PortMatch(index, protocol, start, start + draw(_WIDTHS))
    return PortMatch(index, protocol)


PORT_MATCHES = [_port_match(k) for k in range(3)]

#: Source-port ranges that cover the ephemeral ports (32768-60999), miss them, or split them.
_SOURCE_RANGES = st.sampled_from(
    ((1024, 65535), (32768, 60999), (1, 1023), (22, 22), (61000, 65535), (40000, 50000), (1, 32768), (60999, 65535))
)
_SOURCE_PROTOCOLS = st.sampled_from((Protocol.TCP, Protocol.TCP, Protocol.UDP, None))
_SOURCE_SHAPES = st.sampled_from(("range", "range", "name", "name", "all"))
_SOURCE_NAMES = st.sampled_from(("eph", "eph", "http", "dns", "nope"))


@st.composite
def _source_port_match(draw: st.DrawFn, index: int) -> PortMatch:
    protocol = draw(_SOURCE_PROTOCOLS)
    shape = draw(_SOURCE_SHAPES)
    if shape == "name":
        return PortMatch(index, protocol, name=draw(_SOURCE_NAMES))
    if shape == "all":
        return PortMatch(index, protocol)
    start, end = draw(_SOURCE_RANGES)
    return PortMatch(index, protocol, start, end)


_SOURCE_PORT_LISTS = st.lists(_source_port_match(0), min_size=1, max_size=2).map(tuple)
_NOT_PORT_LISTS = st.lists(PORT_MATCHES[0], max_size=2).map(tuple)
_COUNTS = st.integers(0, 3)
_ACTIONS = st.sampled_from((Action.ALLOW,) * 4 + (Action.DENY,) * 2 + (Action.PASS, Action.LOG))
_ICMP_TYPES = st.sampled_from((8, 0))
_ICMP_CODES = st.sampled_from((None, 0, 1))
_IP_VERSIONS = st.sampled_from((None, None, None, 4, 6))


@st.composite
def _rule(draw: st.DrawFn, ref: PolicyRef, direction: Direction, index: int) -> Rule:
    action = draw(_ACTIONS)
    peers = None
    if not draw(sometimes(4)):
        peers = tuple(draw(PEER_MATCHES[k]) for k in range(draw(_COUNTS)))
    ports = None
    if draw(st.booleans()):
        ports = tuple(draw(PORT_MATCHES[k]) for k in range(draw(_COUNTS)))
    return Rule(
        RuleRef(ref, direction, index),
        action,
        peers,
        ports,
        not_ports=draw(_NOT_PORT_LISTS) if draw(sometimes(5)) else (),
        protocol=draw(_RULE_PROTOCOLS) if draw(sometimes(5)) else None,
        not_protocol=draw(_RULE_PROTOCOLS) if draw(sometimes(8)) else None,
        icmp=IcmpMatch(draw(_ICMP_TYPES), draw(_ICMP_CODES)) if draw(sometimes(8)) else None,
        not_icmp=IcmpMatch(8) if draw(sometimes(10)) else None,
        source_ports=draw(_SOURCE_PORT_LISTS) if draw(sometimes(6)) else (),
        not_source_ports=draw(_SOURCE_PORT_LISTS) if draw(sometimes(7)) else (),
        ip_version=draw(_IP_VERSIONS),
        local=draw(PEER_MATCHES[0]) if draw(sometimes(4)) else None,
    )


_POLICY_COUNTS = st.integers(1, 3)
_RULE_COUNTS = st.integers(0, 4)
_END_ACTIONS = st.sampled_from((Action.DENY, Action.DENY, None, Action.ALLOW))


@st.composite
def _tier(draw: st.DrawFn, direction: Direction, number: int) -> Tier:
    policies = []
    for p in range(draw(_POLICY_COUNTS)):
        ref = PolicyRef(PolicyKind.GLOBAL_NETWORK_POLICY, None, f"t{number}-p{p}")
        subjects = draw(ENDPOINT_SETS)
        count = draw(_RULE_COUNTS)
        policies.append(PolicyRules(ref, subjects, tuple(draw(_rule(ref, direction, r)) for r in range(count))))
    return Tier(f"tier-{number}", tuple(policies), draw(_END_ACTIONS))


TIERS = {direction: [_tier(direction, t) for t in range(3)] for direction in Direction}
_TIER_COUNTS = st.integers(0, 3)
_RULESET_DEFAULTS = st.sampled_from((Action.ALLOW, Action.ALLOW, Action.DENY))


@st.composite
def rulesets(draw: st.DrawFn) -> Ruleset:
    endpoints = draw(endpoint_infos())
    ingress = tuple(draw(TIERS[Direction.INGRESS][t]) for t in range(draw(_TIER_COUNTS)))
    egress = tuple(draw(TIERS[Direction.EGRESS][t]) for t in range(draw(_TIER_COUNTS)))
    return Ruleset(tuple(endpoints), ingress, egress, draw(_RULESET_DEFAULTS))
