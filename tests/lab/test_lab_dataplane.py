"""The compiled dataplane in a real kernel: the seed scenarios enforced as the analyzer predicts,
replies of allowed flows passing an egress-isolated pod, the node reaching its own pods, and
tables replaced or updated under live traffic without a denied flow slipping through or an
allowed or established one failing (new connections and requests at a steady rate, then a
flood of datagrams through one allowed flow, which counts every packet a reload drops)."""

from __future__ import annotations

import errno
import itertools
import json
import os
import selectors
import socket
import struct
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address

import pytest

from netfence.cli.demo import scenario_dir
from netfence.dataplane.apply import apply_script, apply_table, run_nft
from netfence.dataplane.nft.objects import Table
from netfence.ir.build import build_ruleset
from netfence.lab.clean import clean
from netfence.lab.connection import HeldConnection, hold_connection, probe_once, socket_in
from netfence.lab.control import Comparison, compare, enforce, flush_conntrack, node_tables, predict, up
from netfence.lab.netns import enter, list_netns, unshare_net
from netfence.lab.plan import LabPlan, LabPod, lab_inventory, lab_prefix
from netfence.lab.probe import Outcome, ProbeReport, probe
from netfence.lab.servers import answer
from netfence.lab.state import state_path
from netfence.model.inventory import Inventory
from netfence.model.ports import FlowPort, Protocol
from netfence.sources.load import load_inventory

pytestmark = pytest.mark.lab

TCP80, UDP80 = FlowPort(Protocol.TCP, 80), FlowPort(Protocol.UDP, 80)
ANSWERED, TIMEOUT = Outcome.ANSWERED.value, Outcome.TIMEOUT.value


def both_protocols(*numbers: int) -> list[FlowPort]:
    return [FlowPort(protocol, n) for n in numbers for protocol in (Protocol.TCP, Protocol.UDP)]


def outcome(report: ProbeReport, source: LabPod, destination: LabPod, port: FlowPort) -> str:
    ids = [e.id for e in report.endpoints]
    return str(report.outcomes[report.ports.index(port), ids.index(source.id), ids.index(destination.id)])


def disagreements(comparison: Comparison) -> list[str]:
    report, predicted = comparison.report, comparison.predicted.allowed
    return [
        f"{report.endpoints[i].id} -> {report.endpoints[j].id} {port}: kernel {report.outcomes[p, i, j]},"
        f" analyzer {'allowed' if predicted[p, i, j] else 'denied'}"
        for p, port in enumerate(report.ports)
        for i in range(len(report.endpoints))
        for j in range(len(report.endpoints))
        if report.allowed[p, i, j] != predicted[p, i, j]
    ]


# --- 1. every seed scenario: the kernel does what the analyzer predicts ------------------------

#: (scenario, step, policy files on top of the scenario's cluster.yaml); steps in order.
STEPS = [
    ("colors", "allow-tcp-80-from-blue-to-green", ["allow-tcp-80-from-blue-to-green.yaml"]),
    ("wordpress", "0-cluster-alone", []),
    ("wordpress", "1-default-deny", ["step1-default-deny.yaml"]),
    ("wordpress", "2-allow-frontend", ["step1-default-deny.yaml", "step2-allow-frontend.yaml"]),
    (
        "wordpress",
        "3-allow-mysql-from-frontend",
        ["step1-default-deny.yaml", "step2-allow-frontend.yaml", "step3-allow-mysql-from-frontend.yaml"],
    ),
    # Back to no policy: re-enforcing must remove what the earlier steps enforced.
    ("wordpress", "0-cluster-alone-again", []),
    ("ingress-controller", "one-peer", ["one-peer.yaml"]),
    ("ingress-controller", "two-peers", ["two-peers.yaml"]),
    ("calico-default-deny", "default-deny", ["default-deny.yaml"]),
    ("calico-default-deny", "with-exceptions", ["default-deny.yaml", "exceptions.yaml"]),
    ("calico-tiers", "pass-and-order", ["policies.yaml"]),
    ("admin-policies", "anp-np-banp", ["policies.yaml"]),
    ("layered", "every-kind", ["policies.yaml", "baseline.yaml"]),
    ("layered", "without-baseline", ["policies.yaml"]),
]
SCENARIO_PORTS = {
    "colors": both_protocols(80),
    "wordpress": both_protocols(80, 3306),
    "ingress-controller": both_protocols(80),
    "calico-default-deny": both_protocols(53, 80, 6379),
    "calico-tiers": both_protocols(80),
    "admin-policies": both_protocols(80, 5432),
    "layered": both_protocols(80, 5432),
}


class ScenarioLabs:
    """One lab per scenario cluster, up once and shared by the scenario's steps (each step
    enforces its own ruleset, replacing the last one). Only one lab is up at a time."""

    def __init__(self) -> None:
        self.plans: dict[str, LabPlan] = {}
        self._names = (f"t{os.getpid()}s{k}" for k in itertools.count())

    def plan(self, scenario: str) -> LabPlan:
        if scenario not in self.plans:
            self.close()
            cluster = load_inventory([str(scenario_dir() / scenario / "cluster.yaml")]).inventory
            # Every pod serves every probed port, so a flow the policy allows finds a listener.
            self.plans[scenario] = up(cluster, next(self._names), SCENARIO_PORTS[scenario]).state.plan
        return self.plans[scenario]

    def close(self) -> None:
        for plan in self.plans.values():
            clean(plan.name)
            assert list_netns(lab_prefix(plan.name)) == [] and not state_path(plan.name).exists()
        self.plans.clear()


@pytest.fixture(scope="module")
def scenario_labs() -> Iterator[ScenarioLabs]:
    labs = ScenarioLabs()
    try:
        yield labs
    finally:
        labs.close()


@pytest.mark.parametrize(("scenario", "step", "policies"), STEPS, ids=[f"{s}-{step}" for s, step, _ in STEPS])
def test_kernel_verdicts_equal_the_analyzer_for_every_seed_scenario_step_on_tcp_and_udp(
    scenario: str, step: str, policies: Sequence[str], scenario_labs: ScenarioLabs
) -> None:
    plan = scenario_labs.plan(scenario)
    ports = SCENARIO_PORTS[scenario]
    files = [str(scenario_dir() / scenario / f) for f in ("cluster.yaml", *policies)]
    ruleset = build_ruleset(lab_inventory(load_inventory(files).inventory, plan))

    assert enforce(plan, ruleset) == []
    comparison = compare(plan, ruleset, ports)

    report = comparison.report
    print(f"\n{scenario} {step}: {report.probes} probes {report.counts()} in {report.seconds:.2f} s")
    assert comparison.mismatches == 0, "\n".join(disagreements(comparison))
    assert comparison.wrong_pod == 0
    # Every pod serves every probed port and NetworkPolicy drops: nothing is refused or rejected.
    assert set(report.counts()) <= {ANSWERED, TIMEOUT}
    if policies:
        assert not comparison.predicted.allowed.all(), "the step denies some flow"
        assert comparison.predicted.allowed.any(), "the step allows some flow"


# --- 2. statefulness, and the node reaching its own pods ---------------------------------------

#: b-near is isolated for egress entirely and accepts TCP and UDP 80 from app=a only.
ANSWERS_ONLY = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: a-near, namespace: shop, labels: {app: a}}
spec: {nodeName: node-a, containers: [{name: c, image: nginx}]}
status: {phase: Running, podIP: 10.60.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: b-near, namespace: shop, labels: {app: b}}
spec: {nodeName: node-a, containers: [{name: c, image: nginx}]}
status: {phase: Running, podIP: 10.60.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: a-far, namespace: shop, labels: {app: a}}
spec: {nodeName: node-b, containers: [{name: c, image: nginx}]}
status: {phase: Running, podIP: 10.60.1.2}
---
apiVersion: v1
kind: Pod
metadata: {name: c-far, namespace: shop, labels: {app: c}}
spec: {nodeName: node-b, containers: [{name: c, image: nginx}]}
status: {phase: Running, podIP: 10.60.1.3}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b-no-egress, namespace: shop}
spec:
  podSelector: {matchLabels: {app: b}}
  policyTypes: [Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b-from-a, namespace: shop}
spec:
  podSelector: {matchLabels: {app: b}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: a}}}]
    ports: [{protocol: TCP, port: 80}, {protocol: UDP, port: 80}]
"""


def pods_by_name(plan: LabPlan) -> dict[str, LabPod]:
    return {p.name: p for p in plan.pods}


def test_egress_isolated_pod_answers_the_flows_its_ingress_allows_and_opens_none(
    lab_name: str, write: Callable[[str, str], str]
) -> None:
    inventory = load_inventory([write("cluster.yaml", ANSWERS_ONLY)]).inventory
    plan = up(inventory, lab_name, [TCP80, UDP80]).state.plan
    ruleset = build_ruleset(lab_inventory(inventory, plan))
    pod = pods_by_name(plan)
    b, clients = pod["b-near"], (pod["a-near"], pod["a-far"])  # same node and cross node

    enforce(plan, ruleset)
    comparison = compare(plan, ruleset, [TCP80, UDP80])

    report = comparison.report
    assert comparison.mismatches == 0, "\n".join(disagreements(comparison))
    for port in (TCP80, UDP80):
        for a in clients:
            # The reply leaves b, whose egress allows nothing: it passes as an established flow.
            assert outcome(report, a, b, port) == ANSWERED, f"{a.name} -> b {port}"
            assert outcome(report, b, a, port) == TIMEOUT, f"b -> {a.name} {port}"
        assert outcome(report, pod["c-far"], b, port) == TIMEOUT

    # Control: without `ct state established,related accept` the same replies die in b's
    # egress chain, so the answers above came through conntrack, not through a hole.
    for netns, table in node_tables(plan, ruleset).items():
        forward = table.chains[0]
        assert forward.name == "forward" and forward.rules[0].statement == "ct state established,related accept"
        stateless = replace(table, chains=(replace(forward, rules=forward.rules[1:]), *table.chains[1:]))
        apply_script(stateless.replace_script(), netns)
    flush_conntrack(plan)
    stateless_report = probe(plan, [TCP80, UDP80])  # every timeout probed again for 2 s
    for port in (TCP80, UDP80):
        for a in clients:
            assert outcome(stateless_report, a, b, port) == TIMEOUT, f"{a.name} -> b {port} without conntrack"


def test_ingress_isolated_pod_is_reached_by_its_own_node_and_not_by_another(
    lab_name: str, write: Callable[[str, str], str]
) -> None:
    inventory = load_inventory([write("cluster.yaml", ANSWERS_ONLY)]).inventory
    plan = up(inventory, lab_name, [TCP80, UDP80]).state.plan
    b = pods_by_name(plan)["b-near"]
    own, other = plan.node("node-a").netns, plan.node("node-b").netns
    flows = [(node, port) for node in (own, other) for port in (TCP80, UDP80)]

    def reached() -> dict[tuple[str, FlowPort], Outcome]:
        with ThreadPoolExecutor(len(flows)) as pool:
            results = pool.map(lambda flow: probe_once(plan, flow[0], b, flow[1]), flows)
        return dict(zip(flows, results))

    # Control: before any policy both nodes reach b, so a block below is the policy's.
    assert set(reached().values()) == {Outcome.ANSWERED}

    enforce(plan, build_ruleset(lab_inventory(inventory, plan)))

    # The node's own traffic leaves through output, which netfence leaves alone (kubelet probes);
    # another node's is forwarded into b's ingress chain, which allows only app=a pods.
    assert reached() == {
        (own, TCP80): Outcome.ANSWERED,
        (own, UDP80): Outcome.ANSWERED,
        (other, TCP80): Outcome.TIMEOUT,
        (other, UDP80): Outcome.TIMEOUT,
    }


# --- 3. atomic re-apply under live traffic -----------------------------------------------------

#: target accepts TCP/UDP 80 and TCP 8080 from access=granted pods; clients may only send to
#: target and to granted pods. bystander is granted but never probed: its addresses are what
#: the membership updates change.
LIVE = """
apiVersion: v1
kind: Namespace
metadata: {name: live}
---
apiVersion: v1
kind: Pod
metadata: {name: target, namespace: live, labels: {app: target}}
spec: {nodeName: node-0, containers: [{name: c, image: nginx}]}
status: {phase: Running, podIP: 10.77.0.10}
---
apiVersion: v1
kind: Pod
metadata: {name: near-ok, namespace: live, labels: {app: client, access: granted}}
spec: {nodeName: node-0, containers: [{name: c, image: nginx}]}
status: {phase: Running, podIP: 10.77.0.11}
---
apiVersion: v1
kind: Pod
metadata: {name: near-no, namespace: live, labels: {app: client}}
spec: {nodeName: node-0, containers: [{name: c, image: nginx}]}
status: {phase: Running, podIP: 10.77.0.12}
---
apiVersion: v1
kind: Pod
metadata: {name: far-ok, namespace: live, labels: {app: client, access: granted}}
spec: {nodeName: node-1, containers: [{name: c, image: nginx}]}
status: {phase: Running, podIP: 10.77.1.11}
---
apiVersion: v1
kind: Pod
metadata: {name: far-no, namespace: live, labels: {app: client}}
spec: {nodeName: node-1, containers: [{name: c, image: nginx}]}
status: {phase: Running, podIP: 10.77.1.12}
---
apiVersion: v1
kind: Pod
metadata: {name: bystander, namespace: live, labels: {app: bystander, access: granted}}
spec: {nodeName: node-1, containers: [{name: c, image: nginx}]}
status: {phase: Running, podIP: 10.77.1.20}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: target-from-granted, namespace: live}
spec:
  podSelector: {matchLabels: {app: target}}
  ingress:
  - from: [{podSelector: {matchLabels: {access: granted}}}]
    ports: [{protocol: TCP, port: 80}, {protocol: UDP, port: 80}, {protocol: TCP, port: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: clients-to-target, namespace: live}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: target}}}, {podSelector: {matchLabels: {access: granted}}}]
"""
#: Next to bystander's own address, so the updates also merge and split set intervals.
EXTRA_ADDRESS = IPv4Address("10.77.1.21")
#: (source, destination, allowed, what decides): same node and cross node, each way of denying.
LIVE_FLOWS = [
    ("near-ok", "target", True, "same node"),
    ("far-ok", "target", True, "cross node"),
    ("near-no", "target", False, "same node, target's ingress"),
    ("far-no", "target", False, "cross node, target's ingress"),
    ("near-ok", "near-no", False, "same node, source's egress"),
    ("far-ok", "near-no", False, "cross node, source's egress"),
]
HELD_PORT = 8080
REPLACES, UPDATES = 200, 100
#: New attempts per second in each flow class.
RATE = 100.0
#: Below the first SYN retransmission (1 s): each attempt is exactly one SYN, so a SYN dropped
#: during a reload shows as a failure instead of being retried.
CONNECT_TIMEOUT = 0.5
#: Once connected the flow was allowed; the answer only has to arrive.
ANSWER_TIMEOUT = 2.0
#: A UDP request is one datagram, never resent.
UDP_TIMEOUT = 0.5
EXCHANGE_EVERY = 0.01


@dataclass(eq=False)
class FlowClass:
    """One (source, destination, protocol) under continuous new connections or requests."""

    source: LabPod
    destination: LabPod
    port: FlowPort
    allowed: bool
    why: str
    #: Results by the phase each attempt started in: "ok" (connected, or a reply, naming the
    #: destination), "blocked" (nothing came back in time), or whatever else happened.
    results: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    next_launch: float = 0.0

    @property
    def label(self) -> str:
        verdict = "allowed" if self.allowed else "denied"
        return f"{self.port.protocol} {verdict} {self.source.name} -> {self.destination.name} ({self.why})"

    def tried(self) -> int:
        return sum(sum(counts.values()) for counts in self.results.values())

    def failures(self) -> dict[str, dict[str, int]]:
        """Per phase, every result other than the one the flow's verdict demands."""
        expected = "ok" if self.allowed else "blocked"
        found = {phase: {r: n for r, n in counts.items() if r != expected} for phase, counts in self.results.items()}
        return {phase: wrong for phase, wrong in found.items() if wrong}

    def summary(self, phases: Sequence[str]) -> str:
        parts = []
        for phase in phases:
            counts = self.results.get(phase, Counter())
            other = {r: n for r, n in counts.items() if r not in ("ok", "blocked")}
            parts.append(
                f"{phase}: tried {sum(counts.values())} ok {counts['ok']} blocked {counts['blocked']}"
                + (f" other {other}" if other else "")
            )
        return f"{self.label}: " + "; ".join(parts)


@dataclass
class Phase:
    """What the reloading thread is doing now; each attempt is counted under the phase it began in."""

    name: str = "quiet"


@dataclass(eq=False)
class Attempt:
    flow: FlowClass
    phase: str
    sock: socket.socket
    deadline: float
    #: TCP: the handshake completed (for a denied flow, that alone is a leak).
    connected: bool = False
    received: bytes = b""


class Traffic:
    """New TCP connections and UDP requests from one source pod, continuously, at RATE per class.

    The thread moves to an empty netns, then into the source pod's (netns.isolated's rule), and
    drives non-blocking sockets with a selector. Events are handled before deadlines in every
    round, so a late wake-up of this thread cannot turn an answer into a timeout.
    """

    def __init__(self, source: LabPod, flows: Sequence[FlowClass], phase: Phase, stop: threading.Event) -> None:
        self.source, self.flows, self.phase, self.stop = source, flows, phase, stop
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"netfence-traffic-{source.name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def join(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            unshare_net()
            enter(self.source.netns)
            self._loop()
        except BaseException as exc:  # handed to join()
            self.error = exc

    def _loop(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.pending: dict[socket.socket, Attempt] = {}
        try:
            while not self.stop.is_set() or self.pending:
                now = time.monotonic()
                if not self.stop.is_set():
                    for flow in self.flows:
                        if now >= flow.next_launch:
                            flow.next_launch = now + 1 / RATE
                            self._launch(flow, now)
                wake = min([f.next_launch for f in self.flows] + [a.deadline for a in self.pending.values()])
                self._handle_events(max(0.0, min(wake - time.monotonic(), 0.01)))
                now = time.monotonic()
                if any(a.deadline <= now for a in self.pending.values()):
                    self._handle_events(0.0)  # a last look, so a late wake-up is not a timeout
                    for attempt in [a for a in self.pending.values() if a.deadline <= now]:
                        self._finish(attempt, "connected, no answer" if attempt.connected else "blocked")
        finally:
            for attempt in list(self.pending.values()):  # only after an error: lab sockets must not linger
                attempt.sock.close()
            self.selector.close()

    def _handle_events(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            attempt: Attempt = key.data
            was_connected = attempt.connected
            result = self._on_event(attempt)
            if result is not None:
                self._finish(attempt, result)
            elif attempt.connected and not was_connected:
                self.selector.modify(attempt.sock, selectors.EVENT_READ, attempt)

    def _launch(self, flow: FlowClass, now: float) -> None:
        phase = self.phase.name
        destination = (str(flow.destination.ip), flow.port.port or 0)
        if flow.port.protocol is Protocol.TCP:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            attempt = Attempt(flow, phase, sock, now + CONNECT_TIMEOUT)
            code = sock.connect_ex(destination)
            if code == 0:
                attempt.connected = True
                attempt.deadline = now + ANSWER_TIMEOUT
            elif code != errno.EINPROGRESS:
                flow.results[phase][errno.errorcode.get(code, str(code))] += 1
                sock.close()
                return
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            attempt = Attempt(flow, phase, sock, now + UDP_TIMEOUT)
            sock.connect(destination)
            sock.send(b"netfence-live\n")
        self.pending[sock] = attempt
        connecting = flow.port.protocol is Protocol.TCP and not attempt.connected
        self.selector.register(sock, selectors.EVENT_WRITE if connecting else selectors.EVENT_READ, attempt)

    def _on_event(self, attempt: Attempt) -> str | None:
        """The attempt's result when this event decides it, else None."""
        sock, flow = attempt.sock, attempt.flow
        if flow.port.protocol is Protocol.TCP and not attempt.connected:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code == errno.EINPROGRESS:
                return None
            if code != 0:
                return errno.errorcode.get(code, str(code))
            attempt.connected = True
            attempt.deadline = time.monotonic() + ANSWER_TIMEOUT
            return None
        try:
            data = sock.recv(2048)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            return errno.errorcode.get(exc.errno or 0, str(exc))
        want = answer(flow.destination.id)
        if flow.port.protocol is Protocol.UDP:
            return "ok" if data == want else "wrong answer"
        attempt.received += data
        if b"\n" in attempt.received or not data:
            return "ok" if attempt.received.split(b"\n", 1)[0] + b"\n" == want else "wrong answer"
        return None

    def _finish(self, attempt: Attempt, result: str) -> None:
        attempt.flow.results[attempt.phase][result] += 1
        del self.pending[attempt.sock]
        self.selector.unregister(attempt.sock)
        if attempt.flow.port.protocol is Protocol.TCP and attempt.connected:
            # Reset, not FIN: no TIME_WAIT piling up over thousands of connections.
            attempt.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        attempt.sock.close()


@dataclass
class Conversation:
    """Held connections exchanging a line every EXCHANGE_EVERY seconds until stopped."""

    held: Sequence[tuple[str, HeldConnection]]
    stop: threading.Event
    exchanges: int = 0
    longest_gap: float = 0.0
    broken: list[str] = field(default_factory=list)

    def run(self) -> None:
        last = {name: time.monotonic() for name, _ in self.held}
        while not self.stop.is_set():
            for name, conn in self.held:
                try:
                    conn.exchange(f"{name} {self.exchanges}\n".encode())
                except OSError as exc:
                    self.broken.append(f"{name}: {exc!r} after {self.exchanges} exchanges")
                    return
                now = time.monotonic()
                self.longest_gap = max(self.longest_gap, now - last[name])
                last[name] = now
                self.exchanges += 1
            self.stop.wait(EXCHANGE_EVERY)


def with_extra_address(inventory: Inventory, pod_id: str, address: IPv4Address) -> Inventory:
    pods = tuple(replace(p, ips=(*p.ips, address)) if p.id == pod_id else p for p in inventory.pods)
    return replace(inventory, pods=pods)


def test_replacing_and_updating_tables_under_live_traffic_never_lets_a_flow_through_or_breaks_one(
    lab_name: str, write: Callable[[str, str], str]
) -> None:
    inventory = load_inventory([write("cluster.yaml", LIVE)]).inventory
    plan = up(inventory, lab_name, [TCP80, UDP80]).state.plan
    pod = pods_by_name(plan)
    base = lab_inventory(inventory, plan)
    rulesets = [build_ruleset(base), build_ruleset(with_extra_address(base, pod["bystander"].id, EXTRA_ADDRESS))]
    tables = [node_tables(plan, ruleset) for ruleset in rulesets]
    flows = [
        FlowClass(pod[source], pod[destination], port, allowed, why)
        for port in (TCP80, UDP80)
        for source, destination, allowed, why in LIVE_FLOWS
    ]

    # The truth the traffic is judged by: the analyzer's, the same with and without the extra
    # address, and what the kernel does before any reload.
    for ruleset in rulesets:
        predicted = predict(plan, ruleset, [TCP80, UDP80])
        ids = [e.id for e in predicted.endpoints]
        for flow in flows:
            where = ([TCP80, UDP80].index(flow.port), ids.index(flow.source.id), ids.index(flow.destination.id))
            assert bool(predicted.allowed[where]) is flow.allowed, flow.label
    enforce(plan, rulesets[0])
    assert compare(plan, rulesets[0], [TCP80, UDP80]).mismatches == 0
    applied = dict(tables[0])

    def reload(new: dict[str, Table], update: bool) -> float:
        began = time.monotonic()
        results = list(pool.map(lambda n: apply_table(new[n], n, applied[n] if update else None), sorted(new)))
        assert results == ["update" if update else "replace"] * len(new)
        applied.update(new)
        return time.monotonic() - began

    phase, stop = Phase(), threading.Event()
    reloads: Counter[str] = Counter()
    slowest = 0.0
    with (
        hold_connection(plan, pod["near-ok"], pod["target"], HELD_PORT) as near,
        hold_connection(plan, pod["far-ok"], pod["target"], HELD_PORT) as far,
        ThreadPoolExecutor(len(plan.nodes)) as pool,
    ):
        conversation = Conversation([("near-ok -> target", near), ("far-ok -> target", far)], stop)
        talker = threading.Thread(target=conversation.run, name="netfence-held", daemon=True)
        sources = sorted({f.source.name for f in flows})
        traffic = [Traffic(pod[s], [f for f in flows if f.source.name == s], phase, stop) for s in sources]
        started = time.monotonic()
        try:
            talker.start()
            for generator in traffic:
                generator.start()
            time.sleep(0.2)
            phase.name = "replaces"  # the whole ruleset again, as one transaction per node
            for _ in range(REPLACES):
                slowest = max(slowest, reload(tables[0], update=False))
                reloads["replace"] += 1
            phase.name = "updates"  # bystander's extra address in and out: set elements only
            for k in range(UPDATES):
                slowest = max(slowest, reload(tables[1 - k % 2], update=True))
                reloads["update"] += 1
            phase.name = "quiet"
            time.sleep(0.2)
        finally:
            stop.set()
            for generator in traffic:
                generator.join()
            talker.join()
        seconds = time.monotonic() - started

    print(f"\nlive traffic for {seconds:.1f} s on {len(plan.nodes)} nodes: {reloads['replace']} full replaces,")
    print(f"then {reloads['update']} element updates, of every node's table; slowest reload {1000 * slowest:.0f} ms")
    for flow in flows:
        print(f"  {flow.summary(['replaces', 'updates', 'quiet'])}")
    print(
        f"  held TCP connections: {conversation.exchanges} exchanges,"
        f" longest gap {1000 * conversation.longest_gap:.1f} ms, broken: {conversation.broken or 'never'}"
    )
    assert reloads == {"replace": REPLACES, "update": UPDATES}
    assert all(flow.tried() >= 100 for flow in flows), "every class was exercised"
    assert {flow.label: flow.failures() for flow in flows if flow.failures()} == {}
    assert conversation.broken == []
    assert conversation.exchanges >= 100


#: One node, two pods: sink accepts UDP 9000 from granted pods, and sender is one.
FLOOD = """
apiVersion: v1
kind: Namespace
metadata: {name: flood}
---
apiVersion: v1
kind: Pod
metadata: {name: sender, namespace: flood, labels: {access: granted}}
spec: {nodeName: node-0, containers: [{name: c, image: nginx}]}
status: {phase: Running, podIP: 10.78.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: sink, namespace: flood, labels: {app: sink}}
spec: {nodeName: node-0, containers: [{name: c, image: nginx}]}
status: {phase: Running, podIP: 10.78.0.3}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: sink-from-granted, namespace: flood}
spec:
  podSelector: {matchLabels: {app: sink}}
  ingress:
  - from: [{podSelector: {matchLabels: {access: granted}}}]
    ports: [{protocol: UDP, port: 9000}]
"""
FLOOD_PORT = 9000
FLOOD_CHANGES = 100


def watch_table(source: LabPod, destination: LabPod) -> str:
    """A table of the test's own, never replaced, counting the flow as it enters the forward hook
    (priority -10, before netfence's table) and as it leaves it (+10, after)."""
    match = f"ip saddr {source.ip} ip daddr {destination.ip} udp dport {FLOOD_PORT}"
    lines = ["table inet netfence_watch {"]
    for name, priority in (("before", -10), ("after", 10)):
        lines.append(f"\tcounter {name} {{ }}")
        hook = f"type filter hook forward priority {priority}; policy accept;"
        lines.append(f'\tchain {name} {{ {hook} {match} counter name "{name}"; }}')
    return "\n".join([*lines, "}"]) + "\n"


def watched(netns: str) -> dict[str, int]:
    data = json.loads(run_nft(["-j", "list", "counters", "table", "inet", "netfence_watch"], netns))
    return {item["counter"]["name"]: item["counter"]["packets"] for item in data["nftables"] if "counter" in item}


def flood_during(plan: LabPlan, source: LabPod, destination: LabPod, action: Callable[[], None]) -> tuple[int, int]:
    """UDP datagrams from `source` to `destination` as fast as one thread sends them while
    `action` runs; (entered, passed) netfence's forward chain on `destination`'s node.

    Nothing answers the datagrams (the sink socket never replies), so conntrack keeps the flow
    `new` and every datagram is judged by the rules, not by `ct state established`."""
    netns = plan.node(destination.node).netns
    sink = socket_in(destination.netns, socket.SOCK_DGRAM)
    sender = socket_in(source.netns, socket.SOCK_DGRAM)
    stop = threading.Event()

    def send() -> None:
        while not stop.is_set():
            try:
                sender.sendto(b"x", (str(destination.ip), FLOOD_PORT))
            except OSError:  # ENOBUFS: the veth queue is full; the next one goes
                pass

    try:
        sink.bind(("0.0.0.0", FLOOD_PORT))
        before = watched(netns)
        thread = threading.Thread(target=send, name="netfence-flood", daemon=True)
        thread.start()
        try:
            action()
        finally:
            stop.set()
            thread.join()
        time.sleep(0.05)  # the last datagrams leave the hook
        after = watched(netns)
    finally:
        sender.close()
        sink.close()
    return after["before"] - before["before"], after["after"] - before["after"]


@pytest.mark.parametrize("change", ["replace", "update"])
def test_a_reload_drops_no_packet_that_the_old_and_the_new_table_both_allow(
    change: str, lab_name: str, write: Callable[[str, str], str]
) -> None:
    inventory = load_inventory([write("cluster.yaml", FLOOD)]).inventory
    plan = up(inventory, lab_name).state.plan
    pod = pods_by_name(plan)
    sender, sink = pod["sender"], pod["sink"]
    netns = plan.node(sink.node).netns
    base = lab_inventory(inventory, plan)
    # The sender's extra address changes the sink's peer set, not the sender's verdict.
    rulesets = [build_ruleset(base), build_ruleset(with_extra_address(base, sender.id, IPv4Address("10.78.0.1")))]
    tables = [node_tables(plan, ruleset)[netns] for ruleset in rulesets]
    enforce(plan, rulesets[0])
    apply_script(watch_table(sender, sink), netns)

    # Control: with no reload every datagram that enters netfence's chain leaves it.
    entered, passed = flood_during(plan, sender, sink, lambda: time.sleep(0.5))
    assert entered > 1000 and passed == entered

    def reload() -> None:
        applied = tables[0]
        for k in range(FLOOD_CHANGES):
            new = tables[(k + 1) % 2] if change == "update" else tables[0]
            assert apply_table(new, netns, applied if change == "update" else None) == change
            applied = new

    entered, passed = flood_during(plan, sender, sink, reload)
    dropped = f"{entered - passed} of {entered} datagrams both tables allow dropped in {FLOOD_CHANGES} {change}s"
    print(f"\nUDP flood: {dropped}")
    assert passed == entered, dropped
