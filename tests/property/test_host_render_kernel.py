"""Every host firewall the IR can express is accepted by the kernel: the nftables table by nft,
the iptables form by ipset and iptables-restore (what iptables cannot express is refused with a
message, never written wrong). Inside a throwaway netfence network namespace."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from ir_strategies import rulesets

from netfence.dataplane.apply import apply_table, read_table
from netfence.dataplane.host import compile_host
from netfence.dataplane.iptables.apply import apply_iptables, delete_iptables, read_iptables
from netfence.dataplane.iptables.render import IptablesError, render_iptables
from netfence.dataplane.nft.host import render_host
from netfence.ir.types import EndpointKind, Ruleset

pytestmark = pytest.mark.lab

KERNEL = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    name = f"netfence-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@KERNEL
@given(rulesets(), st.data())
def test_every_host_firewall_loads_with_nft_and_with_iptables(
    netns: str, ruleset: Ruleset, data: st.DataObject
) -> None:
    """One namespace for all examples: each table also replaces the one before it in place."""
    _load_both(ruleset, data, netns)


def _load_both(ruleset: Ruleset, data: st.DataObject, netns: str) -> None:
    candidates = [e for e in ruleset.endpoints if e.ips]
    assume(candidates)
    host = data.draw(st.sampled_from(candidates))
    endpoints = tuple(replace(e, kind=EndpointKind.EXTERNAL) if e.id == host.id else e for e in ruleset.endpoints)
    firewall = compile_host(Ruleset(endpoints, ruleset.ingress, ruleset.egress, ruleset.default_action), host.id)
    apply_table(render_host(firewall), netns)
    assert read_table(netns) is not None  # and nft can read it back
    if shutil.which("iptables-restore") is None or shutil.which("ipset") is None:
        return
    try:
        rules = render_iptables(firewall)
    except IptablesError as exc:
        assert "use -o nft" in str(exc)
        return
    apply_iptables(rules, netns)
    assert ":NETFENCE-INPUT" in read_iptables(netns)
    delete_iptables(netns)
