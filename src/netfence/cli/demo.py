"""netfence demo: the field scenarios netfence started from, run through the analyzer.

Each step loads the scenario's files as `-f` would, prints the reachability matrix and asks the
questions the original write-ups answered with ping and curl.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from netfence.analysis.matrix import compute_matrix
from netfence.analysis.verdict import Flow, evaluate
from netfence.cli.common import flow_port
from netfence.cli.targets import resolve_party
from netfence.ir.build import build_ruleset
from netfence.output.render import matrix_table, verdict_text
from netfence.sources.load import load_inventory


@dataclass(frozen=True)
class Step:
    title: str
    files: tuple[str, ...]
    ports: tuple[str, ...]
    #: (from, to, port) questions
    queries: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    steps: tuple[Step, ...]


SCENARIOS = (
    Scenario(
        "colors",
        "dev/prod with red, green and blue pods: ingress and egress with matchExpressions",
        (
            Step(
                "dev/red accepts TCP 80 from dev/blue only, and reaches dev/green on TCP 80 only",
                ("colors/cluster.yaml", "colors/allow-tcp-80-from-blue-to-green.yaml"),
                ("80/TCP",),
                (
                    ("dev/blue-786db8bbc8-pvz95", "dev/red-778f756b64-g69gz", "80/TCP"),
                    ("dev/green-98c6b676d-45ktr", "dev/red-778f756b64-g69gz", "80/TCP"),
                    ("dev/red-778f756b64-g69gz", "dev/green-98c6b676d-45ktr", "80/TCP"),
                    ("dev/red-778f756b64-g69gz", "dev/blue-786db8bbc8-pvz95", "80/TCP"),
                    ("dev/blue-786db8bbc8-pvz95", "dev/red-778f756b64-g69gz", "ICMP"),
                ),
            ),
        ),
    ),
    Scenario(
        "wordpress",
        "WordPress locked down in three steps",
        (
            Step("no policy: everything may connect", ("wordpress/cluster.yaml",), ("80/TCP", "3306/TCP")),
            Step(
                "step 1: default deny for every pod of the namespace",
                ("wordpress/cluster.yaml", "wordpress/step1-default-deny.yaml"),
                ("80/TCP", "3306/TCP"),
            ),
            Step(
                "step 2: the frontend accepts everything",
                ("wordpress/cluster.yaml", "wordpress/step1-default-deny.yaml", "wordpress/step2-allow-frontend.yaml"),
                ("80/TCP", "3306/TCP"),
            ),
            Step(
                "step 3: MySQL accepts TCP 3306 from the frontend only",
                (
                    "wordpress/cluster.yaml",
                    "wordpress/step1-default-deny.yaml",
                    "wordpress/step2-allow-frontend.yaml",
                    "wordpress/step3-allow-mysql-from-frontend.yaml",
                ),
                ("80/TCP", "3306/TCP"),
                (
                    ("wordpress/wordpress-7d5f9c6b8-x2k4q", "wordpress/wordpress-mysql-0", "3306/TCP"),
                    ("tools/toolbox", "wordpress/wordpress-mysql-0", "3306/TCP"),
                ),
            ),
        ),
    ),
    Scenario(
        "ingress-controller",
        "an ingress controller in kube-system: one peer (AND) versus two peers (OR)",
        (
            Step(
                "namespaceSelector and podSelector in ONE peer: only the controller reaches prod/green",
                ("ingress-controller/cluster.yaml", "ingress-controller/one-peer.yaml"),
                ("80/TCP",),
                (("kube-system/coredns-7db6d8ff4d-m2x8p", "prod/green-74f9c459f8-4b7gz", "80/TCP"),),
            ),
            Step(
                "the same with a '-' before podSelector: TWO peers, every kube-system pod gets in",
                ("ingress-controller/cluster.yaml", "ingress-controller/two-peers.yaml"),
                ("80/TCP",),
                (("kube-system/coredns-7db6d8ff4d-m2x8p", "prod/green-74f9c459f8-4b7gz", "80/TCP"),),
            ),
        ),
    ),
)


def scenario_dir() -> Path:
    return Path(str(resources.files("netfence") / "scenarios"))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("demo", help="run the field scenarios through netfence")
    parser.add_argument("--scenario", choices=[s.name for s in SCENARIOS], help="run only this scenario")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    base = scenario_dir()
    out = sys.stdout
    for scenario in SCENARIOS:
        if args.scenario and scenario.name != args.scenario:
            continue
        print(f"=== {scenario.name}: {scenario.title}", file=out)
        for step in scenario.steps:
            files = [str(base / f) for f in step.files]
            print(f"\n--- {step.title}", file=out)
            shown = " ".join(f"-f {os.path.relpath(f)}" for f in files)
            print(f"    netfence matrix {shown} --port {' --port '.join(step.ports)}", file=out)
            inventory = load_inventory(files).inventory
            ruleset = build_ruleset(inventory)
            ports = [flow_port(p) for p in step.ports]
            matrix_table(compute_matrix(ruleset, ports), out)
            for source, destination, port in step.queries:
                flow = Flow(
                    resolve_party(inventory, ruleset, source, None, "--from"),
                    resolve_party(inventory, ruleset, destination, None, "--to"),
                    flow_port(port),
                )
                print(f"\n    netfence query -f ... --from {source} --to {destination} --port {port}", file=out)
                verdict_text(evaluate(ruleset, flow), out)
        print(file=out)
    return 0
