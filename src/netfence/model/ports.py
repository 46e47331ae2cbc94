"""Protocols, ports and the flows' port specification."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Protocol(StrEnum):
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"
    ICMP = "ICMP"
    ICMPV6 = "ICMPv6"
    UDPLITE = "UDPLite"


#: IANA protocol numbers of the protocols netfence names.
PROTOCOL_NUMBERS = {
    Protocol.TCP: 6,
    Protocol.UDP: 17,
    Protocol.SCTP: 132,
    Protocol.ICMP: 1,
    Protocol.ICMPV6: 58,
    Protocol.UDPLITE: 136,
}

#: A protocol in a rule: one netfence names, or another IANA protocol number (GRE = 47, ...).
#: Flows only ever carry named protocols, so a numbered one matches no flow netfence analyzes.
RuleProtocol = Protocol | int

#: Protocols whose packets have ports.
PORTED_PROTOCOLS = (Protocol.TCP, Protocol.UDP, Protocol.SCTP, Protocol.UDPLITE)

#: The ICMP message a flow with protocol ICMP stands for: echo request (what ping sends).
ICMP_ECHO_REQUEST = (8, 0)


#: Protocols a Kubernetes NetworkPolicy port or a containerPort may name.
PORT_PROTOCOLS = (Protocol.TCP, Protocol.UDP, Protocol.SCTP)


@dataclass(frozen=True, slots=True, order=True)
class FlowPort:
    """The destination side of a flow: a protocol and, except for ICMP, a port number.

    An ICMP flow stands for an echo request.
    """

    protocol: Protocol
    port: int | None

    def __str__(self) -> str:
        return str(self.protocol) if self.port is None else f"{self.protocol}/{self.port}"

    @property
    def sort_key(self) -> tuple[int, str]:
        return (self.port if self.port is not None else -1, self.protocol.value)


def parse_flow_port(text: str) -> FlowPort:
    """Parse `80`, `80/TCP`, `53/udp` or `ICMP`; raise ValueError with a readable reason."""
    raw = text.strip()
    if raw.upper() == "ICMP":
        return FlowPort(Protocol.ICMP, None)
    number, _, proto = raw.partition("/")
    proto_name = (proto or "TCP").upper()
    if proto_name not in {p.value for p in PORT_PROTOCOLS}:
        raise ValueError(f"expected PORT/PROTOCOL with protocol TCP, UDP or SCTP, or ICMP, got {text!r}")
    if not number.isdigit() or not 1 <= int(number) <= 65535:
        raise ValueError(f"expected a port number 1-65535 in PORT/PROTOCOL, got {text!r}")
    return FlowPort(Protocol(proto_name), int(number))
