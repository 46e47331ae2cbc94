"""The agent's view of a real kernel, in a throwaway netfence network namespace: what it applies
reads back as equal (every scenario, every node, fail-closed rules included), a restarted agent
adopts the table without writing, and edits by someone else are found."""

from __future__ import annotations

import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from kube_objects import namespace, netpol, pod, snapshot

from netfence.agent.kernel import SCRATCH_TABLE, NftKernel, compare
from netfence.agent.reconcile import Reconciler
from netfence.agent.table import Interfaces, build_desired
from netfence.cli.demo import scenario_dir
from netfence.dataplane.apply import run_nft
from netfence.sources.documents import load_documents
from netfence.sources.snapshot import Snapshot

pytestmark = pytest.mark.lab


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"netfence-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def scenarios() -> list[tuple[str, str]]:
    """Each scenario with its busiest node."""
    found = []
    for folder in sorted(p for p in scenario_dir().iterdir() if p.is_dir()):
        docs = load_documents([str(folder)], [])
        nodes = Counter(d.body.get("spec", {}).get("nodeName") for d in docs if d.kind == "Pod")
        nodes.pop(None, None)
        if nodes:
            found.append((folder.name, nodes.most_common(1)[0][0]))
    return found


def test_every_scenario_reads_back_as_applied_and_a_restart_adopts_it_without_writing(netns: str) -> None:
    kernel = NftKernel(netns)
    checked = 0
    for folder, node in scenarios():
        paths = [str(p) for p in sorted((scenario_dir() / folder).glob("*.yaml"))]
        if folder == "ingress-controller":  # two alternative policies of one name: one at a time
            paths = [p for p in paths if not p.endswith("two-peers.yaml")]
        source = Snapshot(load_documents(paths, []))
        desired = build_desired(source, node, Interfaces("nf")).table
        kernel.delete()
        assert Reconciler(kernel).converge(desired).result == "create"
        view = kernel.read()
        assert view is not None
        fresh = Reconciler(kernel)  # a restarted agent: knows nothing, reads the kernel
        assert compare(view, desired, fresh.rules_print(desired)).kind == "unchanged", (folder, node)
        assert fresh.converge(desired).result == "unchanged", (folder, node)
        after = kernel.read()
        assert after is not None and after.handles == view.handles  # nothing was rewritten
        checked += 1
    assert checked >= 7
    assert SCRATCH_TABLE not in run_nft(["list", "tables"], netns)


def test_element_updates_and_replacements_leave_exactly_the_desired_table(netns: str) -> None:
    kernel = NftKernel(netns)
    reconciler = Reconciler(kernel)
    base = [namespace("dev"), pod("dev/web", "10.0.0.1", app="web"), pod("dev/c", "10.0.0.2", node="b", app="client"),
            netpol("dev/allow", {"app": "web"}, {"app": "client"})]  # fmt: skip
    steps = [
        (base, "create"),
        ([*base, pod("dev/c2", "10.0.0.7", node="b", app="client")], "update"),
        ([*base, pod("dev/web2", "10.0.0.9", app="web")], "update"),
        ([*base[:3], netpol("dev/allow", {"app": "web"}, {"app": "client"}, port=443)], "replace"),
        ([*base[:3]], "replace"),
    ]
    for objects, expected in steps:
        desired = build_desired(snapshot(*objects), "node-a", Interfaces("nf")).table
        assert reconciler.converge(desired).result == expected
        view = kernel.read()
        assert view is not None
        assert compare(view, desired, Reconciler(kernel).rules_print(desired)).kind == "unchanged"


def test_foreign_edits_are_found_and_undone(netns: str) -> None:
    kernel = NftKernel(netns)
    reconciler = Reconciler(kernel)
    objects = [namespace("dev"), pod("dev/web", "10.0.0.1", app="web"), netpol("dev/deny", {"app": "web"}, None)]
    desired = build_desired(snapshot(*objects), "node-a", Interfaces("nf")).table
    reconciler.converge(desired)
    for edit, expected in (
        (["insert", "rule", "inet", "netfence", "forward", "accept"], "replace"),
        (["flush", "map", "inet", "netfence", "ingress_ep"], "update"),
        (["add", "element", "inet", "netfence", "local_ifaces", "{", "nfstranger", "}"], "update"),
        (["delete", "table", "inet", "netfence"], "create"),
    ):
        run_nft(edit, netns)
        check = reconciler.verify(desired)
        assert check.repair is not None and check.repair.result == expected, (edit, check.describe)
        assert reconciler.verify(desired).repair is None


def test_rule_counters_are_read_per_comment(netns: str) -> None:
    kernel = NftKernel(netns)
    objects = [namespace("dev"), pod("dev/web", "10.0.0.1", app="web"), netpol("dev/deny", {"app": "web"}, None)]
    desired = build_desired(snapshot(*objects), "node-a", Interfaces("nf")).table
    Reconciler(kernel).converge(desired)
    view = kernel.read()
    assert view is not None
    assert view.counters["default: isolated, no rule allowed"] == (0, 0)
    assert view.counters["unknown local interface"] == (0, 0)
