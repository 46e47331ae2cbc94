"""The agent's loop: wait for changes, coalesce them, sync; check the kernel periodically.

    source (API informers or files) --change--> wait `interval` more (coalesce) --> snapshot
      --> build the node's table --> converge the kernel (see reconcile.py)
    every `verify_interval`: read the table back, repair a foreign edit, refresh counters

Failure behaviour:
- Invalid input (a snapshot that does not load) or a table the kernel refuses: the last good
  table stays in the kernel, the problem is logged and counted, /readyz fails until a later
  sync succeeds. A refused table is tried again at every check.
- The API server unreachable: the informers keep their caches and reconnect with backoff; the
  kernel keeps what it enforces and checks go on repairing it.
- Nothing is synced before every kind has been listed once: a partial cache (pods without
  their policies) would open what policies close.
- The agent stopping (a signal, a crash, kill -9) leaves the table in the kernel; only
  `--uninstall` deletes it.
- A local pod address that went away (pod deleted, IP changed, pod moved off the node): once
  the table without it is committed, its conntrack entries are deleted (conntrack.py). A flush
  that fails is logged and counted; the sync stands.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from netfence.agent.conntrack import Flushed, removed_addresses
from netfence.agent.metrics import Health, Metrics
from netfence.agent.reconcile import Change, Kernel, Reconciler
from netfence.agent.table import (
    Desired,
    FlowLogs,
    Interfaces,
    build_desired,
    build_host_desired,
    local_interfaces,
    summary,
)
from netfence.dataplane.apply import DataplaneError
from netfence.errors import InputErrors, NetfenceError
from netfence.model.endpoints import IPAddress
from netfence.model.inventory import Inventory
from netfence.sources.snapshot import Snapshot

log = logging.getLogger("netfence.agent")

#: A source unreachable for this long (seconds) makes /readyz fail; the kernel keeps enforcing.
STALE_AFTER = 120.0


class Source(Protocol):
    name: str

    def start(self, notify: Callable[[], None]) -> None: ...

    def stop(self) -> None: ...

    def synced(self) -> bool: ...

    def problems(self) -> list[str]: ...

    def outage(self) -> float:
        """Seconds the source has been unreachable (0: it is reachable)."""

    def snapshot(self) -> Snapshot: ...


class NodeKernel(Kernel, Protocol):
    """The kernel side of a node: its netfence table (reconcile.Kernel), its routes and links
    (kernel.NftKernel is the real one)."""

    def routes(self) -> dict[IPAddress, str]: ...

    def links(self) -> set[str]: ...

    def flush_conntrack(self, addresses: Sequence[IPAddress]) -> Flushed:
        """Delete the conntrack entries of `addresses`, reporting failures in what it returns."""


@dataclass(frozen=True)
class AgentConfig:
    """What one agent enforces: the pods of `node`, or, with `host`, the own firewall of that
    ExternalWorkload (its input and output hooks; no pod interfaces, so no fail-closed rules)."""

    node: str
    netns: str | None = None
    #: Changes arriving within this many seconds of the first are synced together.
    interval: float = 0.1
    #: Seconds between read-backs of the kernel's table (foreign edits are repaired within this).
    verify_interval: float = 5.0
    interfaces: Interfaces = field(default_factory=Interfaces)
    #: Drop traffic of interfaces with the pod prefix that no known pod owns.
    fail_closed: bool = True
    transform: Callable[[Inventory], Inventory] | None = None
    #: An ExternalWorkload's name: enforce its own firewall instead of a node's pods.
    host: str | None = None
    #: Flow logs and audited policies of a node's table.
    logs: FlowLogs | None = None

    @property
    def target(self) -> dict[str, str]:
        """What the agent enforces, for log lines."""
        return {"host": self.host} if self.host is not None else {"node": self.node}


def build_for(config: AgentConfig, snapshot: Snapshot, kernel: NodeKernel) -> Desired:
    """The table `config` asks for, from `snapshot` (a node's routes read when pods are named
    by route)."""
    if config.host is not None:
        return build_host_desired(snapshot, config.host, config.transform)
    routes = kernel.routes() if config.interfaces.naming == "route" else None
    return build_desired(
        snapshot, config.node, config.interfaces, config.fail_closed, config.transform, routes, config.logs
    )


class Agent:
    def __init__(self, config: AgentConfig, source: Source, kernel: NodeKernel, metrics: Metrics | None = None) -> None:
        self.config, self.source, self.kernel = config, source, kernel
        self.metrics = metrics or Metrics()
        self.reconciler = Reconciler(kernel, self.metrics.rule_counters)
        #: The last table that built and applied: what the kernel must hold.
        self.good: Desired | None = None
        self.stop = threading.Event()
        self._changed = threading.Event()
        self._lock = threading.Lock()
        self._heartbeat = time.monotonic()
        self._input_error: str | None = None
        self._apply_error: str | None = None
        self._in_sync = False
        #: A table the kernel refused: tried again at every check until a new one replaces it.
        self._refused: Desired | None = None
        self._unknown: list[str] = []
        self._counters_read = 0.0
        self.syncs = 0

    # --- health -----------------------------------------------------------------------------

    def health(self) -> Health:
        return Health(self._live, self._ready, self.read_counters)

    def read_counters(self) -> None:
        """Bring the rule counters up to date (on a scrape; at most once a second)."""
        if time.monotonic() - self._counters_read < 1.0 or self.good is None:
            return
        with self._lock:  # not while a replacement restarts them
            self._counters_read = time.monotonic()
            try:
                view = self.kernel.read()
            except DataplaneError:
                return
            if view is not None:
                self.metrics.rule_counters.absorb(view.counters)

    def _live(self) -> tuple[bool, str]:
        age = time.monotonic() - self._heartbeat
        limit = max(30.0, 3 * self.config.verify_interval)
        if age > limit:
            return False, f"the sync loop has not run for {age:.0f} s"
        return True, "ok"

    def _ready(self) -> tuple[bool, str]:
        reasons = []
        if not self.source.synced():
            reasons.append("waiting for the first list of every kind: " + "; ".join(self.source.problems()))
        elif self.good is None and self._input_error is None and self._apply_error is None:
            reasons.append("no table applied yet")
        if self._input_error:
            reasons.append(f"the input does not build, keeping the last good table: {self._input_error}")
        if self._apply_error:
            reasons.append(f"the kernel refused the table, keeping the last good one: {self._apply_error}")
        if self.good is not None and not self._in_sync and not self._apply_error:
            reasons.append("the kernel's table differs from the desired one")
        outage = self.source.outage()
        if outage > STALE_AFTER:
            reasons.append(f"source unreachable for {outage:.0f} s (enforcing the last known state): " + "; ".join(self.source.problems()))
        ok = not reasons
        self.metrics.ready.set(1 if ok else 0)
        return ok, "ready" if ok else "not ready: " + " | ".join(reasons)

    @property
    def ready(self) -> bool:
        return self._ready()[0]

    # --- the loop ---------------------------------------------------------------------------

    def notify(self) -> None:
        self._changed.set()

    def run(self) -> None:
        """Until `stop` is set. The table stays in the kernel afterwards."""
        self.source.start(self.notify)
        log.info("agent started", extra={"fields": {**self.config.target, "source": self.source.name,
                                                    "netns": self.config.netns or "(own)"}})  # fmt: skip
        next_check = time.monotonic() + self.config.verify_interval
        try:
            while not self.stop.is_set():
                self._heartbeat = time.monotonic()
                wait = max(0.0, next_check - time.monotonic())
                if self._changed.wait(timeout=min(wait, 1.0)) and not self.stop.is_set():
                    if not self.source.synced():
                        self.stop.wait(0.05)  # the change stays pending until every kind is listed
                        continue
                    self.stop.wait(self.config.interval)  # coalesce what arrives meanwhile
                    self._changed.clear()
                    self.sync()
                if time.monotonic() >= next_check and not self.stop.is_set():
                    self.check()
                    next_check = time.monotonic() + self.config.verify_interval
        finally:
            self.source.stop()
            log.info("agent stopped; the table stays in the kernel", extra={"fields": self.config.target})

    def build(self) -> Desired:
        return build_for(self.config, self.source.snapshot(), self.kernel)

    def sync(self) -> Change | None:
        """Build from the source's current snapshot and converge. None when it failed (the last
        good table stays)."""
        started = time.monotonic()
        with self._lock:
            try:
                desired = self.build()
            except InputErrors as exc:
                self._invalid(started, [str(p) for p in exc.problems] or [str(exc)])
                return None
            except (NetfenceError, ValueError) as exc:
                self._invalid(started, [str(exc)])
                return None
            except Exception as exc:  # a bug: keep enforcing (and checking) the last good table
                log.exception("internal error while building the table; keeping the last good table")
                self.metrics.internal_errors.inc()
                self._invalid(started, [f"internal error: {type(exc).__name__}: {exc}"], count=False)
                return None
            for warning in desired.warnings:
                log.info("input note", extra={"fields": {"note": warning}})
            self._input_error = None
            self._refused = None
            return self._converge(desired, started)

    def _invalid(self, started: float, problems: list[str], count: bool = True) -> None:
        self._input_error = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}; first: {problems[0]}"
        if count:
            self.metrics.input_errors.inc()
        self.metrics.syncs.labels("error").inc()
        self.metrics.sync_seconds.labels("error").observe(time.monotonic() - started)
        for problem in problems[:20]:
            log.error("invalid input; keeping the last good table", extra={"fields": {"problem": problem}})
        if len(problems) > 20:
            log.error("more problems", extra={"fields": {"count": len(problems) - 20}})
        self._ready()

    def _converge(self, desired: Desired, started: float) -> Change | None:
        try:
            change = self.reconciler.converge(desired.table)
        except Exception as exc:  # DataplaneError; anything else is a bug, handled the same way
            if not isinstance(exc, DataplaneError):
                log.exception("internal error while applying the table")
                self.metrics.internal_errors.inc()
            self._apply_error = str(exc)
            self._refused = desired
            self._in_sync = False
            self.metrics.apply_errors.inc()
            self.metrics.syncs.labels("error").inc()
            self.metrics.sync_seconds.labels("error").observe(time.monotonic() - started)
            log.error("apply failed; the kernel keeps the last good table", extra={"fields": {"error": str(exc)}})
            self._ready()
            return None
        self._apply_error = None
        self._refused = None
        self._in_sync = True
        previous, self.good = self.good, desired
        self.syncs += 1
        seconds = time.monotonic() - started
        self.metrics.syncs.labels(change.result).inc()
        self.metrics.sync_seconds.labels(change.result).observe(seconds)
        self.metrics.last_sync.set_to_current_time()
        self.metrics.rule_counters.name_rules(desired.ruleset)
        self.metrics.local_endpoints.set(len(desired.local))
        for key, value in summary(desired.table).items():
            self.metrics.table.labels(key).set(value)
        fields: dict[str, object] = {"result": change.result, "ms": round(seconds * 1000, 1), "local_pods": len(desired.local)}
        if change.difference is not None and change.result != "unchanged":
            fields["difference"] = change.difference.describe()
        log.info("synced", extra={"fields": fields})
        if previous is not None and self.config.host is None:
            self._flush(removed_addresses(previous.local, desired.local))
        self._ready()
        return change

    def _flush(self, addresses: Sequence[IPAddress]) -> None:
        """Delete the conntrack entries of local pod addresses that went away (the new table is
        committed). A failure is logged and counted, never a failed sync."""
        if not addresses:
            return
        try:
            flushed = self.kernel.flush_conntrack(addresses)
        except Exception as exc:  # a bug: the table is committed all the same
            log.exception("internal error while deleting conntrack entries")
            flushed = Flushed(0, (f"internal error: {type(exc).__name__}: {exc}",))
        self.metrics.conntrack_flushed.inc(flushed.entries)
        shown = ", ".join(str(a) for a in addresses[:5]) + (f" and {len(addresses) - 5} more" if len(addresses) > 5 else "")
        fields: dict[str, object] = {"addresses": shown, "entries": flushed.entries}
        if flushed.errors:
            self.metrics.conntrack_errors.inc(len(flushed.errors))
            fields.update(failed=len(flushed.errors), error=flushed.errors[0])
            log.error("could not delete the conntrack entries of removed pod addresses; established flows "
                      "of the old pods may pass until their entries expire", extra={"fields": fields})  # fmt: skip
        else:
            log.info("conntrack entries of removed pod addresses deleted", extra={"fields": fields})

    def check(self) -> None:
        """Read the table back; repair what someone else changed; retry a refused table."""
        with self._lock:
            self._heartbeat = time.monotonic()
            started = time.monotonic()
            if self._refused is not None:
                self._converge(self._refused, started)
                return
            if self.good is None:
                return
            if self.config.interfaces.naming == "route":
                try:
                    fresh = self.build()
                except Exception:  # reported by the next sync of the same input
                    fresh = None
                if fresh is not None and fresh.interfaces != self.good.interfaces:
                    log.info("pod interfaces changed", extra={"fields": {"known": len(fresh.interfaces)}})
                    self._converge(fresh, started)
                    return
            was_in_sync = self._in_sync
            try:
                check = self.reconciler.verify(self.good.table)
            except Exception as exc:  # DataplaneError; anything else is a bug, handled the same way
                if not isinstance(exc, DataplaneError):
                    log.exception("internal error while checking the table")
                    self.metrics.internal_errors.inc()
                self._apply_error = str(exc)
                self._in_sync = False
                self.metrics.apply_errors.inc()
                log.error("check failed; the kernel keeps what it has", extra={"fields": {"error": str(exc)}})
                self._ready()
                return
            if check.repair is not None:
                fields = {"difference": check.describe, "result": check.repair.result}
                if was_in_sync:
                    self.metrics.repairs.inc()
                    log.warning("the table was changed by someone else; repaired", extra={"fields": fields})
                else:
                    log.info("kernel table brought in line", extra={"fields": fields})
            self._apply_error = None
            self._in_sync = True
            self._count_unknown()
            self._ready()

    def _count_unknown(self) -> None:
        if not self.config.fail_closed or self.config.host is not None or self.good is None:
            return
        try:
            links = self.kernel.links()
        except (DataplaneError, ValueError):
            return
        known = set(local_interfaces(self.good.table))
        prefix = self.config.interfaces.prefix
        unknown = sorted(name for name in links if name.startswith(prefix) and name not in known)
        self.metrics.unknown_interfaces.set(len(unknown))
        if unknown != self._unknown and unknown:
            log.info("interfaces of no known pod (dropped)", extra={"fields": {"count": len(unknown), "first": unknown[0]}})
        self._unknown = unknown
