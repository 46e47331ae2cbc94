"""The agent against an API server that misbehaves, through the real kubernetes client (the fault
matrix of the agent's source; the kernel side is tests/robustness/test_agent_faults.py).

Every fault is injected on every kind at once (lists, watches, or both), lasts a while during
which the cluster changes, and then ends. While it lasts: the kernel keeps the last good table
(nothing is applied), /readyz fails once the source has been unreachable for STALE_AFTER (except
when only watches answer 410: lists still work, so the agent follows the cluster by relisting),
the informers do not spin (requests and CPU stay bounded) and no thread dies. Once it ends, the
agent reaches the new desired state by itself and its watches deliver events again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fake_apiserver import FakeApiServer
from fake_kernel import FakeKernel
from kube_objects import namespace, netpol, pod, wait_until
from kubernetes import client

from netfence.agent import run as run_module
from netfence.agent.run import Agent, AgentConfig
from netfence.agent.table import Interfaces
from netfence.sources.kube_api import KubeSource, resources
from netfence.sources.kube_watch import WatchSettings

NODE = "node-a"
BASE = (
    namespace("dev"),
    pod("dev/web", "10.0.0.1", app="web"),
    pod("dev/client", "10.0.0.2", node="node-b", app="client"),
    netpol("dev/allow-client", {"app": "web"}, {"app": "client"}),
)
#: Short timeouts, so a server that says nothing costs a fraction of a second.
SHORT = WatchSettings(page=500, timeout=(30, 30), connect_timeout=1.0, read_timeout=0.4, list_timeout=0.4,
                      backoff_base=0.02, backoff_cap=0.2, absent_retry=0.5)  # fmt: skip
#: How long each fault lasts (seconds).
WINDOW = 0.6

#: name -> FakeApiServer.inject arguments.
FAULTS: dict[str, dict[str, Any]] = {
    "410 on every list and watch": {"kind": "gone"},
    "410 error event on every watch": {"kind": "gone", "watch": True},
    "410 status on every watch": {"kind": "status", "status": 410, "watch": True},
    "500 on every request": {"kind": "status", "status": 500},
    "no answer to lists": {"kind": "hang", "watch": False},
    "no answer to watches": {"kind": "hang", "watch": True},
    "list page stalled halfway": {"kind": "stall", "watch": False},
    "watch chunk stalled halfway": {"kind": "stall", "watch": True},
    "list page cut halfway": {"kind": "drop", "watch": False},
    "watch chunk cut halfway": {"kind": "drop", "watch": True},
    "list body not JSON": {"kind": "garbage", "watch": False},
    "watch line not JSON": {"kind": "garbage", "watch": True},
    "list of the wrong shape": {"kind": "shape", "watch": False},
    "watch event of the wrong shape": {"kind": "shape", "watch": True},
}
#: Faults under which the agent still learns the cluster's state (every list succeeds).
STILL_LISTING = {"410 error event on every watch", "410 status on every watch"}


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    found = FakeApiServer(bookmark_interval=0.1)  # healthy watches are never silent for read_timeout
    found.start()
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture
def agent(server: FakeApiServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], tuple[Agent, FakeKernel, KubeSource]]]:
    monkeypatch.setattr(run_module, "STALE_AFTER", 0.3)
    started: list[tuple[Agent, threading.Thread]] = []

    def make() -> tuple[Agent, FakeKernel, KubeSource]:
        settings = client.Configuration()
        settings.host = server.url
        source = KubeSource(settings, resources("crd"), SHORT)
        kernel = FakeKernel()
        found = Agent(AgentConfig(NODE, interval=0.02, verify_interval=0.2, interfaces=Interfaces("nf")), source, kernel)  # type: ignore[arg-type]
        thread = threading.Thread(target=found.run, daemon=True)
        thread.start()
        started.append((found, thread))
        return found, kernel, source

    yield make
    for found, thread in started:
        found.stop.set()
        thread.join(10)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_an_api_server_fault_keeps_the_last_good_table_and_the_agent_recovers_by_itself(
    server: FakeApiServer, agent: Callable[[], tuple[Agent, FakeKernel, KubeSource]], fault: str
) -> None:
    for obj in BASE:
        server.create(obj)
    run, kernel, source = agent()
    wait_until(lambda: [k for k, _ in kernel.applied] == ["create"] and run.ready, what="the first sync")
    good, applied = kernel.view, list(kernel.applied)
    server.wait_for_watches(len(source.informers))  # none still connecting from before the fault

    injected = server.inject(**FAULTS[fault])
    server.expire()  # every watch that resumes gets 410: lists are asked for again too
    server.drop_watches()
    server.update(netpol("dev/allow-client", {"app": "web"}, {"app": "client"}, port=8080))  # a replacement
    requests, cpu = len(server.requests), time.process_time()
    time.sleep(WINDOW)
    requests, cpu = len(server.requests) - requests, time.process_time() - cpu

    assert injected.hits >= 1
    if FAULTS[fault]["kind"] in ("hang", "stall"):
        # The client gives up (its read timeout) and asks again while the server still holds the
        # first connection open: no request waits for good.
        wait_until(lambda: injected.hits >= 2 * len(source.informers), timeout=5, what="requests timing out and made again")
    # Bounded retries: backoff (cap 0.2 s, so at most ~10 retries a second once it has grown)
    # rather than a loop (a server answering 410 to every watch drew ~1,300 requests a second
    # for one kind before); ~2 requests per retry per kind.
    assert requests / len(source.informers) < 40 * WINDOW + 10, (requests, fault)
    assert cpu < 0.5 * WINDOW, (cpu, fault)
    assert all(i._thread is not None and i._thread.is_alive() for i in source.informers)
    if fault in STILL_LISTING:
        wait_until(lambda: [k for k, _ in kernel.applied][-1:] == ["replace"], what="the change, learnt by relisting")
    else:
        assert kernel.applied == applied and kernel.view is good  # the last good table, untouched
        wait_until(lambda: not run.ready, timeout=5, what="readiness to notice the outage")
        text = run.health().ready()[1]
        assert "source unreachable" in text and "Pod (v1): " in text, text  # with each kind's last error
    assert run.health().live()[0]

    server.clear_faults()
    wait_until(lambda: [k for k, _ in kernel.applied][-1:] == ["replace"] and run.ready, timeout=10, what="recovery")
    assert kernel.view is not None and kernel.view.rules != good.rules  # type: ignore[union-attr]
    server.create(pod("dev/web2", "10.0.0.3", app="web"))  # and the watches deliver events again
    wait_until(lambda: [k for k, _ in kernel.applied][-1:] == ["update"], what="a pod's element update after recovery")
    assert run.ready


def test_410_on_every_request_backs_off_exponentially_and_relists_at_once_after_a_working_watch(
    server: FakeApiServer, agent: Callable[[], tuple[Agent, FakeKernel, KubeSource]]
) -> None:
    for obj in BASE:
        server.create(obj)
    run, kernel, source = agent()
    wait_until(lambda: run.ready, what="ready")
    informer = next(i for i in source.informers if i.resource.kind == "Pod")
    server.inject("gone", path="/api/v1/pods")
    server.drop_watches()
    time.sleep(1.0)
    pods = [q for _, p, q in server.requests if p == "/api/v1/pods"]
    assert informer._gones >= 3  # 410s in a row, each after a longer wait (up to the cap)
    assert len(pods) < 40, len(pods)
    server.clear_faults()
    wait_until(lambda: informer._gones == 0 and informer.down_since is None, what="a working watch")
    # A single 410 later (a compaction) is relisted at once, not after the old backoff.
    server.inject("gone", count=1, watch=True, path="/api/v1/pods")
    server.drop_watches()
    before = len(server.requests)
    wait_until(lambda: any(p == "/api/v1/pods" and "watch" not in q for _, p, q in server.requests[before:]),
               timeout=0.5, what="the relist at once")  # fmt: skip
