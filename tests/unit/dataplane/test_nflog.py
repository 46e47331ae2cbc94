"""NFLOG messages: the config requests netfence sends, packets the kernel sent (captured from
kernel 6.18 with `log group 5` in a netns), header decoding, and flow records."""

from __future__ import annotations

import json
import struct
from ipaddress import IPv4Address, IPv6Address, ip_address

from netfence.dataplane.flows import FlowLog, log_notes
from netfence.dataplane.nflog import (
    AF_INET,
    AF_INET6,
    NetlinkAck,
    NflogPacket,
    PacketHeader,
    bind_attributes,
    config_message,
    decode_header,
    parse_messages,
)
from netfence.dataplane.nft.flowlog import Decider, LogEntry, LogVerdict
from netfence.ir.types import PolicyRef, RuleRef
from netfence.model.policies import Direction, PolicyKind
from netfence.model.ports import Protocol
from netfence.output.flows import flow_data, flow_row, flows_header

#: A UDP datagram 127.0.0.1:37078 -> 127.0.0.2:53, prefix netfence:Di:0123456789, output hook.
CAPTURED_UDP = bytes.fromhex(
    "740000000004000000000000000000000200000508000100080003001b000a006e657466656e63653a44693a303132333435363738"
    "390000080005000000000108000b000000000008000e0000000000210009004500001da2b2400040119a1a7f0000017f00000290d6"
    "00350009fe1d78000000"
)
#: A TCP SYN 127.0.0.1:37286 -> 127.0.0.2:80, same rule.
CAPTURED_TCP = bytes.fromhex(
    "900000000004000000000000000000000200000508000100080003001b000a006e657466656e63653a44693a303132333435363738"
    "390000080005000000000108000b000000000008000e0000000000400009004500003c4a1040004006f2a87f0000017f00000291a6"
    "00500e6eba5300000000a002ffd7fe3100000204ffd70402080aec584058000000000103030a"
)
#: A UDP datagram [::1]:34829 -> [::1]:9, prefix netfence:Ue:abcdef0123.
CAPTURED_UDP6 = bytes.fromhex(
    "880000000004000000000000000000000a0000050800010086dd03001b000a006e657466656e63653a55653a616263646566303132"
    "330000080005000000000108000b000000000008000e00000000003500090060043567000911400000000000000000000000000000"
    "000100000000000000000000000000000001880d00090009001c79000000"
)


def only_packet(data: bytes) -> NflogPacket:
    items = list(parse_messages(data))
    assert len(items) == 1 and isinstance(items[0], NflogPacket)
    return items[0]


def test_config_requests_bind_the_group_and_ask_for_the_packet_at_once() -> None:
    bind, mode, batching = bind_attributes(256, 1, 1)
    message = config_message(5, bind, seq=1)
    length, kind, flags, seq, pid = struct.unpack_from("=IHHII", message)
    assert (length, kind, flags, seq, pid) == (len(message), 0x0401, 0x0005, 1, 0)  # ULOG config, request + ack
    assert message[16:20] == bytes([0, 0, 0, 5])  # family unspec, version 0, group 5 big-endian
    assert message[20:] == bytes([5, 0, 1, 0, 1, 0, 0, 0])  # NFULA_CFG_CMD bind, padded to 4 bytes
    mode_message = config_message(5, mode, seq=2)
    assert mode_message[20:] == bytes([10, 0, 2, 0, 0, 0, 1, 0, 2, 0, 0, 0])  # copy 256 bytes of the packet
    assert len(config_message(5, batching, seq=3)) % 4 == 0


def test_acknowledgements_carry_the_error() -> None:
    ok = struct.pack("=IHHII", 36, 2, 0, 7, 0) + struct.pack("=i", 0) + bytes(16)
    refused = struct.pack("=IHHII", 36, 2, 0, 8, 0) + struct.pack("=i", -1) + bytes(16)
    assert list(parse_messages(ok + refused)) == [NetlinkAck(7, 0), NetlinkAck(8, 1)]


def test_captured_ipv4_messages_decode_to_prefix_hook_and_header() -> None:
    udp = only_packet(CAPTURED_UDP)
    assert (udp.group, udp.family, udp.prefix, udp.hook, udp.outdev) == (5, AF_INET, "netfence:Di:0123456789", 3, 1)
    assert decode_header(udp.family, udp.payload) == PacketHeader(
        IPv4Address("127.0.0.1"), IPv4Address("127.0.0.2"), Protocol.UDP, 37078, 53
    )
    tcp = only_packet(CAPTURED_TCP)
    assert decode_header(tcp.family, tcp.payload) == PacketHeader(
        IPv4Address("127.0.0.1"), IPv4Address("127.0.0.2"), Protocol.TCP, 37286, 80
    )
    # Several messages in one datagram.
    assert [p.prefix for p in parse_messages(CAPTURED_UDP + CAPTURED_TCP)] == ["netfence:Di:0123456789"] * 2


def test_captured_ipv6_message_decodes() -> None:
    packet = only_packet(CAPTURED_UDP6)
    assert (packet.family, packet.prefix) == (AF_INET6, "netfence:Ue:abcdef0123")
    assert decode_header(packet.family, packet.payload) == PacketHeader(
        IPv6Address("::1"), IPv6Address("::1"), Protocol.UDP, 34829, 9
    )


def _ipv4(protocol: int, l4: bytes, fragment: int = 0) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, fragment, 64, protocol, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + l4


def test_icmp_fragments_and_other_protocols() -> None:
    echo = decode_header(AF_INET, _ipv4(1, bytes([8, 0, 0, 0, 0, 1, 0, 1])))
    assert echo is not None and (echo.protocol, echo.icmp_type, echo.icmp_code) == (Protocol.ICMP, 8, 0)
    later_fragment = decode_header(AF_INET, _ipv4(6, bytes(20), fragment=185))
    assert later_fragment == PacketHeader(ip_address("10.0.0.1"), ip_address("10.0.0.2"), Protocol.TCP)
    gre = decode_header(AF_INET, _ipv4(47, bytes(8)))
    assert gre is not None and gre.protocol == 47 and gre.destination_port is None
    assert decode_header(AF_INET, b"\x45\x00") is None
    assert decode_header(AF_INET6, _ipv4(6, bytes(20))) is None


def test_ipv6_extension_headers_are_skipped() -> None:
    addresses = bytes(15) + b"\x01" + bytes(15) + b"\x02"
    hop_by_hop = bytes([6, 0]) + bytes(6)  # next: TCP, 8 bytes
    tcp = struct.pack("!HH", 40000, 443) + bytes(16)
    payload = struct.pack("!IHBB", 0x60000000, len(hop_by_hop) + len(tcp), 0, 64) + addresses + hop_by_hop + tcp
    assert decode_header(AF_INET6, payload) == PacketHeader(ip_address("::1"), ip_address("::2"), Protocol.TCP, 40000, 443)
    # A non-first fragment: no ports.
    fragment = bytes([17, 0]) + struct.pack("!H", 8 << 3) + bytes(4)
    payload = struct.pack("!IHBB", 0x60000000, 16, 44, 64) + addresses + fragment + bytes(8)
    assert decode_header(AF_INET6, payload) == PacketHeader(ip_address("::1"), ip_address("::2"), Protocol.UDP)


REF = RuleRef(PolicyRef(PolicyKind.NETWORK_POLICY, "shop", "b-from-a"), Direction.INGRESS, 0)


def test_flow_log_names_parties_and_rules_and_folds_repeats_within_the_window() -> None:
    packet = only_packet(CAPTURED_TCP)
    catalog = {"0123456789": LogEntry("0123456789", Direction.INGRESS, Decider.RULE, "default", REF)}
    names = {ip_address("127.0.0.2"): "shop/b-near"}
    flows = FlowLog(catalog, names, window=5.0)
    first = flows.record(packet, "node-a", now=100.0)
    assert first is not None
    assert (first.node, first.direction, first.verdict, first.source, first.destination) == (
        "node-a", Direction.INGRESS, LogVerdict.DENIED, None, "shop/b-near",
    )  # fmt: skip
    assert (first.decided_by, first.tier, first.port_text, first.hook) == (str(REF), "default", "TCP/80", "output")
    assert flows.record(packet, "node-a", now=101.0) is None  # a retransmitted SYN
    assert flows.record(packet, "node-b", now=101.0) is not None  # another node's decision
    assert flows.record(packet, "node-a", now=106.0) is not None  # the window has passed
    assert flows.record(NflogPacket(5, AF_INET, "another tool", packet.payload), "node-a") is None
    assert flows.skipped == 1


def test_without_a_catalog_the_kernel_comment_names_the_rule() -> None:
    listing = {
        "nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {
                "rule": {
                    "family": "inet",
                    "table": "netfence",
                    "chain": "log_d_0123456789",
                    "handle": 9,
                    "comment": "NetworkPolicy shop/b-from-a ingress[0]",
                    "expr": [{"log": {"prefix": "netfence:Di:0123456789", "group": 5}}],
                }
            },
            {"rule": {"chain": "in_c0_t0", "comment": "other", "expr": [{"counter": {"packets": 0, "bytes": 0}}]}},
        ]
    }
    notes = log_notes(json.dumps(listing))
    assert notes == {"0123456789": "NetworkPolicy shop/b-from-a ingress[0]"}
    record = FlowLog(notes=notes).record(only_packet(CAPTURED_UDP), None, now=1.0)
    assert record is not None and record.decided_by == "NetworkPolicy shop/b-from-a ingress[0]" and record.tier is None


def test_records_print_as_a_row_and_as_one_json_object() -> None:
    catalog = {"0123456789": LogEntry("0123456789", Direction.INGRESS, Decider.RULE, "default", REF)}
    record = FlowLog(catalog, {ip_address("127.0.0.1"): "shop/a-near"}).record(only_packet(CAPTURED_TCP), "node-a", now=0.0)
    assert record is not None
    row = flow_row(record)
    assert flows_header().split()[:3] == ["TIME", "NODE", "DIRECTION"]
    for part in ("node-a", "ingress", "shop/a-near (127.0.0.1:37286)", "127.0.0.2", "TCP/80", "denied", "default", str(REF)):
        assert part in row
    data = flow_data(record)
    assert data == {
        "time": "1970-01-01T00:00:00.000Z",
        "node": "node-a",
        "direction": "ingress",
        "from": "shop/a-near",
        "to": None,
        "fromAddress": "127.0.0.1",
        "toAddress": "127.0.0.2",
        "protocol": "TCP",
        "sourcePort": 37286,
        "port": 80,
        "icmp": None,
        "verdict": "denied",
        "tier": "default",
        "decidedBy": "rule",
        "rule": {"kind": "NetworkPolicy", "namespace": "shop", "name": "b-from-a", "direction": "ingress", "index": 0, "ruleName": None},
        "text": "NetworkPolicy shop/b-from-a ingress[0]",
        "logId": "0123456789",
    }
