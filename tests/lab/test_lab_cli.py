"""`netfence lab ...` in-process through main(argv): separate invocations find the lab; `lab run`
compares the kernel with the analyzer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from netfence.analysis.matrix import Matrix
from netfence.cli.demo import scenario_dir
from netfence.cli.main import main
from netfence.lab import control

pytestmark = pytest.mark.lab

Run = Callable[..., tuple[int, str, str]]
COLORS = str(scenario_dir() / "colors")
COLORS_CLUSTER = str(scenario_dir() / "colors" / "cluster.yaml")
FLOW_KEYS = {"from", "to", "port", "protocol", "allowed", "result"}


def flows(text: str) -> dict[tuple[str, str, Any, str], dict[str, Any]]:
    return {(f["from"], f["to"], f["port"], f["protocol"]): f for f in json.loads(text)["flows"]}


def test_up_probe_down_are_separate_invocations(run: Run, lab_name: str) -> None:
    code, out, _ = run("lab", "up", "-f", COLORS_CLUSTER, "--name", lab_name, "--port", "80/UDP")
    assert code == 0
    assert f"lab {lab_name} up in" in out and "3 nodes, 6 pods" in out

    code, out, _ = run("lab", "probe", "--name", lab_name, "-o", "json")
    assert code == 0
    probed = json.loads(out)["flows"]
    assert len(probed) == 2 * 6 * 6  # every port the lab serves: TCP/80 declared, UDP/80 added
    assert all(set(f) == FLOW_KEYS and f["allowed"] and f["result"] == "answered" for f in probed)

    code, out, _ = run("lab", "down", "--name", lab_name)
    assert code == 0
    assert out == f"lab {lab_name} down: 10 netns deleted, 1 processes stopped, 1 state files removed\n"


def test_probe_of_a_lab_that_does_not_exist_is_an_error(run: Run) -> None:
    code, out, err = run("lab", "probe", "--name", "nosuchlab")
    assert (code, out) == (2, "")
    assert err.startswith("error: no lab 'nosuchlab'")


def test_bad_lab_name_is_a_usage_error(run: Run) -> None:
    code, _, err = run("lab", "down", "--name", "My-Lab")
    assert code == 2
    assert "expected 1-32 lowercase letters or digits" in err


def test_lab_apply_enforces_what_the_analyzer_predicts(run: Run, lab_name: str) -> None:
    pytest.importorskip("netfence.dataplane.apply")
    assert run("lab", "up", "-f", COLORS_CLUSTER, "--name", lab_name)[0] == 0
    code, out, _ = run("lab", "apply", "-f", COLORS, "--name", lab_name)
    assert (code, out) == (0, f"lab {lab_name}: 1 policies applied on 3 nodes\n")

    code, out, _ = run("lab", "probe", "--name", lab_name, "--port", "80/TCP", "-o", "json")
    assert code == 0
    kernel = flows(out)
    code, out, _ = run("matrix", "-f", COLORS, "--port", "80/TCP", "-o", "json")
    analyzer = flows(out)
    assert {k: f["allowed"] for k, f in kernel.items()} == {k: f["allowed"] for k, f in analyzer.items()}
    assert {f["result"] for f in kernel.values() if not f["allowed"]} == {"timeout"}  # NetworkPolicy drops


@pytest.mark.parametrize("ports", [("80/TCP",), ("80/UDP",), ("80/TCP", "80/UDP", "ICMP")])
def test_lab_run_kernel_verdicts_equal_the_analyzer_for_colors(run: Run, lab_name: str, ports: tuple[str, ...]) -> None:
    pytest.importorskip("netfence.dataplane.apply")
    argv = ["lab", "run", "-f", COLORS, "--name", lab_name, "-o", "json"]
    code, out, err = run(*argv, *(arg for port in ports for arg in ("--port", port)))
    assert code == 0, err
    data = json.loads(out)
    assert data["mismatches"] == 0
    assert len(data["flows"]) == len(ports) * 36
    assert all(set(f) == FLOW_KEYS | {"predicted"} for f in data["flows"])
    assert all(f["allowed"] == f["predicted"] for f in data["flows"])
    assert any(not f["allowed"] for f in data["flows"]), "the policy was enforced"
    red, blue, green = "dev/red-778f756b64-g69gz", "dev/blue-786db8bbc8-pvz95", "dev/green-98c6b676d-45ktr"
    by_key = flows(out)
    if "80/TCP" in ports:
        assert by_key[(blue, red, 80, "TCP")]["allowed"] is True
        assert by_key[(green, red, 80, "TCP")]["allowed"] is False
        assert by_key[(red, green, 80, "TCP")]["allowed"] is True
        assert by_key[(red, blue, 80, "TCP")]["allowed"] is False


def test_lab_run_exits_1_and_counts_mismatches_when_kernel_and_analyzer_disagree(
    run: Run, lab_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = control.predict

    def inverted(*args: Any) -> Matrix:
        matrix = real(*args)
        return Matrix(matrix.endpoints, matrix.ports, ~matrix.allowed)

    monkeypatch.setattr(control, "predict", inverted)
    code, out, _ = run("lab", "run", "-f", COLORS_CLUSTER, "--name", lab_name, "--port", "80/TCP")
    assert code == 1
    assert out.count("MISMATCH  ") == 36
    assert out.endswith("36 mismatches between the kernel and the analyzer\n")


def test_lab_clean_removes_one_lab(run: Run, lab_name: str) -> None:
    assert run("lab", "up", "-f", COLORS_CLUSTER, "--name", lab_name)[0] == 0
    code, out, _ = run("lab", "clean", "--name", lab_name)
    assert (code, out) == (0, "lab clean: 10 netns deleted, 1 processes stopped, 1 state files removed\n")
    assert run("lab", "clean", "--name", lab_name)[1] == "lab clean: nothing to remove\n"
