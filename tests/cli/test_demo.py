"""`netfence demo`: the field scenarios, in the lab when it can run, else through the analyzer."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import IO

import pytest

from netfence.cli import demo
from netfence.cli.demo import SCENARIOS
from netfence.cli.main import main

STEPS = sum(len(s.steps) for s in SCENARIOS)


def test_demo_analyzer_only_shows_every_scenario_step(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--analyzer-only"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("note: showing the analyzer's matrices only (--analyzer-only)")
    assert [line for line in out.splitlines() if line.startswith("=== ")] == [
        "=== colors: dev/prod with red, green and blue pods: ingress and egress with matchExpressions",
        "=== wordpress: WordPress locked down in three steps",
        "=== ingress-controller: an ingress controller in kube-system: one peer (AND) versus two peers (OR)",
        *(f"=== {s.name}: {s.title}" for s in SCENARIOS[3:]),
    ]
    assert {"calico-default-deny", "calico-tiers", "admin-policies", "layered"} <= {s.name for s in SCENARIOS}
    assert out.count("\n--- ") == STEPS
    assert "TCP/3306: 8 of 9 flows allowed, 1 denied" in out  # WordPress step 3, the last matrix of 3306


def test_demo_builds_its_lab_under_the_name_given_and_demo_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []

    def in_lab(scenario: demo.Scenario, base: Path, out: IO[str], name: str = demo.LAB_NAME) -> int:
        built.append(name)
        return 0

    monkeypatch.setattr(demo, "lab_available", lambda: None)
    monkeypatch.setattr(demo, "_in_lab", in_lab)
    assert main(["demo", "--scenario", "colors"]) == 0
    assert main(["demo", "--scenario", "colors", "--name", "ci42"]) == 0
    assert built == ["demo", "ci42"]


def test_a_demo_lab_name_is_a_lab_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["demo", "--name", "my-demo"])
    assert caught.value.code == 2
    assert "argument --name: expected 1-32 lowercase letters or digits, got 'my-demo'" in capsys.readouterr().err


@pytest.mark.lab
def test_demo_in_the_lab_finds_the_kernel_agreeing_with_the_analyzer(capsys: pytest.CaptureFixture[str]) -> None:
    # A name of its own: another test run on this machine may be running the demo too.
    name = f"t{uuid.uuid4().hex[:12]}"
    assert main(["demo", "--name", name]) == 0
    out = capsys.readouterr().out
    assert out.count("the kernel's truth table:") == STEPS
    assert out.count("0 mismatches between the kernel and the analyzer") == STEPS
    assert "ICMP: 26 of 36 flows allowed, 10 denied" in out  # dev/red pings nobody and nobody pings it
    assert out.rstrip().endswith("demo: 0 flows where kernel and analyzer disagree: the kernel did exactly what the analyzer predicted")
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert f"netfence-{name}-" not in left  # the demo's lab is gone
