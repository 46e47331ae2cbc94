"""Time the nftables dataplane: compile + apply for N local endpoints and M policies, and the
latency of a single membership change (one pod joining a peer set) as an element update,
against a full atomic replacement measured in the same run as the baseline.

Run as root (from the repository root, after `bash scripts/setup.sh`):

    .venv/bin/python bench/bench_dataplane.py                    # 500 endpoints, 500 policies
    .venv/bin/python bench/bench_dataplane.py --pods 1000 --policies 1000

The cluster comes from bench/generate.py (into bench/out/, git-ignored). Every pod is treated as
local to one node (compile_node(..., node=None)), which is the worst case for one node. The
ruleset is applied inside a throwaway network namespace named netfence-bench-<pid>, deleted at
the end; nothing touches the root network namespace.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate  # bench/generate.py, next to this file  # noqa: E402

from netfence.dataplane.apply import apply_script, apply_table  # noqa: E402
from netfence.dataplane.nft.compile import compile_node  # noqa: E402
from netfence.dataplane.nft.objects import update_script  # noqa: E402
from netfence.ir.build import build_ruleset  # noqa: E402
from netfence.model.endpoints import EndpointId  # noqa: E402
from netfence.sources.load import load_inventory  # noqa: E402

T = TypeVar("T")


def timed(label: str, fn: Callable[[], T], rows: list[tuple[str, float, str]], note: str = "") -> T:
    start = time.perf_counter()
    value = fn()
    rows.append((label, time.perf_counter() - start, note))
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=500)
    parser.add_argument("--policies", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--changes", type=int, default=20, help="membership changes to time (default 20)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces and nft)", file=sys.stderr)
        return 2
    out = Path(__file__).resolve().parent / "out" / f"dataplane-pods{args.pods}-policies{args.policies}-seed{args.seed}"
    if not out.exists():
        generate.generate(args.pods, args.policies, args.seed, out)
    netns = f"netfence-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    rows: list[tuple[str, float, str]] = []
    try:
        inventory = timed("load_inventory", lambda: load_inventory([str(out)]).inventory, rows)
        ruleset = timed("build_ruleset", lambda: build_ruleset(inventory), rows, f"{len(ruleset_endpoints(inventory))} endpoints")
        table = timed("compile_node (all pods local)", lambda: compile_node(ruleset, None), rows)
        script = timed("render", table.replace_script, rows)
        rules = sum(len(c.rules) for c in table.chains)
        elements = sum(len(s.elements) for s in table.sets)
        shape = f"{len(table.chains)} chains, {rules} rules, {len(table.sets)} sets, {elements} set elements, {len(script) / 1e6:.2f} MB"
        timed("nft --check + first apply", lambda: apply_script(script, netns), rows, shape)
        replace = []
        for _ in range(5):
            start = time.perf_counter()
            apply_script(script, netns)
            replace.append(time.perf_counter() - start)
        rows.append(("delete+recreate (median of 5)", statistics.median(replace), "baseline for an update"))
        in_place = []
        for _ in range(5):
            start = time.perf_counter()
            assert apply_table(table, netns) == "replace"
            in_place.append(time.perf_counter() - start)
        rows.append(("in-place replace (median of 5)", statistics.median(in_place), "reads kernel names, keeps sets"))
        # One pod at a time joins: give it an address every peer set of its namespace will hold.
        updates = []
        previous = table
        victim = ruleset.endpoints[0]
        for i in range(args.changes):
            moved = ruleset_with_extra_ip(ruleset, victim.id, f"10.255.{i // 250}.{i % 250 + 1}")
            new = compile_node(moved, None)
            assert update_script(previous, new) not in (None, "")
            start = time.perf_counter()
            outcome = apply_table(new, netns, previous)
            updates.append(time.perf_counter() - start)
            assert outcome == "update", outcome
            previous = new
        median_update = statistics.median(updates)
        rows.append(("membership change (median)", median_update, f"{args.changes} changes, element updates"))
        print(f"== {args.pods} pods, {args.policies} policies (seed {args.seed}), nft {nft_version()}")
        print(f"{'phase':34} {'seconds':>8}  notes")
        for label, seconds, note in rows:
            print(f"{label:34} {seconds:8.3f}  {note}")
        print(f"membership change vs delete+recreate: {statistics.median(replace) / median_update:.1f}x faster;"
              f" vs in-place replace: {statistics.median(in_place) / median_update:.1f}x faster")
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)
    return 0


def ruleset_endpoints(inventory: object) -> list[object]:
    return [p for p in getattr(inventory, "pods", ()) if not p.host_network]


def ruleset_with_extra_ip(ruleset, endpoint_id: EndpointId, address: str):  # type: ignore[no-untyped-def]
    """The same ruleset with one more address on one endpoint: a pure membership change."""
    from dataclasses import replace
    from ipaddress import ip_address

    from netfence.ir.types import Ruleset

    endpoints = tuple(
        replace(e, ips=(*e.ips, ip_address(address))) if e.id == endpoint_id else e for e in ruleset.endpoints
    )
    return Ruleset(endpoints, ruleset.ingress, ruleset.egress, ruleset.default_action)


def nft_version() -> str:
    return subprocess.run(["nft", "--version"], capture_output=True, text=True, check=False).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
