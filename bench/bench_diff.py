"""Time `netfence diff` against its yardstick, two matrices, on generated clusters.

Run (from the repository root, after `bash scripts/setup.sh`):

    .venv/bin/python bench/bench_diff.py                       # 1,000 and 5,000 pods
    .venv/bin/python bench/bench_diff.py --sizes 1000 --repeat 3

Each size's cluster comes from bench/generate.py (policies = pods/5), generated into bench/out/
or reused from there as bench_matrix.py does. The new side is the same inventory with one edit:

    trim              every 20th NetworkPolicy removed (a routine change)
    deny-namespaces   a default deny of ingress and egress added to 5 application namespaces
    deny-everywhere   a default deny of ingress added to every namespace (most flows change)

and, on the ports `diff` compares by default (netfence.analysis.diff.default_ports), in this
process:

    two matrices   compute_matrix(old) + compute_matrix(new) over every endpoint: the yardstick
    diff           diff_rulesets: joint classes, both matrices on their representatives, the
                   changed class pairs, one `evaluate` per distinct decision, the blocks
    table          summarize + the table text (to os.devnull)
    json           every changed flow as `-o json` writes it (to os.devnull)
    compared       (--naive) the two matrices expanded and compared cell by cell: what diffing
                   two `matrix` outputs costs, without explanations (ports x pods x pods bytes
                   per side: 1.1 GB at 5,000 pods and 22 ports)

Times are CPU seconds of this process (time.process_time: steadier than the wall clock on a
shared machine; every phase is single-threaded), best of --repeat runs. Building the rulesets is
not counted: both ways need it.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import bench_matrix  # noqa: E402
import numpy as np  # noqa: E402

from netfence.analysis.diff import Snapshot, default_ports, diff_rulesets, summarize  # noqa: E402
from netfence.analysis.matrix import compute_matrix  # noqa: E402
from netfence.ir.build import build_ruleset  # noqa: E402
from netfence.ir.types import Ruleset  # noqa: E402
from netfence.model.inventory import Inventory  # noqa: E402
from netfence.model.labels import LabelSelector  # noqa: E402
from netfence.model.policies import Direction, NetworkPolicy  # noqa: E402
from netfence.model.ports import FlowPort  # noqa: E402
from netfence.output.diff import diff_json, diff_table  # noqa: E402
from netfence.sources.load import load_inventory  # noqa: E402

T = TypeVar("T")


def best(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    fastest = float("inf")
    values: list[T] = []
    for _ in range(repeat):
        values.clear()
        gc.collect()
        start = time.process_time()
        values.append(fn())
        fastest = min(fastest, time.process_time() - start)
    return fastest, values[0]


def deny(namespace: str, name: str, directions: frozenset[Direction]) -> NetworkPolicy:
    return NetworkPolicy(namespace, name, LabelSelector(), directions)


def edits(inventory: Inventory) -> dict[str, Inventory]:
    policies = inventory.policies
    applications = sorted({p.namespace for p in policies if p.name == "default-deny-ingress"})
    both = frozenset(Direction)
    everywhere = sorted({ns.name for ns in inventory.namespaces} | {p.namespace for p in inventory.pods})
    return {
        "trim": dataclasses.replace(inventory, policies=tuple(p for i, p in enumerate(policies) if i % 20 != 7)),
        "deny-namespaces": dataclasses.replace(
            inventory, policies=policies + tuple(deny(ns, "bench-deny-all", both) for ns in applications[:5])
        ),
        "deny-everywhere": dataclasses.replace(
            inventory,
            policies=policies + tuple(deny(ns, "bench-deny-ingress", frozenset({Direction.INGRESS})) for ns in everywhere),
        ),
    }


def naive(old: Ruleset, new: Ruleset, ports: list[FlowPort]) -> int:
    """Changed flows counted by expanding both matrices (self pairs are allowed on both sides)."""
    return int(np.count_nonzero(compute_matrix(old, ports).allowed != compute_matrix(new, ports).allowed))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000", help="pod counts, comma-separated (default 1000,5000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each phase; the best counts")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out", help="where clusters are generated")
    parser.add_argument("--naive", action="store_true", help="also time expanding and comparing two matrices")
    args = parser.parse_args(argv)
    head = f"{'pods':>6} {'edit':<16} {'ports':>5} {'changed flows':>14} {'2 matrices':>11} "
    head += f"{'diff':>7} {'table':>7} {'json':>7}" + (f" {'compared':>9}" if args.naive else "")
    print(head)
    for pods in (int(s) for s in args.sizes.split(",")):
        directory, _ = bench_matrix.ensure_cluster(pods, pods // 5, args.seed, args.out, False)
        inventory = load_inventory([str(directory)]).inventory
        old = Snapshot(inventory, build_ruleset(inventory))
        for edit, changed in edits(inventory).items():
            new = Snapshot(changed, build_ruleset(changed))
            ports = default_ports(old, new)
            matrices, _ = best(
                args.repeat, lambda: (compute_matrix(old.ruleset, ports), compute_matrix(new.ruleset, ports))
            )
            seconds, diff = best(args.repeat, lambda: diff_rulesets(old.ruleset, new.ruleset, ports))
            table, _ = best(args.repeat, lambda: diff_table(diff, summarize(diff, new.inventory), io.StringIO()))
            with open(os.devnull, "w") as sink:
                as_json, _ = best(args.repeat, lambda: diff_json(diff, sink))
            line = (
                f"{pods:>6} {edit:<16} {len(ports):>5} {diff.count:>14,} {matrices:>10.2f}s {seconds:>6.2f}s "
                f"{table:>6.2f}s {as_json:>6.2f}s"
            )
            if args.naive:
                compared, changed_cells = best(args.repeat, lambda: naive(old.ruleset, new.ruleset, ports))
                assert changed_cells == diff.count
                line += f" {compared:>8.2f}s"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
