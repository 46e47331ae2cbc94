"""Apply compiled rulesets to a real kernel, inside a throwaway netfence network namespace."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest
from clusters import Cluster, pod

from netfence.cli.demo import scenario_dir
from netfence.dataplane.apply import DataplaneError, apply_script, apply_table, delete_table, read_table, run_nft
from netfence.dataplane.nft.compile import compile_node
from netfence.ir.build import build_ruleset
from netfence.sources.load import load_inventory

pytestmark = pytest.mark.lab


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"netfence-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def colors_script(node: str = "k8s-node2") -> str:
    inventory = load_inventory([str(scenario_dir() / "colors")]).inventory
    return compile_node(build_ruleset(inventory), node).replace_script()


def root_tables() -> str:
    return run_nft(["list", "tables"], None)


def test_compiled_ruleset_is_accepted_by_the_kernel_and_reads_back(netns: str) -> None:
    before = root_tables()
    apply_script(colors_script(), netns)
    table = read_table(netns)
    assert table is not None
    assert "chain in_c0_t0" in table and "chain eg_c0_t0" in table
    assert 'comment "NetworkPolicy dev/allow-tcp-80-from-blue-to-green ingress[0]"' in table
    assert root_tables() == before  # nothing in the root network namespace


def test_reapplying_replaces_the_table_instead_of_merging(netns: str) -> None:
    apply_script(colors_script("k8s-node2"), netns)
    apply_script(colors_script("k8s-node1"), netns)  # node1 has no isolated pod: empty maps
    table = read_table(netns)
    assert table is not None
    assert "in_c0_t0" not in table and "elements" not in table


def test_a_rejected_ruleset_leaves_the_last_good_one_in_place(netns: str) -> None:
    apply_script(colors_script(), netns)
    good = read_table(netns)
    broken = colors_script().replace("@egress_ep", "@no_such_map", 1)
    with pytest.raises(DataplaneError, match="failed"):
        apply_script(broken, netns)
    assert read_table(netns) == good


def test_delete_table_removes_only_netfence_and_tolerates_absence(netns: str) -> None:
    run_nft(["add", "table", "inet", "other"], netns)
    apply_script(colors_script(), netns)
    delete_table(netns)
    delete_table(netns)
    assert read_table(netns) is None
    assert "table inet other" in run_nft(["list", "tables"], netns)


def test_membership_change_is_applied_as_an_element_update(netns: str, cluster: Callable[..., Cluster]) -> None:
    colors = scenario_dir() / "colors"
    objects = [(colors / "cluster.yaml").read_text(), (colors / "allow-tcp-80-from-blue-to-green.yaml").read_text()]
    before = compile_node(cluster(*objects).ruleset, "k8s-node2")
    assert apply_table(before, netns) == "replace"
    # A second dev/blue pod appears: dev/red's ingress peer set grows, no rule changes.
    newcomer = pod("dev", "blue-2", {"app": "blue", "environment": "dev"}, "10.244.3.99", nodeName="k8s-node1")
    after = compile_node(cluster(*objects, newcomer).ruleset, "k8s-node2")
    assert apply_table(after, netns, before) == "update"
    table = read_table(netns)
    assert table is not None and "10.244.3.99" in table
    assert apply_table(after, netns, after) == "unchanged"


def test_a_structural_change_keeps_the_sets_both_tables_have(netns: str, cluster: Callable[..., Cluster]) -> None:
    """Sets are refilled in place, never recreated: a new interval set misses lookups for a moment."""
    from netfence.dataplane.apply import kernel_names
    from netfence.dataplane.nft.objects import transition_script

    colors = scenario_dir() / "colors"
    objects = [(colors / "cluster.yaml").read_text(), (colors / "allow-tcp-80-from-blue-to-green.yaml").read_text()]
    before = compile_node(cluster(*objects).ruleset, "k8s-node2")
    apply_table(before, netns)
    extra = """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: also-udp, namespace: dev}
        spec:
          podSelector: {matchLabels: {app: red}}
          ingress: [{ports: [{port: 53, protocol: UDP}]}]
        """
    after = compile_node(cluster(*objects, extra).ruleset, "k8s-node2")
    script = transition_script(kernel_names(netns), after)
    kept = {s.name for s in before.sets} & {s.name for s in after.sets}
    assert kept and all(f"flush set inet netfence {name}" in script for name in kept)
    assert "delete table" not in script and not any(f"delete set inet netfence {name}" in script for name in kept)
    assert apply_table(after, netns) == "replace"
    fresh = f"netfence-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", fresh], check=True)
    try:
        apply_script(after.replace_script(), fresh)
        assert read_table(netns) == read_table(fresh)  # in place or from scratch: the same table
    finally:
        subprocess.run(["ip", "netns", "del", fresh], check=False)
