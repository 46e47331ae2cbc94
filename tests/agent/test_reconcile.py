"""Reconcile decisions: what goes to the kernel for each kind of change, what a read-back finds
and repairs, and what a refused table leaves behind."""

from __future__ import annotations

import pytest
from fake_kernel import FakeKernel
from kube_objects import namespace, netpol, pod, snapshot

from netfence.agent.reconcile import Reconciler
from netfence.agent.table import Interfaces, build_desired, hashed_name
from netfence.dataplane.apply import DataplaneError
from netfence.dataplane.nft.compile import interface_name
from netfence.dataplane.nft.objects import Table
from netfence.model.endpoints import EndpointId

NODE = "node-a"


def table(*objects: dict[str, object]) -> Table:
    return build_desired(snapshot(*objects), NODE, Interfaces("nf")).table


BASE = (
    namespace("dev"),
    pod("dev/web", "10.0.0.1", app="web"),
    pod("dev/client", "10.0.0.2", node="node-b", app="client"),
    netpol("dev/allow-client", {"app": "web"}, {"app": "client"}),
)


def test_a_node_without_the_table_gets_it_created_whole_then_unchanged_syncs_write_nothing() -> None:
    kernel = FakeKernel()
    reconciler = Reconciler(kernel)
    assert reconciler.converge(table(*BASE)).result == "create"
    writes = len(kernel.applied)
    assert reconciler.converge(table(*BASE)).result == "unchanged"
    assert len(kernel.applied) == writes


def test_a_new_peer_pod_is_an_element_update_of_its_set() -> None:
    kernel = FakeKernel()
    reconciler = Reconciler(kernel)
    reconciler.converge(table(*BASE))
    change = reconciler.converge(table(*BASE, pod("dev/client2", "10.0.0.3", node="node-b", app="client")))
    assert change.result == "update"
    assert change.script.startswith("flush set inet netfence in_") and "{ 10.0.0.2/31 }" in change.script
    assert kernel.applied[-1][0] == "update"


def test_a_new_local_pod_is_an_element_update_of_the_map_and_the_known_interfaces() -> None:
    kernel = FakeKernel()
    reconciler = Reconciler(kernel)
    reconciler.converge(table(*BASE))
    change = reconciler.converge(table(*BASE, pod("dev/web2", "10.0.0.4", app="web")))
    assert change.result == "update"
    assert "add element inet netfence ingress_ep" in change.script
    assert "flush set inet netfence local_ifaces" in change.script


def test_a_policy_edit_replaces_the_rules_in_one_transaction() -> None:
    kernel = FakeKernel()
    reconciler = Reconciler(kernel)
    reconciler.converge(table(*BASE))
    change = reconciler.converge(table(*BASE[:3], netpol("dev/allow-client", {"app": "web"}, {"app": "client"}, port=8080)))
    assert change.result == "replace"
    assert [kind for kind, _ in kernel.applied] == ["create", "replace"]


def test_a_table_found_at_start_that_matches_is_adopted_without_writing() -> None:
    desired = table(*BASE)
    kernel = FakeKernel(desired)
    change = Reconciler(kernel).converge(table(*BASE))
    assert change.result == "unchanged" and kernel.applied == []
    assert kernel.prints == 1  # the kernel form of the rules, from the scratch table


def test_a_table_found_at_start_with_other_members_gets_only_an_element_update() -> None:
    kernel = FakeKernel(table(*BASE))
    change = Reconciler(kernel).converge(table(*BASE, pod("dev/client2", "10.0.0.3", node="node-b", app="client")))
    assert change.result == "update" and change.difference is not None
    assert change.difference.sets and not change.difference.structure


def test_a_table_found_at_start_with_other_rules_is_replaced_in_place() -> None:
    old = table(*BASE[:3], netpol("dev/allow-client", {"app": "web"}, {"app": "client"}, port=8080))
    kernel = FakeKernel(old)
    change = Reconciler(kernel).converge(table(*BASE))
    assert change.result == "replace"
    assert "flush table inet netfence" in change.script and "delete table" not in change.script


def test_the_read_back_repairs_a_foreign_rule() -> None:
    kernel = FakeKernel()
    reconciler = Reconciler(kernel)
    desired = table(*BASE)
    reconciler.converge(desired)
    assert reconciler.verify(desired).repair is None
    kernel.add_rule("forward", "accept")
    check = reconciler.verify(desired)
    assert check.repair is not None and check.repair.result == "replace"
    assert check.describe == "chain forward: other rules"
    assert reconciler.verify(desired).repair is None


def test_the_read_back_restores_removed_map_entries_with_an_element_update() -> None:
    kernel = FakeKernel()
    reconciler = Reconciler(kernel)
    desired = table(*BASE)
    reconciler.converge(desired)
    kernel.drop_map_entries("ingress_ep")
    check = reconciler.verify(desired)
    assert check.repair is not None and check.repair.result == "update"
    assert 'add element inet netfence ingress_ep { "nf' in check.repair.script


def test_the_read_back_recreates_a_deleted_table() -> None:
    kernel = FakeKernel()
    reconciler = Reconciler(kernel)
    desired = table(*BASE)
    reconciler.converge(desired)
    kernel.delete_table()
    check = reconciler.verify(desired)
    assert check.describe == "table missing" and check.repair is not None and check.repair.result == "create"


def test_a_refused_table_leaves_the_kernel_as_it_was_and_the_next_sync_reads_it_again() -> None:
    kernel = FakeKernel()
    reconciler = Reconciler(kernel)
    good = table(*BASE)
    reconciler.converge(good)
    before = kernel.view
    kernel.refuse = "Error: Could not process rule: No such file or directory"
    with pytest.raises(DataplaneError):
        reconciler.converge(table(*BASE, pod("dev/client2", "10.0.0.3", node="node-b", app="client")))
    assert kernel.view is before and reconciler.applied is None
    kernel.refuse = None
    reads = kernel.reads
    assert reconciler.converge(good).result == "unchanged"
    assert kernel.reads == reads + 1  # it did not trust its memory: it read the kernel


def test_planning_only_reads() -> None:
    kernel = FakeKernel(table(*BASE))
    view, change = Reconciler(kernel).plan(table(*BASE, pod("dev/client2", "10.0.0.3", node="node-b", app="client")))
    assert view is not None and change.result == "update" and kernel.applied == [] and kernel.prints == 0
    assert Reconciler(FakeKernel()).plan(table(*BASE))[1].result == "create"


def test_hash_naming_is_the_compiler_s_default_scheme_with_another_prefix() -> None:
    endpoint = EndpointId("dev/web")
    assert hashed_name("nf", endpoint) == interface_name(endpoint)
    assert hashed_name("cali", endpoint) == "cali" + interface_name(endpoint)[2:]
