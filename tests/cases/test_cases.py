"""The field scenarios as data: each case file names its inputs and the verdicts they must give.

A case lists either every allowed flow between two different pods (`allowed`, or `all`) or every
denied one (`denied`); all other flows must have the opposite verdict. `flows` pins single
verdicts and the rule (or reason) that decided each side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from netfence.analysis.matrix import compute_matrix
from netfence.analysis.verdict import Flow, Party, SideVerdict, evaluate
from netfence.cli.demo import scenario_dir
from netfence.ir.build import build_ruleset
from netfence.ir.types import Ruleset
from netfence.model.ports import parse_flow_port
from netfence.sources.load import load_inventory

CASES = sorted(Path(__file__).parent.glob("*.yaml"))


def load_case(path: Path) -> tuple[dict[str, Any], Ruleset]:
    case = yaml.safe_load(path.read_text())
    inventory = load_inventory([str(scenario_dir() / f) for f in case["files"]]).inventory
    return case, build_ruleset(inventory)


def flows_of(ruleset: Ruleset, ports: list[str]) -> dict[str, bool]:
    """`from -> to port` of every flow between two different pods, with its matrix verdict."""
    parsed = [parse_flow_port(p) for p in ports]
    matrix = compute_matrix(ruleset, parsed)
    out = {}
    for p, port in enumerate(ports):
        for i, src in enumerate(matrix.endpoints):
            for j, dst in enumerate(matrix.endpoints):
                if i != j:
                    out[f"{src.id} -> {dst.id} {port}"] = bool(matrix.allowed[p, i, j])
    return out


def describe(side: SideVerdict) -> str:
    return str(side.rule) if side.rule is not None else str(side.reason)


@pytest.mark.parametrize("path", [p for p in CASES if "ports" in yaml.safe_load(p.read_text())], ids=lambda p: p.stem)
def test_case_matrix(path: Path) -> None:
    case, ruleset = load_case(path)
    flows = flows_of(ruleset, case["ports"])
    if case.get("allowed") == "all":
        expected = {k: True for k in flows}
    elif "allowed" in case:
        unknown = set(case["allowed"]) - set(flows)
        assert not unknown, f"flows not in the inventory: {unknown}"
        expected = {k: k in case["allowed"] for k in flows}
    else:
        unknown = set(case["denied"]) - set(flows)
        assert not unknown, f"flows not in the inventory: {unknown}"
        expected = {k: k not in case["denied"] for k in flows}
    assert {k for k, v in flows.items() if v != expected[k]} == set()


@pytest.mark.parametrize("path", [p for p in CASES if "flows" in yaml.safe_load(p.read_text())], ids=lambda p: p.stem)
def test_case_verdicts_and_deciding_rules(path: Path) -> None:
    case, ruleset = load_case(path)
    for item in case["flows"]:
        source, destination = ruleset.endpoint(item["from"]), ruleset.endpoint(item["to"])
        assert source is not None and destination is not None
        verdict = evaluate(ruleset, Flow(Party.of(source), Party.of(destination), parse_flow_port(item["port"])))
        assert verdict.allowed == item["allowed"], item
        for side in ("egress", "ingress"):
            if side in item:
                assert describe(getattr(verdict, side)) == item[side], (item, side)


def test_two_peers_allow_strictly_more_than_one_peer() -> None:
    """The `-` before podSelector: same YAML otherwise, and every kube-system pod gets in."""
    _, one = load_case(Path(__file__).parent / "ingress-controller-one-peer.yaml")
    _, two = load_case(Path(__file__).parent / "ingress-controller-two-peers.yaml")
    allowed_one = {k for k, v in flows_of(one, ["80/TCP"]).items() if v}
    allowed_two = {k for k, v in flows_of(two, ["80/TCP"]).items() if v}
    assert allowed_one < allowed_two
    assert allowed_two - allowed_one == {
        "kube-system/coredns-7db6d8ff4d-m2x8p -> prod/green-74f9c459f8-4b7gz 80/TCP",
        "kube-system/metrics-server-6d94bc8694-wq7zt -> prod/green-74f9c459f8-4b7gz 80/TCP",
    }
