"""Time `netfence matrix` phase by phase on generated clusters, against the per-flow evaluator.

Run (from the repository root, after `bash scripts/setup.sh`):

    .venv/bin/python bench/bench_matrix.py                        # 1,000 pods, 200 policies
    .venv/bin/python bench/bench_matrix.py --sizes 100,1000,2000  # a ladder (policies = pods/5)

For each size the cluster is generated with bench/generate.py into bench/out/ (git-ignored), or
reused when bench/out/ already holds it from the same generator. Then, in this process:

    load       netfence.sources.load.load_inventory([DIR])
    build      netfence.ir.build.build_ruleset
    matrix     netfence.analysis.matrix.compute_matrix on 80/TCP 8080/TCP 9090/TCP 53/UDP
    json       netfence.output.render.matrix_json to os.devnull (its size is counted)
    per-flow   netfence.analysis.verdict.evaluate on a uniform random sample of the matrix's
               flows (--sample, default 20,000), extrapolated to all of them; the sample's
               verdicts are compared with the matrix (they must agree: 0 disagreements), and so
               are the verdicts of a sample of the flows the matrix allows (few flows are
               allowed, so a uniform sample alone would hardly test them)

and, in a child process, the whole command line:

    cli        .venv/bin/netfence matrix -f DIR --port ... -o csv > /dev/null

Times are wall-clock (time.perf_counter); `--repeat N` runs each in-process phase N times and
keeps the best. Memory: the peak resident set size (ru_maxrss) of this process after each phase,
and of the CLI child (its VmHWM, polled every 10 ms). Sizes run in ascending order, so each
size's figure is its own peak (with `--repeat` it can be a little higher: the allocator keeps
what earlier runs freed). `--tracemalloc` adds a second, untimed pass that reports each phase's
peak Python/numpy heap. `--json FILE` saves every figure.

Exit status 1 if the two engines disagree on any sampled flow or the CLI fails.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import generate  # bench/generate.py, next to this file

from netfence.analysis.matrix import Matrix, compute_matrix
from netfence.analysis.verdict import Flow, Party, evaluate
from netfence.ir.build import build_ruleset
from netfence.model.ports import FlowPort, parse_flow_port
from netfence.output.render import matrix_json
from netfence.sources.load import load_inventory

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORTS = ("80/TCP", "8080/TCP", "9090/TCP", "53/UDP")
T = TypeVar("T")


@dataclass
class Result:
    pods: int
    policies: int
    seed: int
    directory: str
    endpoints: int = 0
    objects: int = 0
    flows: int = 0
    allowed: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    #: Peak RSS of this process (MiB) after each phase.
    rss_mib: dict[str, float] = field(default_factory=dict)
    #: Peak traced heap (MiB) of each phase, with --tracemalloc.
    heap_mib: dict[str, float] = field(default_factory=dict)
    json_mib: float = 0.0
    sample: int = 0
    sample_allowed: int = 0
    disagreements: int = 0
    allowed_sample: int = 0
    allowed_disagreements: int = 0
    per_flow_us: float = 0.0
    per_flow_full_s: float = 0.0
    cli_rc: int | None = None
    cli_rss_mib: float = 0.0
    examples: list[str] = field(default_factory=list)


class CountingSink(io.TextIOBase):
    """Writes through to os.devnull, counting characters."""

    def __init__(self) -> None:
        self.chars = 0
        self._null = open(os.devnull, "w")  # noqa: SIM115 - closed in close()

    def write(self, text: str) -> int:
        self.chars += len(text)
        return self._null.write(text)

    def close(self) -> None:
        self._null.close()
        super().close()


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def timed(result: Result, phase: str, fn: Callable[[], T], repeat: int = 1) -> T:
    """Run `fn` `repeat` times; keep the best time and the last value."""
    best = float("inf")
    values: list[T] = []
    for _ in range(repeat):
        values.clear()  # the previous run's value goes before the next run, not after
        gc.collect()
        start = time.perf_counter()
        values.append(fn())
        best = min(best, time.perf_counter() - start)
    result.seconds[phase] = best
    result.rss_mib[phase] = rss_mib()
    return values[0]


def ensure_cluster(pods: int, policies: int, seed: int, out_root: Path, regenerate: bool) -> tuple[Path, float | None]:
    """The cluster's directory, generated unless an up-to-date copy is there; the time it took."""
    directory = out_root / f"pods{pods}-policies{policies}-seed{seed}"
    stamp = directory / "GENERATED.txt"
    expected = [generate.command_line(pods, policies, seed), f"generator {generate.generator_checksum()}"]
    if not regenerate and stamp.is_file() and stamp.read_text().splitlines()[:2] == expected:
        return directory, None
    start = time.perf_counter()
    generate.generate(pods, policies, seed, directory)
    return directory, time.perf_counter() - start


def run_size(args: argparse.Namespace, pods: int, policies: int) -> Result:
    directory, gen_seconds = ensure_cluster(pods, policies, args.seed, args.out, args.regenerate)
    result = Result(pods, policies, args.seed, str(directory))
    if gen_seconds is not None:
        result.seconds["generate"] = gen_seconds
    ports = [parse_flow_port(p) for p in args.ports]

    loaded = timed(result, "load", lambda: load_inventory([str(directory)]), args.repeat)
    inventory = loaded.inventory
    result.objects = loaded.objects
    ruleset = timed(result, "build", lambda: build_ruleset(inventory), args.repeat)
    matrix = timed(result, "matrix", lambda: compute_matrix(ruleset, ports), args.repeat)
    n = len(matrix.endpoints)
    result.endpoints = n
    result.flows = len(ports) * n * n
    result.allowed = int(matrix.allowed.sum())

    result.json_mib = timed(result, "json", lambda: write_json(matrix), args.repeat) / 2**20

    # The per-flow reference evaluator on a uniform sample of the same flows.
    rng = random.Random(args.seed)
    cells = [(rng.randrange(len(ports)), rng.randrange(n), rng.randrange(n)) for _ in range(args.sample)]
    parties = [Party.of(e) for e in matrix.endpoints]
    flows = [Flow(parties[i], parties[j], ports[p]) for p, i, j in cells]
    verdicts = timed(result, "per-flow sample", lambda: [evaluate(ruleset, f).allowed for f in flows])
    result.sample = len(cells)
    result.sample_allowed = sum(verdicts)
    result.disagreements = compare(result, matrix, cells, verdicts)
    result.per_flow_us = result.seconds["per-flow sample"] / max(1, len(cells)) * 1e6
    result.per_flow_full_s = result.per_flow_us * result.flows / 1e6

    # Flows the matrix allows, sampled (untimed): a uniform sample holds few of them.
    allowed_cells = list(zip(*(a.tolist() for a in matrix.allowed.nonzero())))
    chosen = rng.sample(allowed_cells, k=min(len(allowed_cells), max(1, args.sample // 4)))
    allowed_verdicts = [evaluate(ruleset, Flow(parties[i], parties[j], ports[p])).allowed for p, i, j in chosen]
    result.allowed_sample = len(chosen)
    result.allowed_disagreements = compare(result, matrix, chosen, allowed_verdicts)

    if args.tracemalloc:
        trace_heap(result, directory, ports)
    if not args.no_cli:
        run_cli(result, args, directory)
    return result


def write_json(matrix: Matrix) -> int:
    """`-o json` to os.devnull; the number of characters written."""
    sink = CountingSink()
    matrix_json(matrix, sink)
    sink.close()
    return sink.chars


def compare(result: Result, matrix: Matrix, cells: list[tuple[int, int, int]], verdicts: list[bool]) -> int:
    wrong = 0
    for (p, i, j), allowed in zip(cells, verdicts):
        if bool(matrix.allowed[p, i, j]) != allowed:
            wrong += 1
            if len(result.examples) < 5:
                result.examples.append(
                    f"{matrix.endpoints[i].id} -> {matrix.endpoints[j].id} {matrix.ports[p]}: "
                    f"matrix {bool(matrix.allowed[p, i, j])}, evaluate {allowed}"
                )
    return wrong


def trace_heap(result: Result, directory: Path, ports: list[FlowPort]) -> None:
    """Each phase's peak traced heap, in a separate pass (tracemalloc slows everything down)."""

    def phase(name: str, fn: Callable[[], T]) -> T:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        value = fn()
        result.heap_mib[name] = (tracemalloc.get_traced_memory()[1] - base) / 2**20
        return value

    gc.collect()
    tracemalloc.start()
    try:
        inventory = phase("load", lambda: load_inventory([str(directory)]).inventory)
        ruleset = phase("build", lambda: build_ruleset(inventory))
        matrix = phase("matrix", lambda: compute_matrix(ruleset, ports))
        phase("json", lambda: write_json(matrix))
    finally:
        tracemalloc.stop()


def run_cli(result: Result, args: argparse.Namespace, directory: Path) -> None:
    """Time the command line; its peak memory is the VmHWM of its process, polled meanwhile.

    (The ru_maxrss that wait4 reports for a child is no good here: on Linux it starts from the
    parent's high-water mark, because the child was forked from this big process.)
    """
    command = [str(args.netfence), "matrix", "-f", str(directory)]
    for port in args.ports:
        command += ["--port", port]
    command += ["-o", "csv"]
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        peak_kib = 0
        while os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            peak_kib = max(peak_kib, vm_hwm_kib(child.pid))
            time.sleep(0.01)
        result.cli_rc = child.wait()
        result.seconds["cli csv"] = time.perf_counter() - start
        result.cli_rss_mib = peak_kib / 1024
        if child.returncode != 0:
            errors.seek(0)
            result.examples.append(f"CLI exit {child.returncode}: {errors.read().decode(errors='replace')[-500:]}")


def vm_hwm_kib(pid: int) -> int:
    """Peak resident set size of a running process (0 once it has exited)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# --- report -----------------------------------------------------------------------------------


def table(rows: list[list[str]], head: list[str], right: set[int]) -> str:
    """Plain-text table; columns in `right` are right-aligned."""
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(x.rjust(w) if c in right else x.ljust(w) for c, (x, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def report(r: Result) -> str:
    s = r.seconds
    rows = []
    if "generate" in s:
        rows.append(["generate (bench/generate.py)", f"{s['generate']:.3f}", "", ""])
    rows += [
        ["load_inventory", f"{s['load']:.3f}", f"{r.rss_mib['load']:.0f}", f"{r.objects} objects"],
        ["build_ruleset", f"{s['build']:.3f}", f"{r.rss_mib['build']:.0f}", f"{r.endpoints} endpoints"],
        ["compute_matrix", f"{s['matrix']:.3f}", f"{r.rss_mib['matrix']:.0f}",
         f"{r.flows:,} flows, {r.allowed:,} allowed ({100 * r.allowed / max(1, r.flows):.1f}%)"],
        ["matrix_json -> devnull", f"{s['json']:.3f}", f"{r.rss_mib['json']:.0f}", f"{r.json_mib:.0f} MiB of JSON"],
        ["in-process total", f"{s['load'] + s['build'] + s['matrix'] + s['json']:.3f}", "", "load+build+matrix+json"],
        ["evaluate, sample", f"{s['per-flow sample']:.3f}", f"{r.rss_mib['per-flow sample']:.0f}",
         f"{r.sample:,} flows, {r.per_flow_us:.1f} us/flow"],
        ["evaluate, extrapolated", f"{r.per_flow_full_s:.2f}", "",
         f"all {r.flows:,} flows; {r.per_flow_full_s / max(s['matrix'], 1e-9):,.0f}x compute_matrix"],
    ]
    if "cli csv" in s:
        rows.append(["CLI matrix -o csv (end to end)", f"{s['cli csv']:.3f}", f"{r.cli_rss_mib:.0f}", f"exit {r.cli_rc}"])
    lines = [
        f"== {r.pods} pods, {r.policies} policies, seed {r.seed}: {r.directory}",
        table(rows, ["phase", "seconds", "peak RSS MiB", "notes"], {1, 2}),
        f"agreement: {r.disagreements} disagreements on {r.sample:,} uniformly sampled flows "
        f"({r.sample_allowed:,} allowed); {r.allowed_disagreements} on {r.allowed_sample:,} flows the matrix allows",
        f"speed-up: compute_matrix is {r.per_flow_full_s / max(s['matrix'], 1e-9):,.0f}x the per-flow evaluator "
        f"({r.per_flow_full_s / max(s['matrix'] + s['build'], 1e-9):,.0f}x counting build_ruleset)",
    ]
    if r.heap_mib:
        lines.append("tracemalloc peak heap MiB: " + ", ".join(f"{k} {v:.0f}" for k, v in r.heap_mib.items()))
    lines += [f"  ! {e}" for e in r.examples]
    return "\n".join(lines)


def ladder(results: list[Result]) -> str:
    rows = []
    for r in results:
        s = r.seconds
        rows.append([
            str(r.pods), str(r.policies), f"{s['load']:.2f}", f"{s['build']:.3f}", f"{s['matrix']:.3f}",
            f"{s['json']:.2f}", f"{r.per_flow_full_s:.1f}", f"{r.per_flow_full_s / max(s['matrix'], 1e-9):,.0f}x",
            f"{s['cli csv']:.2f}" if "cli csv" in s else "-", f"{max(r.rss_mib.values()):.0f}",
            str(r.disagreements + r.allowed_disagreements),
        ])
    head = ["pods", "policies", "load s", "build s", "matrix s", "json s", "per-flow s (extrap.)",
            "matrix speed-up", "CLI csv s", "RSS MiB", "disagree"]
    return table(rows, head, set(range(len(head))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000", help="pod counts, comma-separated (default 1000)")
    parser.add_argument("--policies", help="policy counts, comma-separated, one per size (default pods/5)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ports", type=lambda s: s.split(","), default=list(DEFAULT_PORTS),
                        help=f"comma-separated (default {','.join(DEFAULT_PORTS)})")
    parser.add_argument("--sample", type=int, default=20_000, help="flows given to the per-flow evaluator")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each in-process phase; the best counts")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out", help="where clusters are generated")
    parser.add_argument("--regenerate", action="store_true", help="generate even if an up-to-date copy exists")
    parser.add_argument("--tracemalloc", action="store_true", help="also measure each phase's peak heap")
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI run")
    parser.add_argument("--netfence", type=Path, default=ROOT / ".venv" / "bin" / "netfence")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    counts = [int(p) for p in args.policies.split(",")] if args.policies else [s // 5 for s in sizes]
    if len(counts) != len(sizes):
        parser.error("--policies needs one count per size")

    print(f"python {sys.version.split()[0]}, numpy {__import__('numpy').__version__}, "
          f"{os.cpu_count()} CPUs, ports {' '.join(args.ports)}")
    results = []
    for pods, policies in zip(sizes, counts):
        result = run_size(args, pods, policies)
        results.append(result)
        print(report(result), flush=True)
        print()
    if len(results) > 1:
        print(ladder(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    failed = any(r.disagreements or r.allowed_disagreements or r.cli_rc not in (0, None) for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
