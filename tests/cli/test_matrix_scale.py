"""matrix at scale: --from/--to, -o summary, and the summary default for large inventories."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import netfence.cli.matrix as matrix_cli
from netfence.cli.demo import scenario_dir

Run = Callable[..., tuple[int, str, str]]
COLORS = str(scenario_dir() / "colors")


def test_matrix_from_and_to_restrict_sources_and_destinations(run: Run) -> None:
    code, out, _ = run("matrix", "-f", COLORS, "--port", "80", "--from", "dev", "--to", "prod/red-*", "-o", "json")
    assert code == 0
    flows = json.loads(out)["flows"]
    assert len(flows) == 3
    assert all(f["from"].startswith("dev/") and f["to"].startswith("prod/red-") for f in flows)


def test_matrix_from_and_to_give_the_same_verdicts_as_the_full_matrix(run: Run) -> None:
    _, full, _ = run("matrix", "-f", COLORS, "--port", "80", "--port", "ICMP", "-o", "json")
    _, part, _ = run(
        "matrix", "-f", COLORS, "--port", "80", "--port", "ICMP", "--from", "*/blue-*", "--from", "prod", "--to", "dev", "-o", "json"
    )
    every = {(f["from"], f["to"], f["protocol"]): f["allowed"] for f in json.loads(full)["flows"]}
    some = json.loads(part)["flows"]
    assert len(some) == 2 * 4 * 3
    assert all(every[(f["from"], f["to"], f["protocol"])] == f["allowed"] for f in some)


def test_matrix_pattern_matching_nothing_is_a_usage_error(run: Run) -> None:
    code, out, err = run("matrix", "-f", COLORS, "--port", "80", "--to", "staging")
    assert (code, out) == (2, "")
    assert err == "error: --to staging: matches no pod (expected NAMESPACE or NAMESPACE/POD, wildcards allowed)\n"


def test_matrix_summary_counts_flows_per_namespace_pair_and_port(run: Run) -> None:
    code, out, _ = run("matrix", "-f", COLORS, "--port", "80", "-o", "summary")
    assert code == 0
    assert out == (
        "from  to    port    allowed  denied\n"
        "dev   dev   TCP/80        7       2\n"
        "dev   prod  TCP/80        6       3\n"
        "prod  dev   TCP/80        6       3\n"
        "prod  prod  TCP/80        9       0\n"
        "\n"
        "TCP/80: 28 of 36 flows allowed, 8 denied\n"
        "1 port, 6 pods: 28 of 36 flows allowed\n"
    )


def test_matrix_summary_agrees_with_the_listing(run: Run) -> None:
    _, listing, _ = run("matrix", "-f", COLORS, "--port", "80", "--port", "ICMP", "-o", "json")
    _, summary, _ = run("matrix", "-f", COLORS, "--port", "80", "--port", "ICMP", "-o", "summary")
    counted: dict[tuple[str, str, str], int] = {}
    for f in json.loads(listing)["flows"]:
        key = (f["from"].split("/")[0], f["to"].split("/")[0], "ICMP" if f["port"] is None else f"TCP/{f['port']}")
        counted[key] = counted.get(key, 0) + f["allowed"]
    rows = [line.split() for line in summary.split("\n\n")[0].splitlines()[1:]]
    assert {(r[0], r[1], r[2]): int(r[3]) for r in rows} == counted


def test_matrix_above_the_threshold_defaults_to_summary_and_says_so(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(matrix_cli, "SUMMARY_THRESHOLD", 5)
    code, out, err = run("matrix", "-f", COLORS, "--port", "80")
    assert code == 0
    assert out.startswith("from  to    port    allowed  denied\n")
    assert err == (
        "note: 6 sources x 6 destinations: printing counts per namespace pair (-o summary); "
        "-o json|csv|table lists every pair\n"
    )
    code, out, err = run("matrix", "-f", COLORS, "--port", "80", "-o", "table")
    assert code == 0 and err == "" and "TCP/80: 28 of 36 flows allowed, 8 denied" in out
    code, out, err = run("matrix", "-f", COLORS, "--port", "80", "--from", "dev", "--to", "dev")
    assert code == 0 and err == "" and "(rows: from, columns: to)" in out


@pytest.mark.parametrize("output", ["summary", "table", "wide", "json", "csv"])
def test_matrix_of_an_inventory_without_pods_is_empty_not_an_error(run: Run, tmp_path: Path, output: str) -> None:
    (tmp_path / "namespaces.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: empty\n")
    code, out, err = run("matrix", "-f", str(tmp_path), "--port", "80", "-o", output)
    assert (code, err) == (0, "")
    if output == "summary":
        assert out == "from  to  port    allowed  denied\n\nTCP/80: 0 of 0 flows allowed, 0 denied\n1 port, 0 pods: 0 of 0 flows allowed\n"
    if output == "json":
        assert json.loads(out)["flows"] == []
