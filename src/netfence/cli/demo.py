"""netfence demo: the field scenarios netfence started from, enforced by the real kernel.

For each scenario a lab (network namespaces on this machine) is built once; each step applies
its policies with the nftables compiler, probes every pod pair on every port from inside the
pods, and sets the kernel's truth table beside the analyzer's prediction. Then it asks the
questions the original write-ups answered with ping and curl. Without root (or nft), or with
--analyzer-only, it shows the analyzer's matrices instead. Exit 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO

from netfence.analysis.explain import explain_policies
from netfence.analysis.matrix import compute_matrix
from netfence.analysis.verdict import Flow, evaluate
from netfence.cli.common import flow_port
from netfence.cli.targets import resolve_party
from netfence.errors import UsageError
from netfence.ir.build import build_ruleset
from netfence.ir.types import Ruleset
from netfence.lab.clean import clean
from netfence.lab.control import compare, down, enforce, up
from netfence.lab.plan import check_lab_name, lab_inventory
from netfence.model.inventory import Inventory
from netfence.model.ports import FlowPort
from netfence.output.lab import lab_comparison_table
from netfence.output.render import matrix_table, verdict_text
from netfence.sources.load import load_inventory

LAB_NAME = "demo"


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
                ("80/TCP", "ICMP"),
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
    Scenario(
        "calico-default-deny",
        "Calico GlobalNetworkPolicies: cluster-wide default deny, then the exceptions a Rancher cluster needs",
        (
            Step(
                "default deny for ingress and egress, egress to port 53 excepted: DNS still fails at the DNS pods",
                ("calico-default-deny/cluster.yaml", "calico-default-deny/default-deny.yaml"),
                ("53/UDP", "80/TCP", "6379/TCP"),
                (("shop/web-5c9f7b8d4-qq7wz", "kube-system/coredns-6f6b679f8f-k2xq9", "53/UDP"),),
            ),
            Step(
                "with DNS ingress, the cattle agent, the API server, the ingress controller and redis consumers",
                (
                    "calico-default-deny/cluster.yaml",
                    "calico-default-deny/default-deny.yaml",
                    "calico-default-deny/exceptions.yaml",
                ),
                ("53/UDP", "80/TCP", "6379/TCP"),
                (
                    ("shop/web-5c9f7b8d4-qq7wz", "kube-system/coredns-6f6b679f8f-k2xq9", "53/UDP"),
                    ("ingress-nginx/nginx-ingress-controller-x8k2p", "shop/web-5c9f7b8d4-qq7wz", "80/TCP"),
                    ("cache/worker-6b7d9c-jx2lp", "cache/redis-0", "6379/TCP"),
                    ("batch/report-7f8d6c-m4n5p", "cache/redis-0", "6379/TCP"),
                ),
            ),
        ),
    ),
    Scenario(
        "calico-tiers",
        "a Calico tier that passes internal zones on, and a Deny at order 100 before an Allow at order 200",
        (
            Step(
                "tier security, then the default tier",
                ("calico-tiers/cluster.yaml", "calico-tiers/policies.yaml"),
                ("80/TCP",),
                (
                    ("app/scanner", "app/web", "80/TCP"),
                    ("office/laptop", "app/web", "80/TCP"),
                    ("guest/phone", "app/web", "80/TCP"),
                ),
            ),
        ),
    ),
    Scenario(
        "admin-policies",
        "AdminNetworkPolicy over NetworkPolicy: Deny wins, Pass delegates, the baseline denies the rest",
        (
            Step(
                "ANP Deny at priority 10, ANP Pass at 20, NetworkPolicies, BaselineAdminNetworkPolicy",
                ("admin-policies/cluster.yaml", "admin-policies/policies.yaml"),
                ("80/TCP", "5432/TCP"),
                (
                    ("sandbox/tester", "shop/db", "5432/TCP"),
                    ("monitoring/prometheus", "shop/db", "5432/TCP"),
                    ("monitoring/prometheus", "shop/api", "80/TCP"),
                ),
            ),
        ),
    ),
    Scenario(
        "layered",
        "every policy kind in one cluster, in one order: ANP, Calico tiers, NetworkPolicy, baseline",
        (
            Step(
                "admin tier, tier security, default tier, baseline tier",
                ("layered/cluster.yaml", "layered/policies.yaml", "layered/baseline.yaml"),
                ("80/TCP", "5432/TCP"),
                (
                    ("a1/api", "a1/db", "5432/TCP"),
                    ("a1/scanner", "a1/web", "80/TCP"),
                    ("b/scanner", "a1/web", "80/TCP"),
                    ("b/untrusted", "a1/api", "80/TCP"),
                ),
            ),
        ),
    ),
    Scenario(
        "whitelist",
        "one whitelist for pods and a VM outside the cluster: HAProxy -> WordPress (NodePort) -> MySQL",
        (
            Step(
                "a GlobalNetworkPolicy on labels and Service names, enforced on the nodes and by the VM itself",
                ("whitelist/cluster.yaml", "whitelist/whitelist.yaml"),
                ("80/TCP", "3306/TCP"),
                (
                    ("ext/client", "ext/haproxy", "80/TCP"),
                    ("ext/haproxy", "wordpress/wordpress-6dfdd9f64f-d75j2", "80/TCP"),
                    ("wordpress/wordpress-6dfdd9f64f-d75j2", "wordpress/wordpress-mysql-5b58bbd695-gxtc4", "3306/TCP"),
                    ("wordpress/toolbox", "wordpress/wordpress-mysql-5b58bbd695-gxtc4", "3306/TCP"),
                ),
            ),
        ),
    ),
)


def scenario_dir() -> Path:
    return Path(str(resources.files("netfence") / "scenarios"))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("demo", help="run the field scenarios in the lab: kernel verdicts against the analyzer")
    parser.add_argument("--scenario", choices=[s.name for s in SCENARIOS], help="run only this scenario")
    parser.add_argument(
        "--analyzer-only", action="store_true", help="do not build a lab; show the analyzer's matrices only"
    )
    parser.add_argument(
        "--name",
        type=_lab_name,
        default=LAB_NAME,
        help=f"name of the lab the demo builds, as `netfence lab --name` (default {LAB_NAME}); demos run at once need different names",
    )
    parser.set_defaults(run=run)


def _lab_name(text: str) -> str:
    try:
        return check_lab_name(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--name: ")) from None


def lab_available() -> str | None:
    """None when this machine can run the lab, else why not."""
    if os.geteuid() != 0:
        return "the lab needs root"
    missing = [tool for tool in ("ip", "nft", "conntrack", "nsenter") if shutil.which(tool) is None]
    return f"the lab needs {', '.join(missing)}" if missing else None


def run(args: argparse.Namespace) -> int:
    base = scenario_dir()
    out = sys.stdout
    why_not = "--analyzer-only" if args.analyzer_only else lab_available()
    if why_not is not None:
        print(f"note: showing the analyzer's matrices only ({why_not})\n", file=out)
    mismatches = 0
    for scenario in SCENARIOS:
        if args.scenario and scenario.name != args.scenario:
            continue
        print(f"=== {scenario.name}: {scenario.title}", file=out)
        if why_not is None:
            mismatches += _in_lab(scenario, base, out, args.name)
        else:
            for step in scenario.steps:
                inventory, ruleset, ports = _step(step, base, out)
                matrix_table(compute_matrix(ruleset, ports), out)
                _queries(step, inventory, ruleset, out)
        print(file=out)
    if why_not is None:
        word = "flow" if mismatches == 1 else "flows"
        verdict = "the kernel did exactly what the analyzer predicted" if not mismatches else "MISMATCH"
        print(f"demo: {mismatches} {word} where kernel and analyzer disagree: {verdict}", file=out)
    return 1 if mismatches else 0


def _step(step: Step, base: Path, out: IO[str]) -> tuple[Inventory, Ruleset, list[FlowPort]]:
    files = [str(base / f) for f in step.files]
    print(f"\n--- {step.title}", file=out)
    shown = " ".join(f"-f {os.path.relpath(f)}" for f in files)
    print(f"    netfence lab run {shown} --port {' --port '.join(step.ports)}", file=out)
    inventory = load_inventory(files).inventory
    ruleset = build_ruleset(inventory)
    items = explain_policies(inventory, ruleset)
    for item in items:
        name = f"{item.namespace}/{item.name}" if item.namespace else item.name
        print(f"    {item.kind} {name}: {item.summary}", file=out)
        for direction, text in item.directions:
            print(f"      {direction}: {text}", file=out)
    if not items:
        print("    (no policy)", file=out)
    return inventory, ruleset, [flow_port(p) for p in step.ports]


def _queries(step: Step, inventory: Inventory, ruleset: Ruleset, out: IO[str]) -> None:
    for source, destination, port in step.queries:
        flow = Flow(
            resolve_party(inventory, ruleset, source, None, "--from"),
            resolve_party(inventory, ruleset, destination, None, "--to"),
            flow_port(port),
        )
        print(f"\n    netfence query -f ... --from {source} --to {destination} --port {port}", file=out)
        verdict_text(evaluate(ruleset, flow), out)


def _in_lab(scenario: Scenario, base: Path, out: IO[str], name: str = LAB_NAME) -> int:
    """Build the scenario's cluster once in lab `name`, then apply and probe each step;
    mismatches found."""
    ports = list(dict.fromkeys(flow_port(p) for step in scenario.steps for p in step.ports))
    first = load_inventory([str(base / f) for f in scenario.steps[0].files]).inventory
    clean(name)  # a demo that crashed earlier must not stop this one
    plan = up(first, name, ports).state.plan
    mismatches = 0
    try:
        for step in scenario.steps:
            inventory, ruleset, step_ports = _step(step, base, out)
            in_lab = build_ruleset(lab_inventory(inventory, plan))
            enforce(plan, in_lab)
            comparison = compare(plan, in_lab, step_ports)
            report = comparison.report
            print("    the kernel's truth table:", file=out)
            lab_comparison_table(
                comparison.actual, report.outcomes, comparison.predicted, report.counts(), report.seconds, out
            )
            mismatches += comparison.mismatches + comparison.wrong_pod
            _queries(step, inventory, ruleset, out)
    finally:
        down(name)
    return mismatches
