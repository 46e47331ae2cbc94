"""Prometheus metrics, and the HTTP endpoints /metrics, /healthz and /readyz.

Per-policy packet and byte counters come from the nft rule counters (every rule counts, and its
comment names the policy, direction and rule). The kernel restarts a rule's counters when the
table's rules are replaced, so the agent reads them before every replacement and keeps running
totals: the exported counters only grow.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from netfence.dataplane.nft.objects import comment
from netfence.ir.types import Ruleset

_SYNC_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True, order=True)
class _PolicyLabels:
    kind: str
    namespace: str
    policy: str
    direction: str


class RuleCounters(Collector):
    """Running packet and byte totals per nft rule comment, exported per policy (rules whose
    comment is a rule reference) and per built-in rule (end of a tier, unknown interfaces)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, tuple[int, int]] = {}
        self._totals: dict[str, tuple[int, int]] = {}
        self._policies: dict[str, _PolicyLabels] = {}

    def describe(self) -> list[Metric]:
        return []

    def name_rules(self, ruleset: Ruleset) -> None:
        """Learn which policy each rule comment belongs to."""
        found = {}
        for tiers in (ruleset.ingress, ruleset.egress):
            for tier in tiers:
                for policy in tier.policies:
                    for rule in policy.rules:
                        labels = _PolicyLabels(
                            str(policy.ref.kind), policy.ref.namespace or "", policy.ref.name, str(rule.ref.direction)
                        )
                        found[comment(str(rule.ref))[len('comment "') : -1]] = labels
        with self._lock:
            self._policies = found

    def absorb(self, counters: Mapping[str, tuple[int, int]]) -> None:
        with self._lock:
            for key, (packets, octets) in counters.items():
                last_packets, last_octets = self._last.get(key, (0, 0))
                if packets < last_packets or octets < last_octets:  # the rules were replaced meanwhile
                    last_packets, last_octets = 0, 0
                total_packets, total_octets = self._totals.get(key, (0, 0))
                self._totals[key] = (total_packets + packets - last_packets, total_octets + octets - last_octets)
            self._last = dict(counters)

    def restarted(self) -> None:
        with self._lock:
            self._last = {}

    def totals(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            return dict(self._totals)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            totals, policies = dict(self._totals), dict(self._policies)
        labels = ["kind", "namespace", "policy", "direction"]
        packets = CounterMetricFamily("netfence_policy_packets", "Packets matched by a policy's rules (nft counters)", labels=labels)
        octets = CounterMetricFamily("netfence_policy_bytes", "Bytes matched by a policy's rules (nft counters)", labels=labels)
        builtin_packets = CounterMetricFamily(
            "netfence_builtin_rule_packets", "Packets matched by netfence's own rules (ends of tiers, unknown interfaces)", labels=["rule"]
        )
        builtin_octets = CounterMetricFamily(
            "netfence_builtin_rule_bytes", "Bytes matched by netfence's own rules", labels=["rule"]
        )
        per_policy: dict[_PolicyLabels, tuple[int, int]] = {}
        for key, (p, b) in sorted(totals.items()):
            owner = policies.get(key)
            if owner is None:
                builtin_packets.add_metric([key], p)
                builtin_octets.add_metric([key], b)
            else:
                before = per_policy.get(owner, (0, 0))
                per_policy[owner] = (before[0] + p, before[1] + b)
        for owner, (p, b) in sorted(per_policy.items()):
            values = [owner.kind, owner.namespace, owner.policy, owner.direction]
            packets.add_metric(values, p)
            octets.add_metric(values, b)
        yield from (packets, octets, builtin_packets, builtin_octets)


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.sync_seconds = Histogram(
            "netfence_sync_duration_seconds",
            "Time to build the node's table and bring the kernel in line, by result",
            ["result"],
            buckets=_SYNC_BUCKETS,
            registry=registry,
        )
        self.syncs = Counter("netfence_syncs", "Syncs by result (unchanged, update, replace, create, error)", ["result"], registry=registry)
        self.apply_errors = Counter("netfence_apply_errors", "Tables the kernel refused (the last good one stayed)", registry=registry)
        self.input_errors = Counter("netfence_input_errors", "Snapshots of the input that did not load (the last good table stayed)", registry=registry)
        self.internal_errors = Counter(
            "netfence_internal_errors", "Syncs that failed on a netfence bug (logged with its traceback; the last good table stayed)", registry=registry
        )
        self.repairs = Counter("netfence_repairs", "Foreign changes to the table found and undone", registry=registry)
        self.conntrack_flushed = Counter(
            "netfence_conntrack_flushed_entries",
            "Conntrack entries deleted because the local pod address they name went away",
            registry=registry,
        )
        self.conntrack_errors = Counter(
            "netfence_conntrack_flush_errors",
            "conntrack runs that failed to delete the entries of a removed local pod address (the sync stands)",
            registry=registry,
        )
        self.reconnects = Counter(
            "netfence_watch_reconnects", "Watches started again, by kind and reason (closed, error, gone, absent)", ["kind", "reason"], registry=registry
        )
        self.table = Gauge("netfence_table_objects", "Objects of the applied table (chains, rules, sets, set_elements, map_elements)", ["object"], registry=registry)
        self.local_endpoints = Gauge("netfence_local_endpoints", "Pods on this node the table covers", registry=registry)
        self.unknown_interfaces = Gauge("netfence_unknown_interfaces", "Interfaces with the pod prefix that no known pod owns (dropped)", registry=registry)
        self.ready = Gauge("netfence_ready", "1 when the last sync succeeded and the kernel matches it", registry=registry)
        self.last_sync = Gauge("netfence_last_sync_timestamp_seconds", "When the kernel last matched the desired table", registry=registry)
        self.rule_counters = RuleCounters()
        registry.register(self.rule_counters)

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class Health:
    """What /healthz and /readyz answer: callables returning (ok, text); `scrape` runs before
    /metrics is rendered (the agent reads the kernel's counters then)."""

    live: Callable[[], tuple[bool, str]]
    ready: Callable[[], tuple[bool, str]]
    scrape: Callable[[], None] = lambda: None


def serve(address: str, metrics: Metrics, health: Health) -> ThreadingHTTPServer:
    """Serve the endpoints on `address` (HOST:PORT) in a daemon thread; return the server."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

        def do_GET(self) -> None:  # noqa: N802 - the base class's name
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                health.scrape()
                health.ready()  # refreshes netfence_ready
                self._send(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/readyz"):
                ok, text = (health.live if path == "/healthz" else health.ready)()
                self._send(200 if ok else 503, (text + "\n").encode(), "text/plain; charset=utf-8")
            else:
                self._send(404, b"not found: try /metrics, /healthz, /readyz\n", "text/plain; charset=utf-8")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="netfence-metrics", daemon=True).start()
    return server
