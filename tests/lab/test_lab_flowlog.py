"""Flow logs in the real kernel: the nodes' tables log to NFLOG inside the lab's namespaces,
`netfence flows` reads exactly the flows that were sent with the rule that decided each (as the
analyzer names it), audited policies let their flows through and log them, and the log rate
limit bounds a flood without letting a packet through."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flowlog_cluster import CLUSTER

from netfence.analysis.verdict import Flow, Party, Reason, evaluate
from netfence.dataplane.apply import read_counters
from netfence.dataplane.flows import FlowLog, FlowRecord, Source, open_sources, read_records
from netfence.dataplane.nflog import NflogSocket
from netfence.dataplane.nft.flowlog import LogOptions, LogVerdict, log_catalog
from netfence.ir.audit import enforced_ruleset, parse_audited
from netfence.ir.build import build_ruleset
from netfence.ir.types import Ruleset
from netfence.lab.connection import probe_once, socket_in
from netfence.lab.control import compare, enforce, up
from netfence.lab.plan import LabPlan, LabPod, lab_inventory
from netfence.lab.probe import Outcome
from netfence.model.ports import FlowPort, Protocol
from netfence.sources.load import load_inventory

pytestmark = pytest.mark.lab

TCP80, UDP80 = FlowPort(Protocol.TCP, 80), FlowPort(Protocol.UDP, 80)
#: (source, destination, port) sent in every test below, with what the kernel must do.
Sent = tuple[str, str, FlowPort]


def build(lab_name: str, path: str) -> tuple[LabPlan, Ruleset, dict[str, LabPod]]:
    inventory = load_inventory([path]).inventory
    plan = up(inventory, lab_name, [TCP80, UDP80]).state.plan
    ruleset = build_ruleset(lab_inventory(inventory, plan))
    return plan, ruleset, {p.name: p for p in plan.pods}


def send(plan: LabPlan, pods: dict[str, LabPod], flows: Sequence[Sent]) -> dict[Sent, Outcome]:
    """One connection (TCP) or request (UDP) per flow, all at once; 1 s for an answer."""
    with ThreadPoolExecutor(len(flows)) as pool:
        outcomes = pool.map(lambda f: probe_once(plan, pods[f[0]].netns, pods[f[1]], f[2], timeout=1.0), flows)
    return dict(zip(flows, outcomes))


def analyzer_reason(ruleset: Ruleset, pods: dict[str, LabPod], flow: Sent) -> tuple[bool, str | None, str | None]:
    """(allowed, deciding rule or None, tier) of the flow's ingress side, as the analyzer says."""
    source, destination = (ruleset.endpoint(pods[name].id) for name in flow[:2])
    assert source is not None and destination is not None
    side = evaluate(ruleset, Flow(Party.of(source), Party.of(destination), flow[2])).ingress
    if side.reason is Reason.RULE:
        return side.allowed, str(side.rule), side.tier
    if side.reason is Reason.ISOLATED:
        return side.allowed, f"end of tier {side.tier}", side.tier
    return side.allowed, "no tier decided", None


def test_flows_reads_exactly_the_sent_flows_with_the_deciding_rules(
    lab_name: str, write: Callable[[str, str], str]
) -> None:
    path = write("cluster.yaml", CLUSTER)
    plan, ruleset, pods = build(lab_name, path)
    assert enforce(plan, ruleset, log=LogOptions(allowed=True)) == []
    reader = subprocess.Popen(
        [sys.executable, "-m", "netfence", "flows", "--lab", lab_name, "-f", path, "-o", "json", "--duration", "8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stderr is not None
        ready, _, _ = select.select([reader.stderr], [], [], 20)
        assert ready and reader.stderr.readline().startswith(f"flows: reading NFLOG group 5 in lab {lab_name} (2 nodes)")
        sent: list[Sent] = [
            ("a-near", "b-near", TCP80),
            ("a-far", "b-near", UDP80),
            ("c-far", "b-near", TCP80),
            ("x-far", "b-near", UDP80),
            ("x-far", "d-near", TCP80),
            ("a-near", "d-near", TCP80),
        ]
        outcomes = send(plan, pods, sent)
        out, err = reader.communicate(timeout=30)
    finally:
        reader.kill()
    assert reader.returncode == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    got = {
        (r["from"], r["to"], r["protocol"], r["port"], r["verdict"], r["text"], r["tier"], r["node"], r["direction"])
        for r in records
    }
    expected = set()
    for flow in sent:
        allowed, text, tier = analyzer_reason(ruleset, pods, flow)
        assert outcomes[flow] is (Outcome.ANSWERED if allowed else Outcome.TIMEOUT), flow
        expected.add(
            (
                str(pods[flow[0]].id),
                str(pods[flow[1]].id),
                str(flow[2].protocol),
                flow[2].port,
                "allowed" if allowed else "denied",
                text,
                tier,
                pods[flow[1]].node,
                "ingress",
            )
        )
    # One line per flow: no retransmitted SYN or resent datagram twice, nothing else logged.
    assert len(records) == len(sent)
    assert got == expected
    # Every kind of deciding point appears, as the analyzer names it.
    assert {r["decidedBy"] for r in records} == {"rule", "end-of-tier", "default"}
    assert {r["text"] for r in records} >= {
        'AdminNetworkPolicy deny-c ingress[0] "no-c"',
        'AdminNetworkPolicy deny-x ingress[0] "no-x"',
        "NetworkPolicy shop/b-from-a ingress[0]",
        "end of tier default",
        "no tier decided",
    }
    assert all(r["fromAddress"] == str(pods[r["from"].split("/")[1]].ip) for r in records)


def test_audited_policies_let_their_flows_through_and_log_what_they_would_deny(
    lab_name: str, write: Callable[[str, str], str]
) -> None:
    plan, ruleset, pods = build(lab_name, write("cluster.yaml", CLUSTER))
    audited = parse_audited(["AdminNetworkPolicy/deny-x", "shop/b-from-a"], ruleset)
    assert enforce(plan, ruleset, log=LogOptions(audit=audited)) == []
    sockets = open_sources([Source(n.name, n.netns) for n in plan.nodes], 5)
    try:
        sent: list[Sent] = [
            ("x-far", "d-near", TCP80),  # deny-x would deny: a rule
            ("x-far", "b-near", TCP80),  # b-from-a would isolate b: the end of the default tier
            ("a-near", "b-near", TCP80),  # b-from-a would allow: nothing to report
            ("c-far", "b-near", TCP80),  # deny-c is enforced
        ]
        outcomes = send(plan, pods, sent)
        names = {p.ip: str(p.id) for p in plan.pods}
        records = list(read_records(sockets, FlowLog(log_catalog(ruleset), names), duration=1.5))
    finally:
        for _, sock in sockets:
            sock.close()
    enforced = enforced_ruleset(ruleset, audited)
    for flow in sent:
        # The kernel does what the analyzer says of the ruleset without the audited policies.
        assert (outcomes[flow] is Outcome.ANSWERED) == analyzer_reason(enforced, pods, flow)[0], flow
    assert [outcomes[f] for f in sent] == [Outcome.ANSWERED, Outcome.ANSWERED, Outcome.ANSWERED, Outcome.TIMEOUT]

    def seen(record: FlowRecord) -> tuple[str | None, str | None, LogVerdict, str]:
        return record.source, record.destination, record.verdict, record.decided_by

    # The audit records are the audit verdicts the analyzer gives with the policies enforced.
    audit_x_d = analyzer_reason(ruleset, pods, sent[0])
    audit_x_b = analyzer_reason(ruleset, pods, sent[1])
    assert audit_x_d[:2] == (False, 'AdminNetworkPolicy deny-x ingress[0] "no-x"')
    assert audit_x_b[:2] == (False, "end of tier default")
    assert sorted(map(seen, records), key=str) == sorted(
        [
            ("shop/x-far", "shop/d-near", LogVerdict.AUDIT, audit_x_d[1]),
            ("shop/x-far", "shop/b-near", LogVerdict.AUDIT, audit_x_b[1]),
            ("shop/c-far", "shop/b-near", LogVerdict.DENIED, 'AdminNetworkPolicy deny-c ingress[0] "no-c"'),
        ],
        key=str,
    )
    # The whole lab agrees with the analyzer's enforced verdicts.
    comparison = compare(plan, enforced, [TCP80, UDP80])
    assert comparison.mismatches == 0 and comparison.wrong_pod == 0
    # NFLOG needs no nf_log_all_netns (it gates only LOG's syslog output outside the initial netns).
    setting = Path("/proc/sys/net/netfilter/nf_log_all_netns")
    if setting.exists():
        print(f"\nnf_log_all_netns = {setting.read_text().strip()} while NFLOG logged in the lab's namespaces")


def test_the_log_rate_limit_bounds_a_flood_and_every_packet_is_still_dropped(
    lab_name: str, write: Callable[[str, str], str]
) -> None:
    plan, ruleset, pods = build(lab_name, write("cluster.yaml", CLUSTER))
    assert enforce(plan, ruleset, log=LogOptions(rate=5, burst=5)) == []
    node = plan.node(pods["b-near"].node)
    messages = 0
    with NflogSocket(5, node.netns) as reader:
        flood = socket_in(pods["c-far"].netns, socket.SOCK_DGRAM)
        started = time.monotonic()
        try:
            for _ in range(500):
                flood.sendto(b"x", (str(pods["b-near"].ip), 80))
        finally:
            flood.close()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            ready, _, _ = select.select([reader], [], [], 0.1)
            if ready:
                messages += len(reader.read())
        elapsed = time.monotonic() - started
    dropped = read_counters(node.netns)["AdminNetworkPolicy deny-c ingress[0] _no-c_"][0]
    print(f"\n500 datagrams dropped by one rule: {messages} logged at 5/s burst 5 in {elapsed:.2f} s")
    assert dropped == 500
    assert 5 <= messages <= 5 + 5 * elapsed + 1
