"""What Calico tiers and AdminNetworkPolicies cost on top of Kubernetes NetworkPolicies.

Run:

    .venv/bin/python bench/bench_tiers.py --pods 1000 --policies 200 [--extra 100]

Generates the cluster with bench/generate.py (same seed, so the same bytes every time), then
writes `--extra` more policies of the other kinds beside it: Calico GlobalNetworkPolicies in a
tier `security` (Deny/Pass rules on selectors with namespaceSelector, notSelector, nets), Calico
NetworkPolicies in the default tier with orders and named ports, GlobalNetworkSets, a
BaselineAdminNetworkPolicy, and AdminNetworkPolicies with Pass/Deny/Allow rules. It times
loading, building the IR and the full matrix for NetworkPolicies alone and for everything, and
prints the ratios, measured in the same run.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path

import yaml

from netfence.analysis.matrix import compute_matrix
from netfence.ir.build import build_ruleset
from netfence.model.ports import parse_flow_port
from netfence.sources.load import load_inventory

HERE = Path(__file__).parent
PORTS = [parse_flow_port(p) for p in ("80/TCP", "8080/TCP", "5432/TCP", "53/UDP")]


def extra_policies(namespaces: list[str], apps: list[str], count: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    docs: list[dict[str, object]] = [
        {"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "security"}, "spec": {"order": 100}}
    ]
    for i in range(max(1, count // 10)):
        docs.append({
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkSet",
            "metadata": {"name": f"ext-{i}", "labels": {"zone": rng.choice(["partner", "internet", "office"])}},
            "spec": {"nets": [f"203.0.{i % 250}.0/24"]},
        })
    for i in range(count):
        kind = i % 4
        app = rng.choice(apps)
        ns = rng.choice(namespaces)
        if kind == 0:
            docs.append({
                "apiVersion": "projectcalico.org/v3",
                "kind": "GlobalNetworkPolicy",
                "metadata": {"name": f"security.g{i}"},
                "spec": {
                    "tier": "security",
                    "order": rng.randint(1, 100),
                    "selector": f"app == '{app}'",
                    "types": ["Ingress"],
                    "ingress": [
                        {"action": "Deny", "source": {"selector": "zone == 'internet'"}},
                        {"action": "Deny", "protocol": "TCP", "source": {"namespaceSelector": f"env == '{rng.choice(['dev', 'staging'])}'", "notSelector": f"app == '{rng.choice(apps)}'"}},
                        {"action": "Pass"},
                    ],
                },
            })
        elif kind == 1:
            docs.append({
                "apiVersion": "projectcalico.org/v3",
                "kind": "NetworkPolicy",
                "metadata": {"name": f"c{i}", "namespace": ns},
                "spec": {
                    **({"order": order} if (order := rng.choice([None, 10, 500, 2000])) is not None else {}),
                    "selector": f"app == '{app}'",
                    "types": ["Ingress", "Egress"],
                    "ingress": [{"action": "Allow", "protocol": "TCP", "source": {"selector": f"tier in {{'web', 'api'}}"}, "destination": {"ports": ["http", 9090]}}],
                    "egress": [{"action": "Allow", "protocol": "UDP", "destination": {"ports": [53]}}, {"action": "Allow", "protocol": "TCP", "destination": {"nets": ["10.244.0.0/16"], "notPorts": [22]}}],
                },
            })
        elif kind == 2:
            docs.append({
                "apiVersion": "policy.networking.k8s.io/v1alpha1",
                "kind": "AdminNetworkPolicy",
                "metadata": {"name": f"a{i}"},
                "spec": {
                    "priority": rng.randint(0, 1000),
                    "subject": {"namespaces": {"matchLabels": {"env": rng.choice(["prod", "dev"])}}},
                    "ingress": [
                        {"action": "Pass", "from": [{"namespaces": {"matchLabels": {"team": rng.choice(["payments", "search"])}}}]},
                        {"action": "Deny", "from": [{"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": rng.choice(apps)}}}}], "ports": [{"portRange": {"start": 8000, "end": 9000}}]},
                    ],
                },
            })
        else:
            docs.append({
                "apiVersion": "projectcalico.org/v3",
                "kind": "GlobalNetworkPolicy",
                "metadata": {"name": f"g{i}"},
                "spec": {
                    "selector": f"has(app) && app != '{app}'",
                    "namespaceSelector": "env == 'prod'",
                    "types": ["Egress"],
                    "egress": [{"action": "Log"}, {"action": "Allow", "protocol": "TCP", "destination": {"namespaceSelector": "all()", "selector": f"app == '{rng.choice(apps)}'", "ports": ["5000:6000"]}}],
                },
            })
    docs.append({
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "BaselineAdminNetworkPolicy",
        "metadata": {"name": "default"},
        "spec": {"subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]},
    })
    return docs


def timed(label: str, fn, results: dict[str, float]):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn()
    results[label] = time.perf_counter() - start
    return value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--policies", type=int, default=200)
    parser.add_argument("--extra", type=int, default=None, help="policies of the other kinds (default: as many)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    extra = args.policies if args.extra is None else args.extra
    out = HERE / "out" / f"c{args.pods}p{args.policies}s{args.seed}"
    subprocess.run(
        [sys.executable, str(HERE / "generate.py"), "--pods", str(args.pods), "--policies", str(args.policies),
         "--seed", str(args.seed), "--out", str(out)],
        check=True,
    )
    base = load_inventory([str(out)]).inventory
    namespaces = sorted({p.namespace for p in base.pods})
    apps = sorted({p.labels.get("app", "") for p in base.pods} - {""})
    extra_file = HERE / "out" / f"tiers-{args.pods}-{extra}-{args.seed}.yaml"
    extra_file.write_text(yaml.safe_dump_all(extra_policies(namespaces, apps, extra, args.seed), sort_keys=False))

    rows = []
    for label, paths in (("NetworkPolicy only", [str(out)]), ("+ Calico and ANP", [str(out), str(extra_file)])):
        t: dict[str, float] = {}
        inventory = timed("load", lambda: load_inventory(paths).inventory, t)
        ruleset = timed("build", lambda: build_ruleset(inventory), t)
        timed("matrix", lambda: compute_matrix(ruleset, PORTS), t)
        rules = sum(len(p.rules) for d in (ruleset.ingress, ruleset.egress) for tier in d for p in tier.policies)
        rows.append((label, inventory.policy_count, rules, t))
    print(f"{args.pods} pods, {len(PORTS)} ports")
    print(f"{'':22} {'policies':>8} {'IR rules':>8} {'load s':>8} {'build s':>8} {'matrix s':>9}")
    for label, count, rules, t in rows:
        print(f"{label:22} {count:8} {rules:8} {t['load']:8.3f} {t['build']:8.3f} {t['matrix']:9.3f}")
    a, b = rows[0][3], rows[1][3]
    print("ratio (everything / NetworkPolicy only): " + ", ".join(f"{k} {b[k] / a[k]:.2f}x" for k in ("load", "build", "matrix")))


if __name__ == "__main__":
    main()
