"""Long run of the matrix differential properties: the class engine against the per-flow evaluator.

Run (from the repository root, after `bash scripts/setup.sh`):

    .venv/bin/python bench/fuzz_matrix.py                      # 5,000 IR rulesets, 2,000 clusters
    .venv/bin/python bench/fuzz_matrix.py --ir 20000 --clusters 5000 --seed 7

The same properties as tests/property/test_matrix_differential.py (IR rulesets drawn directly,
every IR feature) and test_policy_properties.py (clusters loaded from NetworkPolicy YAML), with
many more examples than CI runs. Exit status 1 on the first disagreement, which hypothesis
shrinks and prints.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "property"))

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from ir_strategies import IR_FLOW_PORTS, rulesets  # noqa: E402
from strategies import FLOW_PORTS, ClusterSpec, clusters, load  # noqa: E402
from test_matrix_differential import disagreements  # noqa: E402

from netfence.analysis.matrix import compute_matrix  # noqa: E402
from netfence.ir.types import Ruleset  # noqa: E402


def run(name: str, examples: int, random_seed: int, body: object) -> float:
    configured = settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    test = seed(random_seed)(configured(body))  # type: ignore[operator]
    start = time.perf_counter()
    test()
    seconds = time.perf_counter() - start
    print(f"{name}: {examples:,} examples, 0 disagreements, {seconds:.1f} s", flush=True)
    return seconds


@given(rulesets())
def ir_rulesets_agree(ruleset: Ruleset) -> None:
    wrong = disagreements(ruleset, compute_matrix(ruleset, IR_FLOW_PORTS))
    assert not wrong, "\n".join(wrong)


@given(clusters())
def loaded_clusters_agree(cluster: ClusterSpec) -> None:
    ruleset = load(cluster.objects).ruleset
    wrong = disagreements(ruleset, compute_matrix(ruleset, FLOW_PORTS))
    assert not wrong, "cluster:\n" + str(cluster) + "\n" + "\n".join(wrong)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ir", type=int, default=5000, help="IR rulesets (default 5,000)")
    parser.add_argument("--clusters", type=int, default=2000, help="YAML clusters (default 2,000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.ir:
            run("IR rulesets", args.ir, args.seed, ir_rulesets_agree)
        if args.clusters:
            run("loaded clusters", args.clusters, args.seed, loaded_clusters_agree)
    except AssertionError as failure:
        print(f"DISAGREEMENT\n{failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
