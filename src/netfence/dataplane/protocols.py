"""Protocols as netfilter's tools spell them (nft's `meta l4proto`, iptables' `-p`)."""

from __future__ import annotations

from netfence.model.ports import Protocol, RuleProtocol

_NAMES = {
    Protocol.TCP: "tcp",
    Protocol.UDP: "udp",
    Protocol.SCTP: "sctp",
    Protocol.UDPLITE: "udplite",
    Protocol.ICMP: "icmp",
    Protocol.ICMPV6: "ipv6-icmp",
}


def netfilter_name(protocol: RuleProtocol) -> str:
    """A known protocol's name; any other (a number) as its number."""
    return _NAMES[protocol] if isinstance(protocol, Protocol) else str(protocol)
