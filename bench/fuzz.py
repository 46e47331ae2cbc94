"""Long differential fuzz runs: the properties of tests/robustness, for many more examples.

Run:

    .venv/bin/python bench/fuzz.py [--engines 5000] [--nft 1000] [--kernel 500] [--loader 5000] [--selector 20000] [--seed N]

- engines: random clusters with policies of every kind, loaded from YAML by the real loader; the
  per-flow evaluator and compute_matrix must agree on every flow (8 ports);
- nft (root, nft, ip): random clusters of every feature (IPv6, hostNetwork pods, source ports
  included); every node's compiled table must pass `nft --check` in a scratch netns;
- kernel (root, nft, ip): random policies over one lab of six pods on two nodes (reused by every
  scenario); the kernel must let through exactly what the per-flow evaluator allows (TCP 80 and
  8080, UDP 53, ICMP echo, every pod pair);
- loader: random bytes, YAML-ish text and mutations of valid documents; only InputErrors may
  come out of load_inventory;
- selector: random Calico selector text; only SelectorError may come out of parse_selector.

A failure is shrunk by hypothesis and printed with its cluster's YAML; pin it as a regression test
(tests/robustness/test_differential_regressions.py). Exit status 1 when any property failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, note, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "robustness"))

from cluster_strategies import FLOW_PORTS, LAB_LAYOUT, ClusterSpec, clusters  # noqa: E402
from differential import KernelLab, engine_disagreements, load  # noqa: E402
from loader_fuzz import check_loader, check_selector, loader_inputs, selector_texts  # noqa: E402

from netfence.dataplane.apply import run_nft  # noqa: E402
from netfence.dataplane.nft.compile import compile_node  # noqa: E402
from netfence.ir.build import build_ruleset  # noqa: E402


def run(name: str, examples: int, random_seed: int | None, make: Callable[[settings], Callable[[], None]]) -> bool:
    options = settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck), print_blob=True
    )
    test = make(options)
    if random_seed is not None:
        test = seed(random_seed)(test)
    started = time.monotonic()
    try:
        test()
    except Exception:  # noqa: BLE001 - report every property, then fail
        traceback.print_exc()
        print(f"{name}: FAILED after {time.monotonic() - started:.0f} s", flush=True)
        return False
    print(f"{name}: {examples} examples, 0 failures, {time.monotonic() - started:.0f} s", flush=True)
    return True


def engines(options: settings) -> Callable[[], None]:
    @options
    @given(clusters())
    def prop(cluster: ClusterSpec) -> None:
        note(str(cluster))
        wrong = engine_disagreements(build_ruleset(load(cluster)), FLOW_PORTS)
        assert not wrong, "\n".join(wrong)

    return prop  # type: ignore[no-any-return]


def nft(netns: str) -> Callable[[settings], Callable[[], None]]:
    def make(options: settings) -> Callable[[], None]:
        @options
        @given(clusters())
        def prop(cluster: ClusterSpec) -> None:
            note(str(cluster))
            ruleset = build_ruleset(load(cluster))
            for node in ("node-a", "node-b", None):
                run_nft(["--check", "-f", "-"], netns, compile_node(ruleset, node).replace_script())

        return prop  # type: ignore[no-any-return]

    return make


def kernel(lab: KernelLab) -> Callable[[settings], Callable[[], None]]:
    def make(options: settings) -> Callable[[], None]:
        @options
        @given(clusters(LAB_LAYOUT, kernel=True, max_policies=6))
        def prop(cluster: ClusterSpec) -> None:
            note(str(cluster))
            wrong = lab.disagreements(cluster)
            assert not wrong, "\n".join(wrong)

        return prop  # type: ignore[no-any-return]

    return make


def loader(options: settings) -> Callable[[], None]:
    return options(given(loader_inputs())(check_loader))  # type: ignore[no-any-return]


def selector(options: settings) -> Callable[[], None]:
    return options(given(selector_texts())(check_selector))  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", type=int, default=5000)
    parser.add_argument("--nft", type=int, default=1000, help="0 to skip (needs root, nft, ip)")
    parser.add_argument("--kernel", type=int, default=500, help="0 to skip (needs root, nft, ip)")
    parser.add_argument("--loader", type=int, default=5000)
    parser.add_argument("--selector", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    ok = True
    if args.selector:
        ok &= run("selector parser", args.selector, args.seed, selector)
    if args.loader:
        ok &= run("loader", args.loader, args.seed, loader)
    if args.engines:
        ok &= run("evaluator == matrix", args.engines, args.seed, engines)
    if args.nft:
        netns = f"netfence-fuzz-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", netns], check=True)
        try:
            ok &= run("compiled tables pass nft --check", args.nft, args.seed, nft(netns))
        finally:
            subprocess.run(["ip", "netns", "del", netns], check=False)
    if args.kernel:
        lab = KernelLab()
        try:
            ok &= run("evaluator == kernel", args.kernel, args.seed, kernel(lab))
        finally:
            lab.close()
        print(f"  kernel scenarios enforced and probed: {lab.scenarios}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
