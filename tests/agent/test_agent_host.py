"""The agent for an external host (`--host NAME`: the host's own firewall) and the agent's flow
logs (`--log`, `--log-allowed`, `--audit`), against the file source and a modelled kernel."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_kernel import FakeKernel
from kube_objects import namespace, netpol, pod, wait_until

from netfence.agent import logs
from netfence.agent.files import FileSource
from netfence.agent.run import Agent, AgentConfig
from netfence.agent.table import FlowLogs, Interfaces, build_desired
from netfence.dataplane.nft.flowlog import LogOptions
from netfence.errors import UsageError
from netfence.sources.documents import load_documents
from netfence.sources.snapshot import Snapshot

SCENARIO = Path(__file__).parents[2] / "src/netfence/scenarios/whitelist"
NODE = "node-a"
CLUSTER = (
    namespace("dev"),
    pod("dev/web", "10.0.0.1", node=NODE, app="web"),
    pod("dev/client", "10.0.0.2", node="node-b", app="client"),
    netpol("dev/allow-client", {"app": "web"}, {"app": "client"}),
)

Start = Callable[..., tuple[Agent, FakeKernel]]


@pytest.fixture
def start() -> Iterator[Start]:
    running: list[tuple[Agent, threading.Thread]] = []

    def make(paths: list[str], **config: Any) -> tuple[Agent, FakeKernel]:
        kernel = FakeKernel()
        settings = {"interval": 0.02, "verify_interval": 30.0, "interfaces": Interfaces("nf"), **config}
        agent = Agent(AgentConfig(NODE, **settings), FileSource(paths, interval=0.05), kernel)
        thread = threading.Thread(target=agent.run, daemon=True)
        thread.start()
        running.append((agent, thread))
        return agent, kernel

    yield make
    for agent, thread in running:
        agent.stop.set()
        thread.join(10)


def snapshot_of(objects: tuple[dict[str, Any], ...], tmp_path: Path) -> Snapshot:
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump_all(objects))
    problems: list[Any] = []
    return Snapshot(load_documents([str(tmp_path)], problems), problems, [str(tmp_path / "cluster.yaml")])


def chains(agent: Agent) -> set[str]:
    assert agent.good is not None
    return {chain.name for chain in agent.good.table.chains}


def test_the_node_table_has_log_chains_when_asked_and_audit_names_are_resolved_per_snapshot(tmp_path: Path) -> None:
    plain = build_desired(snapshot_of(CLUSTER, tmp_path), NODE, Interfaces("nf"))
    assert not any(c.name.startswith("log_") for c in plain.table.chains)

    logged = build_desired(snapshot_of(CLUSTER, tmp_path), NODE, Interfaces("nf"), logs=FlowLogs(LogOptions(allowed=True)))
    names = {c.name for c in logged.table.chains}
    assert any(n.startswith("log_d_") for n in names) and any(n.startswith("log_a_") for n in names)
    assert 'log group 5 prefix "netfence:D' in logged.table.render()

    audit = FlowLogs(LogOptions(denied=False), ("dev/allow-client", "dev/created-later"))
    audited = build_desired(snapshot_of(CLUSTER, tmp_path), NODE, Interfaces("nf"), logs=audit)
    assert 'prefix "netfence:Ui:' in audited.table.render()
    assert "--audit dev/created-later: no such policy in the input (nothing to audit)" in audited.warnings
    later = (*CLUSTER, netpol("dev/created-later", {"app": "client"}, {"app": "web"}))
    both = build_desired(snapshot_of(later, tmp_path), NODE, Interfaces("nf"), logs=audit)
    assert not both.warnings

    # Only audit asked for, and the audited policy gone: nothing to log, the plain table.
    gone = build_desired(snapshot_of(CLUSTER[:3], tmp_path), NODE, Interfaces("nf"), logs=audit)
    assert gone.table == build_desired(snapshot_of(CLUSTER[:3], tmp_path), NODE, Interfaces("nf")).table


def test_an_audit_name_of_an_unknown_kind_is_refused_at_start() -> None:
    with pytest.raises(UsageError, match="unknown kind 'NetworkPolcy'"):
        FlowLogs(LogOptions(), ("NetworkPolcy/dev/x",)).check()
    FlowLogs(LogOptions(), ("NetworkPolicy/dev/not-yet",)).check()


def test_the_running_agent_applies_the_log_chains(tmp_path: Path, start: Start) -> None:
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump_all(CLUSTER))
    agent, kernel = start([str(tmp_path)], logs=FlowLogs(LogOptions(group=7)))
    wait_until(lambda: kernel.applied, what="the first sync")
    assert any(name.startswith("log_d_") for name in chains(agent))
    assert "log group 7 " in kernel.applied[0][1]


def test_the_host_agent_follows_a_nodeport_change_without_a_policy_edit(tmp_path: Path, start: Start) -> None:
    for name in ("cluster.yaml", "whitelist.yaml"):
        shutil.copy(SCENARIO / name, tmp_path / name)
    agent, kernel = start([str(tmp_path)], host="haproxy", fail_closed=False)
    wait_until(lambda: kernel.applied, what="the first sync")
    assert agent.good is not None
    assert {"input", "output"} <= chains(agent)
    assert "th dport { 30358 }" in agent.good.table.render()
    assert [e.id for e in agent.good.local] == ["ext/haproxy"]

    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(cluster.read_text().replace("nodePort: 30358", "nodePort: 31999"))
    wait_until(lambda: agent.good is not None and "31999" in agent.good.table.render(), what="the new nodePort")
    assert "30358" not in agent.good.table.render()
    assert [kind for kind, _ in kernel.applied] == ["create", "replace"]


def test_the_host_agent_keeps_its_table_when_the_host_disappears(tmp_path: Path, start: Start) -> None:
    for name in ("cluster.yaml", "whitelist.yaml"):
        shutil.copy(SCENARIO / name, tmp_path / name)
    agent, kernel = start([str(tmp_path)], host="haproxy", fail_closed=False)
    wait_until(lambda: agent.ready, what="ready")
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(cluster.read_text().replace("name: haproxy,", "name: haproxy2,"))
    wait_until(lambda: not agent.ready, what="not ready")
    assert len(kernel.applied) == 1
    assert "no ExternalWorkload 'haproxy' in the input" in agent.health().ready()[1]


Run = Callable[..., tuple[int, str, str]]


def test_node_and_host_exclude_each_other(run: Run) -> None:
    code, _, err = run("agent", "--node", "n", "--host", "h", "-f", "x")
    assert code == 2 and "--node and --host exclude each other" in err


def test_the_host_agent_has_no_flow_logs(run: Run) -> None:
    code, _, err = run("agent", "--host", "h", "-f", "x", "--log")
    assert code == 2 and "--log, --log-allowed and --audit apply to a node's table (--node), not to --host" in err


def test_host_dry_run_prints_the_host_table(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from netfence.agent.kernel import NftKernel

    monkeypatch.setattr(NftKernel, "read", lambda self, name="netfence": None)
    monkeypatch.setattr(logs, "configure", lambda *args, **kwargs: None)  # not onto the captured stderr
    code, out, err = run("agent", "--host", "haproxy", "-f", str(SCENARIO), "--dry-run")
    assert code == 0, err
    assert out.startswith("# host haproxy; desired table:") and "hook output" in out and "30358" in out
