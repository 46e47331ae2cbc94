"""The agent's loop against the in-process API server (through the real kubernetes client) and a
modelled kernel: what it syncs, what it keeps when the input is bad or the kernel refuses, how it
coalesces, and what /metrics, /healthz and /readyz say."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_apiserver import FakeApiServer
from fake_kernel import FakeKernel
from kube_objects import FAST, namespace, netpol, pod, wait_until

from netfence.agent import logs
from netfence.agent import run as run_module
from netfence.agent.files import FileSource
from netfence.agent.metrics import Metrics, RuleCounters, serve
from netfence.agent.run import Agent, AgentConfig
from netfence.agent.table import Interfaces
from netfence.sources.kube_api import KubeSource, resources

NODE = "node-a"
BASE = (
    namespace("dev"),
    pod("dev/web", "10.0.0.1", app="web"),
    pod("dev/client", "10.0.0.2", node="node-b", app="client"),
    netpol("dev/allow-client", {"app": "web"}, {"app": "client"}),
)


class Running:
    def __init__(self, agent: Agent, kernel: FakeKernel, thread: threading.Thread) -> None:
        self.agent, self.kernel, self.thread = agent, kernel, thread

    def results(self) -> list[str]:
        return [kind for kind, _ in self.kernel.applied]

    def metric(self, name: str, labels: str = "") -> float:
        text = self.agent.metrics.render().decode()
        for line in text.splitlines():
            if line.startswith(f"{name}{labels} ") or (not labels and line.startswith(f"{name} ")):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest.fixture
def start(configuration: Any) -> Iterator[Callable[..., Running]]:
    running: list[Running] = []

    def make(source: Any = None, kernel: FakeKernel | None = None, **config: Any) -> Running:
        kernel = kernel or FakeKernel()
        if source is None:
            source = KubeSource(configuration, resources("crd"), FAST)
        settings = {"interval": 0.02, "verify_interval": 0.2, "interfaces": Interfaces("nf"), **config}
        agent = Agent(AgentConfig(NODE, **settings), source, kernel)  # type: ignore[arg-type]
        thread = threading.Thread(target=agent.run, daemon=True)
        thread.start()
        found = Running(agent, kernel, thread)
        running.append(found)
        return found

    yield make
    for item in running:
        item.agent.stop.set()
        item.thread.join(10)


def test_the_agent_follows_pod_churn_with_element_updates_and_policy_edits_with_replacements(
    apiserver: FakeApiServer, start: Callable[..., Running]
) -> None:
    for obj in BASE:
        apiserver.create(obj)
    run = start()
    wait_until(lambda: run.results() == ["create"] and run.agent.ready, what="the first sync")
    apiserver.create(pod("dev/client2", "10.0.0.3", node="node-b", app="client"))
    wait_until(lambda: run.results() == ["create", "update"], what="the pod's element update")
    apiserver.update(netpol("dev/allow-client", {"app": "web"}, {"app": "client"}, port=8080))
    wait_until(lambda: run.results() == ["create", "update", "replace"], what="the policy's replacement")
    apiserver.delete("v1", "Pod", "client2", "dev")
    wait_until(lambda: run.results()[-1] == "update" and len(run.results()) == 4, what="the removal")
    assert run.agent.ready
    assert run.metric("netfence_syncs_total", '{result="update"}') == 2
    assert run.metric("netfence_local_endpoints") == 1


def test_invalid_input_keeps_the_last_good_table_and_fails_readiness_until_fixed(
    apiserver: FakeApiServer, start: Callable[..., Running]
) -> None:
    for obj in BASE:
        apiserver.create(obj)
    run = start()
    wait_until(lambda: run.agent.ready, what="ready")
    applied = list(run.kernel.applied)
    apiserver.update(netpol("dev/allow-client", {"app": "web"}, {"app": "client"}, port=70000))
    wait_until(lambda: not run.agent.ready, what="not ready")
    assert run.kernel.applied == applied
    ok, text = run.agent.health().ready()
    assert not ok and "the input does not build, keeping the last good table" in text and "70000" in text
    assert run.metric("netfence_input_errors_total") == 1
    apiserver.update(netpol("dev/allow-client", {"app": "web"}, {"app": "client"}, port=8080))
    wait_until(lambda: run.agent.ready, what="ready again")
    assert run.results()[-1] == "replace"


def test_a_refused_table_keeps_the_last_good_one_and_is_retried_at_every_check(
    apiserver: FakeApiServer, start: Callable[..., Running]
) -> None:
    for obj in BASE:
        apiserver.create(obj)
    run = start()
    wait_until(lambda: run.agent.ready, what="ready")
    good = run.kernel.view
    run.kernel.refuse = "Error: No such file or directory"
    apiserver.create(pod("dev/web2", "10.0.0.4", app="web"))
    wait_until(lambda: not run.agent.ready, what="the refusal")
    assert run.kernel.view is good
    assert "the kernel refused the table" in run.agent.health().ready()[1]
    assert run.metric("netfence_apply_errors_total") >= 1
    run.kernel.refuse = None
    wait_until(lambda: run.agent.ready, what="the retry at a check")
    assert run.kernel.view is not good


class Exploding(FileSource):
    """A source whose snapshots hit a bug on demand."""

    explode = False

    def snapshot(self) -> Any:
        if self.explode:
            raise RuntimeError("a bug")
        return super().snapshot()


def test_a_bug_while_building_keeps_the_last_good_table_and_the_agent_running(
    tmp_path: Path, start: Callable[..., Running]
) -> None:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump_all(BASE))
    source = Exploding([str(tmp_path)], interval=0.02)
    run = start(source)
    wait_until(lambda: run.agent.ready, what="ready")
    source.explode = True
    (tmp_path / "more.yaml").write_text(yaml.safe_dump(pod("dev/web2", "10.0.0.4", app="web")))
    wait_until(lambda: not run.agent.ready, what="the failed sync")
    assert "internal error: RuntimeError: a bug" in run.agent.health().ready()[1]
    assert run.metric("netfence_internal_errors_total") == 1 and run.thread.is_alive()
    run.kernel.add_rule("forward", json.dumps(["accept", None]))
    wait_until(lambda: run.metric("netfence_repairs_total") == 1, what="checks going on")
    source.explode = False
    (tmp_path / "more.yaml").write_text(yaml.safe_dump(pod("dev/web3", "10.0.0.5", app="web")))
    wait_until(lambda: run.agent.ready, what="ready again")


def test_a_foreign_edit_is_repaired_at_the_next_check(apiserver: FakeApiServer, start: Callable[..., Running]) -> None:
    for obj in BASE:
        apiserver.create(obj)
    run = start()
    wait_until(lambda: run.agent.ready, what="ready")
    run.kernel.add_rule("forward", json.dumps(["accept", None]))
    wait_until(lambda: run.metric("netfence_repairs_total") == 1, what="the repair")
    assert run.results()[-1] == "replace" and run.agent.ready


def test_nothing_is_synced_before_every_kind_is_listed(configuration: Any, start: Callable[..., Running]) -> None:
    server = FakeApiServer()
    configuration.host = server.start()
    for obj in BASE:
        server.create(obj)
    server.fail_next(503, 200)  # the API server comes up slowly
    try:
        run = start(KubeSource(configuration, resources("crd"), FAST))
        time.sleep(0.3)
        assert run.kernel.applied == [] and not run.agent.ready
        assert "waiting for the first list of every kind" in run.agent.health().ready()[1]
        wait_until(lambda: run.results() == ["create"], timeout=20, what="the sync once everything is listed")
        # Exactly one table: the one built with the policy (a partial cache would have had none).
        assert run.agent.good is not None and run.agent.good.table.maps[0].elements
    finally:
        run.agent.stop.set()
        server.stop()


def test_losing_the_api_server_keeps_enforcing_and_checking(
    apiserver: FakeApiServer, start: Callable[..., Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_module, "STALE_AFTER", 0.5)
    for obj in BASE:
        apiserver.create(obj)
    run = start()
    wait_until(lambda: run.agent.ready, what="ready")
    apiserver.stop()
    run.kernel.add_rule("forward", json.dumps(["accept", None]))
    wait_until(lambda: run.metric("netfence_repairs_total") == 1, what="a repair without the API")
    assert run.kernel.view is not None and run.results() == ["create", "replace"]
    wait_until(lambda: not run.agent.ready, what="readiness to notice the outage")
    assert "enforcing the last known state" in run.agent.health().ready()[1]
    assert run.agent.health().live()[0]  # restarting the agent would not bring the API back


def test_changes_arriving_together_are_synced_together(tmp_path: Path, start: Callable[..., Running]) -> None:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump_all(BASE))
    run = start(FileSource([str(tmp_path)], interval=0.05), interval=0.3, verify_interval=30)
    wait_until(lambda: run.results() == ["create"], what="the first sync")
    syncs = run.agent.syncs
    for i in range(10):  # one pod after another, faster than the interval
        (tmp_path / f"pod{i}.yaml").write_text(yaml.safe_dump(pod(f"dev/c{i}", f"10.0.1.{i + 1}", node="node-b", app="client")))
        time.sleep(0.01)
    wait_until(lambda: len(run.results()) >= 2, what="a sync")
    time.sleep(0.5)
    assert run.agent.syncs - syncs <= 2
    assert run.agent.good is not None
    assert any("10.0.1.1-10.0.1.10" in s.elements for s in run.agent.good.table.sets)


def test_the_file_source_sees_new_changed_and_removed_files(tmp_path: Path) -> None:
    source = FileSource([str(tmp_path)], interval=0.02)
    changes = threading.Event()
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(namespace("a")))
    source.start(changes.set)
    try:
        for act in (
            lambda: (tmp_path / "b.yaml").write_text(yaml.safe_dump(namespace("b"))),
            lambda: (tmp_path / "a.yaml").write_text(yaml.safe_dump(namespace("a", team="x"))),
            lambda: (tmp_path / "b.yaml").unlink(),
        ):
            changes.clear()
            act()
            assert changes.wait(5)
        assert [d.label for d in source.snapshot().documents] == ["Namespace a"]
    finally:
        source.stop()


def test_metrics_health_and_readiness_over_http(apiserver: FakeApiServer, start: Callable[..., Running]) -> None:
    for obj in BASE:
        apiserver.create(obj)
    apiserver.fail_next(503, 40)
    run = start()
    server = serve("127.0.0.1:0", run.agent.metrics, run.agent.health())
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert get(base + "/healthz") == (200, "ok\n")
        code, text = get(base + "/readyz")
        assert code == 503 and text.startswith("not ready: waiting for the first list")
        wait_until(lambda: get(base + "/readyz")[0] == 200, what="ready")
        code, text = get(base + "/metrics")
        for name in (
            'netfence_sync_duration_seconds_bucket{le="0.1",result="create"}',
            "netfence_apply_errors_total 0.0",
            'netfence_table_objects{object="rules"}',
            'netfence_table_objects{object="set_elements"}',
            "netfence_ready 1.0",
            'netfence_watch_reconnects_total',
        ):
            assert name in text or name.startswith("netfence_watch"), name
        assert get(base + "/nothing")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_policy_counters_only_grow_across_replacements() -> None:
    counters = RuleCounters()
    note = "NetworkPolicy dev/allow ingress[0]"
    counters.absorb({note: (10, 1000), "default: isolated, no rule allowed": (3, 180)})
    counters.absorb({note: (15, 1500)})
    counters.restarted()  # the rules were replaced: the kernel counts from zero again
    counters.absorb({note: (2, 200)})
    counters.absorb({note: (1, 100)})  # replaced again by someone else, unseen
    assert counters.totals()[note] == (18, 1800)
    metrics = Metrics()
    metrics.rule_counters.absorb({note: (4, 400), "default: isolated, no rule allowed": (3, 180)})
    text = metrics.render().decode()
    assert 'netfence_builtin_rule_packets_total{rule="default: isolated, no rule allowed"} 3.0' in text


def test_json_logs_are_one_object_a_line() -> None:
    stream = StringIO()
    handler = logs.configure("json", stream=stream)
    try:
        logging.getLogger("netfence.agent").info("synced", extra={"fields": {"result": "update", "ms": 1.5}})
    finally:
        logging.getLogger().removeHandler(handler)
    record = json.loads(stream.getvalue())
    assert record["msg"] == "synced" and record["result"] == "update" and record["ms"] == 1.5 and record["level"] == "info"
