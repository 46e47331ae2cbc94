"""Which conntrack entries a sync deletes: those of local pod addresses that went away (a pod
deleted, its IP changed, moved off the node, its IP given to another pod), after the table is
committed, never on a policy change; a failed flush is counted and the sync stands. And how the
conntrack CLI is run (a stand-in executable: no root)."""

from __future__ import annotations

import ipaddress
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from fake_kernel import FakeKernel
from kube_objects import namespace, netpol, pod, snapshot

from netfence.agent.conntrack import Conntrack, removed_addresses
from netfence.agent.run import Agent, AgentConfig
from netfence.agent.table import Interfaces, build_desired
from netfence.sources.documents import load_documents
from netfence.sources.snapshot import Snapshot

NODE = "node-a"
NS = namespace("dev")
WEB = pod("dev/web", "10.0.0.1", node=NODE, app="web")
DB = pod("dev/db", "10.0.0.3", node=NODE, app="db")
REMOTE = pod("dev/client", "10.0.0.2", node="node-b", app="client")
ALLOW = netpol("dev/allow-client", {"app": "web"}, {"app": "client"})
BASE = (NS, WEB, DB, REMOTE, ALLOW)


def ip(text: str) -> Any:
    return ipaddress.ip_address(text)


def moved(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A pod with another IP, node or labels."""
    found: dict[str, Any] = {**obj, "metadata": {**obj["metadata"]}, "spec": {**obj["spec"]}, "status": {**obj["status"]}}
    if "ip" in changes:
        found["status"].update(podIP=changes["ip"], podIPs=[{"ip": changes["ip"]}])
    if "node" in changes:
        found["spec"]["nodeName"] = changes["node"]
    if "labels" in changes:
        found["metadata"]["labels"] = changes["labels"]
    return found


def local(*objects: dict[str, Any]) -> Any:
    return build_desired(snapshot(*objects), NODE, Interfaces("nf")).local


# --- the decision -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "flushed"),
    [
        pytest.param(BASE, (), id="no change"),
        pytest.param((NS, DB, REMOTE, ALLOW), ("10.0.0.1",), id="pod deleted"),
        pytest.param((NS, moved(WEB, ip="10.0.0.9"), DB, REMOTE, ALLOW), ("10.0.0.1",), id="IP changed"),
        pytest.param((NS, moved(WEB, node="node-b"), DB, REMOTE, ALLOW), ("10.0.0.1",), id="moved off the node"),
        pytest.param(
            (NS, pod("dev/locked", "10.0.0.1", node=NODE, app="locked"), DB, REMOTE, ALLOW), ("10.0.0.1",),
            id="IP given to a new pod in the same sync",
        ),
        pytest.param((NS, WEB, DB, REMOTE, netpol("dev/allow-client", {"app": "web"}, None)), (), id="policy edited"),
        pytest.param((NS, WEB, DB, REMOTE), (), id="policy deleted"),
        pytest.param((NS, moved(WEB, labels={"app": "other"}), DB, REMOTE, ALLOW), (), id="labels changed"),
        pytest.param((NS, WEB, DB, ALLOW), (), id="remote pod deleted"),
        pytest.param((NS, WEB, DB, moved(REMOTE, ip="10.0.0.8"), ALLOW), (), id="remote IP changed"),
        pytest.param((NS, WEB, REMOTE, ALLOW), ("10.0.0.3",), id="other local pod deleted"),
        pytest.param((NS, REMOTE, ALLOW), ("10.0.0.1", "10.0.0.3"), id="both local pods deleted"),
    ],
)
def test_removed_addresses(after: tuple[dict[str, Any], ...], flushed: tuple[str, ...]) -> None:
    assert removed_addresses(local(*BASE), local(*after)) == tuple(ip(a) for a in flushed)


def test_removed_addresses_sorts_ipv4_before_ipv6() -> None:
    before = local(NS, pod("dev/a", "fd00::5", node=NODE), pod("dev/b", "10.0.0.7", node=NODE), pod("dev/c", "10.0.0.6", node=NODE))
    assert removed_addresses(before, ()) == (ip("10.0.0.6"), ip("10.0.0.7"), ip("fd00::5"))


# --- the agent ----------------------------------------------------------------------------------


class Fixed:
    """A source that hands over whatever snapshot it holds now."""

    name = "fixed"

    def __init__(self, current: Snapshot) -> None:
        self.current = current

    def start(self, notify: Any) -> None:
        pass

    def stop(self) -> None:
        pass

    def synced(self) -> bool:
        return True

    def problems(self) -> list[str]:
        return []

    def outage(self) -> float:
        return 0.0

    def snapshot(self) -> Snapshot:
        return self.current


def agent_with(kernel: FakeKernel, *objects: dict[str, Any], **config: Any) -> tuple[Agent, Fixed]:
    source = Fixed(snapshot(*objects))
    agent = Agent(AgentConfig(NODE, interfaces=Interfaces("nf"), **config), source, kernel)  # type: ignore[arg-type]
    return agent, source


def metric(agent: Agent, name: str) -> float:
    for line in agent.metrics.render().decode().splitlines():
        if line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric {name}")


def test_the_first_sync_flushes_nothing_a_deleted_pod_is_flushed_after_the_commit() -> None:
    kernel = FakeKernel()
    agent, source = agent_with(kernel, *BASE)
    assert agent.sync() is not None and kernel.flushed == []  # nothing known before: nothing removed
    commits = len(kernel.applied)
    flush = kernel.flush_conntrack
    at_flush: list[int] = []

    def recorded(addresses: Any) -> Any:
        at_flush.append(len(kernel.applied))
        return flush(addresses)

    kernel.flush_conntrack = recorded  # type: ignore[method-assign]
    source.current = snapshot(NS, DB, REMOTE, ALLOW)
    change = agent.sync()
    assert change is not None and change.result in ("update", "replace")
    assert kernel.flushed == [(ip("10.0.0.1"),)]
    assert at_flush == [commits + 1]  # after the new table's commit
    assert metric(agent, "netfence_conntrack_flushed_entries_total") == 1.0
    assert metric(agent, "netfence_conntrack_flush_errors_total") == 0.0
    assert agent.sync() is not None and kernel.flushed == [(ip("10.0.0.1"),)]  # no change: no flush


def test_an_ip_given_to_a_new_pod_under_a_denying_policy_is_flushed() -> None:
    kernel = FakeKernel()
    agent, source = agent_with(kernel, *BASE)
    agent.sync()
    locked = pod("dev/locked", "10.0.0.1", node=NODE, app="locked")
    source.current = snapshot(NS, locked, DB, REMOTE, ALLOW, netpol("dev/deny-all", {"app": "locked"}, None))
    assert agent.sync() is not None
    assert kernel.flushed == [(ip("10.0.0.1"),)]


def test_policy_changes_flush_nothing() -> None:
    kernel = FakeKernel()
    agent, source = agent_with(kernel, *BASE)
    agent.sync()
    for objects in (
        (NS, WEB, DB, REMOTE, netpol("dev/allow-client", {"app": "web"}, None)),  # now denies everyone
        (NS, WEB, DB, REMOTE, netpol("dev/deny-db", {"app": "db"}, None)),
        (NS, moved(WEB, labels={"app": "db"}), DB, REMOTE, netpol("dev/deny-db", {"app": "db"}, None)),
    ):
        source.current = snapshot(*objects)
        change = agent.sync()
        assert change is not None and change.result in ("update", "replace")
    assert kernel.flushed == []


def test_a_refused_table_flushes_nothing_until_it_is_committed() -> None:
    kernel = FakeKernel()
    agent, source = agent_with(kernel, *BASE)
    agent.sync()
    kernel.refuse = "no"
    source.current = snapshot(NS, DB, REMOTE, ALLOW)
    assert agent.sync() is None
    assert kernel.flushed == []  # the old table still holds web's rules: its entries stay with them
    kernel.refuse = None
    agent.check()  # the refused table again
    assert kernel.flushed == [(ip("10.0.0.1"),)]


def test_a_failed_flush_is_counted_and_the_sync_stands() -> None:
    kernel = FakeKernel()
    agent, source = agent_with(kernel, *BASE)
    agent.sync()
    kernel.conntrack_fails = "conntrack -D failed: Operation not permitted"
    source.current = snapshot(NS, DB, REMOTE, ALLOW)
    change = agent.sync()
    assert change is not None and change.result != "error"
    assert agent.good is not None and [e.name for e in agent.good.local] == ["db"]
    assert agent.ready
    assert metric(agent, "netfence_conntrack_flush_errors_total") == 4.0


def test_a_flush_that_raises_is_logged_and_counted_and_the_sync_stands(caplog: pytest.LogCaptureFixture) -> None:
    kernel = FakeKernel()
    agent, source = agent_with(kernel, *BASE)
    agent.sync()

    def broken(addresses: Any) -> Any:
        raise RuntimeError("boom")

    kernel.flush_conntrack = broken  # type: ignore[method-assign]
    source.current = snapshot(NS, DB, REMOTE, ALLOW)
    assert agent.sync() is not None and agent.ready
    assert metric(agent, "netfence_conntrack_flush_errors_total") == 1.0
    assert "internal error while deleting conntrack entries" in caplog.text


SCENARIO = Path(__file__).parents[2] / "src/netfence/scenarios/whitelist"


def test_the_host_agent_flushes_nothing_when_its_address_changes(tmp_path: Path) -> None:
    for name in ("cluster.yaml", "whitelist.yaml"):
        shutil.copy(SCENARIO / name, tmp_path / name)

    def files() -> Snapshot:
        problems: list[Any] = []
        return Snapshot(load_documents([str(tmp_path)], problems), problems, sorted(str(p) for p in tmp_path.iterdir()))

    kernel = FakeKernel()
    source = Fixed(files())
    agent = Agent(AgentConfig(NODE, host="haproxy", fail_closed=False), source, kernel)  # type: ignore[arg-type]
    assert agent.sync() is not None
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(cluster.read_text().replace("addresses: [172.18.221.1]", "addresses: [172.18.221.9]"))
    source.current = files()
    assert agent.sync() is not None
    assert agent.good is not None and agent.good.local[0].ips == (ip("172.18.221.9"),)
    assert kernel.flushed == []


# --- the conntrack CLI --------------------------------------------------------------------------


def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    """A `conntrack` first on PATH that logs its arguments to calls.txt and runs `body`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "conntrack"
    script.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/calls.txt\n{body}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return tmp_path / "calls.txt"


def test_each_address_is_deleted_by_both_ends_of_both_directions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = stand_in(tmp_path, monkeypatch, 'case "$*" in *orig-dst*) echo "conntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted." >&2; exit 0;; esac\n'
                     'echo "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted." >&2; exit 1')  # fmt: skip
    flushed = Conntrack().flush((ip("10.0.0.1"), ip("fd00::1")))
    assert flushed.entries == 4 and flushed.errors == ()
    assert calls.read_text().splitlines() == [
        *(f"-D -f ipv4 --{d} 10.0.0.1" for d in ("orig-src", "orig-dst", "reply-src", "reply-dst")),
        *(f"-D -f ipv6 --{d} fd00::1" for d in ("orig-src", "orig-dst", "reply-src", "reply-dst")),
    ]


def test_a_failing_run_is_reported_and_the_others_are_still_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = stand_in(tmp_path, monkeypatch, 'case "$*" in *reply-src*) echo "conntrack v1.4.7 (conntrack-tools): Operation failed: Operation not permitted" >&2; exit 1;; esac\n'
                     'echo "conntrack v1.4.7 (conntrack-tools): 1 flow entries have been deleted." >&2')  # fmt: skip
    flushed = Conntrack().flush((ip("10.0.0.1"),))
    assert flushed.entries == 3
    assert len(flushed.errors) == 1 and "Operation not permitted" in flushed.errors[0] and "--reply-src" in flushed.errors[0]
    assert len(calls.read_text().splitlines()) == 4


def test_a_missing_conntrack_is_a_reported_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda name: str(tmp_path / name))
    flushed = Conntrack().flush((ip("10.0.0.1"),))
    assert flushed.entries == 0 and len(flushed.errors) == 4 and "cannot run conntrack" in flushed.errors[0]


def test_another_namespace_goes_through_nsenter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/bin/{name}")
    assert Conntrack("netfence-n1")._command(["-D"]) == ["/bin/nsenter", "--net=/run/netns/netfence-n1", "/bin/conntrack", "-D"]
    assert Conntrack("/proc/1/ns/net")._command(["-D"])[1] == "--net=/proc/1/ns/net"
