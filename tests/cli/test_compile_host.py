"""netfence compile --host: an external workload's own firewall, as nft or iptables input."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

Run = Callable[..., tuple[int, str, str]]
SCENARIO = str(resources.files("netfence") / "scenarios" / "whitelist")


def test_host_ruleset_is_printed_for_nft_by_default_and_ext_prefix_is_accepted(run: Run) -> None:
    code, out, err = run("compile", "-f", SCENARIO, "--host", "haproxy")
    assert (code, err) == (0, "")
    assert out.startswith("table inet netfence {\n")
    assert "ip daddr @eg_4dc2a53b6d meta l4proto tcp th dport { 30358 } counter accept" in out
    assert run("compile", "-f", SCENARIO, "--host", "ext/haproxy")[1] == out


def test_iptables_output_is_ipset_then_iptables_then_ip6tables_restore_input(run: Run) -> None:
    code, out, _ = run("compile", "-f", SCENARIO, "--host", "haproxy", "-o", "iptables")
    assert code == 0
    heads = [line for line in out.splitlines() if line.startswith("# ")]
    assert heads == ["# ipset restore", "# iptables-restore", "# ip6tables-restore"]
    assert out.count("*filter") == 2 and out.count("COMMIT") == 2


def test_unknown_host_names_the_external_workloads(run: Run) -> None:
    code, out, err = run("compile", "-f", SCENARIO, "--host", "db")
    assert (code, out) == (2, "")
    assert err == "error: --host: no ExternalWorkload 'db' (external workloads: client, haproxy)\n"


def test_host_and_node_exclude_each_other_and_iptables_is_for_hosts_only(run: Run) -> None:
    code, _, err = run("compile", "-f", SCENARIO, "--host", "haproxy", "--node", "k8s-node1")
    assert code == 2 and err.startswith("error: --node and --host exclude each other")
    code, _, err = run("compile", "-f", SCENARIO, "-o", "iptables")
    expected = "error: -o iptables: only an external host's firewall (--host NAME) is written for iptables\n"
    assert (code, err) == (2, expected)
