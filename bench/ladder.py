"""The scale ladder: netfence's class engine, its old per-endpoint engine, the per-flow evaluator and
network-config-analyzer (NCA) on the same generated clusters, each measured in a process of its own.

Run (from the repository root, after `bash scripts/setup.sh`):

    bench/.nca-venv/bin/python -V || python3 -m venv bench/.nca-venv
    bench/.nca-venv/bin/pip install network-config-analyzer     # NCA, for the comparison only
    .venv/bin/python bench/ladder.py                              # 100, 1,000, 5,000, 10,000 pods
    .venv/bin/python bench/ladder.py --sizes 100000 --policies 5000 --skip old,per-flow,nca

Policies default to pods/5; ports are 80/TCP 8080/TCP 9090/TCP 53/UDP. Clusters come from
bench/generate.py into bench/out/ (reused while the generator is unchanged).

Each measurement is a fresh child process (`ladder.py --child ...`), so its peak resident set
size (ru_maxrss from wait4: this parent stays small) is its own:

    netfence   load_inventory, build_ruleset, compute_matrix (the class engine), then one flow's
               verdict with its explanation (evaluate + the text `netfence query` prints);
               "engine heap" is compute_matrix's peak traced allocation (a second, untimed run)
    cli        `netfence matrix -f DIR --port ... -o summary > /dev/null`, end to end
    old        load, build, and the per-endpoint engine netfence had before (bench/matrix_baseline.py)
    per-flow   load, build, and verdict.evaluate on a uniform sample of the flows (--sample),
               extrapolated to all of them (every flow when there are at most --sample)
    nca        `nca --connectivity DIR --pod_list DIR --ns_list DIR -o txt_no_fw_rules
               --output_endpoints pods`, killed after --nca-timeout seconds

Agreement (sizes up to --check-up-to): the class engine against the old engine on every flow,
against the per-flow evaluator on the sample, and against NCA on every pod pair NCA lists. NCA
keeps at most two pods of each set of identical pods (same namespace, labels, owner, ports), so
the comparison covers the pods it kept. NCA does not match pod addresses against ipBlock peers
(netfence does, as Calico and Cilium do), so flows decided by an ipBlock peer that covers a
pod's address are counted apart, not as disagreements.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
PORTS = ("80/TCP", "8080/TCP", "9090/TCP", "53/UDP")
PHASES = ("netfence", "cli", "old", "per-flow", "nca")


# --- children ---------------------------------------------------------------------------------


def child(phase: str, directory: str, options: dict[str, Any]) -> dict[str, Any]:
    """One measurement, in this (child) process; returns its figures."""
    sys.path.insert(0, str(HERE))
    import random
    import tracemalloc

    from netfence.analysis.matrix import compute_matrix
    from netfence.analysis.verdict import Flow, Party, evaluate
    from netfence.ir.build import build_ruleset
    from netfence.model.ports import parse_flow_port
    from netfence.sources.load import load_inventory

    ports = [parse_flow_port(p) for p in options["ports"]]
    out: dict[str, Any] = {}
    start = time.perf_counter()
    inventory = load_inventory([directory]).inventory
    out["load"] = time.perf_counter() - start
    start = time.perf_counter()
    ruleset = build_ruleset(inventory)
    out["build"] = time.perf_counter() - start
    n = len(ruleset.endpoints)
    out["endpoints"] = n
    out["flows"] = len(ports) * n * n

    if phase == "netfence":
        start = time.perf_counter()
        matrix = compute_matrix(ruleset, ports)
        out["engine"] = time.perf_counter() - start
        out["classes"] = list(matrix.class_shape[1:])
        out["allowed"] = sum(matrix.count_allowed(p) for p in range(len(ports)))
        # One flow's verdict with its explanation, as `netfence query` gives it.
        import io

        from netfence.output.render import verdict_text

        rng = random.Random(1)
        # The first text output of a process imports rich (about 20 ms): that is start-up, paid
        # by `netfence query` before it reads anything; the flow timed is the second one.
        verdict_text(evaluate(ruleset, Flow(Party.of(ruleset.endpoints[0]), Party.of(ruleset.endpoints[-1]), ports[0])), io.StringIO())
        source, destination = rng.choice(ruleset.endpoints), rng.choice(ruleset.endpoints)
        start = time.perf_counter()
        verdict = evaluate(ruleset, Flow(Party.of(source), Party.of(destination), ports[0]))
        text = io.StringIO()
        verdict_text(verdict, text)
        out["query"] = time.perf_counter() - start
        del matrix
        tracemalloc.start()
        compute_matrix(ruleset, ports)
        out["engine_heap_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    elif phase == "old":
        from matrix_baseline import compute_matrix_per_endpoint

        start = time.perf_counter()
        allowed = compute_matrix_per_endpoint(ruleset, ports)
        out["engine"] = time.perf_counter() - start
        out["allowed"] = int(allowed.sum())
    elif phase == "per-flow":
        rng = random.Random(1)
        parties = [Party.of(e) for e in ruleset.endpoints]
        every = out["flows"] <= options["sample"]
        if every:
            cells = [(p, i, j) for p in range(len(ports)) for i in range(n) for j in range(n)]
        else:
            cells = [(rng.randrange(len(ports)), rng.randrange(n), rng.randrange(n)) for _ in range(options["sample"])]
        flows = [Flow(parties[i], parties[j], ports[p]) for p, i, j in cells]
        start = time.perf_counter()
        allowed_count = sum(evaluate(ruleset, f).allowed for f in flows)
        seconds = time.perf_counter() - start
        out["sample"] = len(cells)
        out["engine"] = seconds * out["flows"] / len(cells)
        out["extrapolated"] = not every
        out["allowed"] = allowed_count if every else None
    elif phase == "agree":
        out.update(agree(ruleset, ports, options))
    return out


def agree(ruleset: Any, ports: list[Any], options: dict[str, Any]) -> dict[str, Any]:
    """The class engine against the old engine, the per-flow evaluator and NCA's listing."""
    import random

    import numpy as np
    from matrix_baseline import compute_matrix_per_endpoint

    from netfence.analysis.matrix import compute_matrix
    from netfence.analysis.verdict import Flow, Party, Reason, evaluate

    out: dict[str, Any] = {}
    matrix = compute_matrix(ruleset, ports)
    dense = matrix.allowed
    out["old_disagreements"] = int((dense != compute_matrix_per_endpoint(ruleset, ports)).sum())
    n = len(ruleset.endpoints)
    rng = random.Random(2)
    parties = [Party.of(e) for e in ruleset.endpoints]
    cells = [(rng.randrange(len(ports)), rng.randrange(n), rng.randrange(n)) for _ in range(options["sample"])]
    # Half of the sample among allowed flows: a uniform sample holds few of them.
    allowed_cells = np.argwhere(dense)
    for k in rng.sample(range(len(allowed_cells)), min(len(allowed_cells), options["sample"] // 2)):
        cells.append(tuple(int(x) for x in allowed_cells[k]))
    wrong = sum(evaluate(ruleset, Flow(parties[i], parties[j], ports[p])).allowed != bool(dense[p, i, j]) for p, i, j in cells)
    out["per_flow_checked"] = len(cells)
    out["per_flow_disagreements"] = int(wrong)

    listing = options.get("nca_listing")
    if not listing or not Path(listing).is_file():
        return out
    index = {e.id: k for k, e in enumerate(ruleset.endpoints)}
    nca_allowed, nca_pods = parse_nca(Path(listing).read_text(), ports)
    kept = sorted(index[p] for p in nca_pods if p in index)
    same = ip_block = other = 0
    examples = []
    for p, port in enumerate(ports):
        for i in kept:
            for j in kept:
                if i == j:
                    continue
                ours = bool(dense[p, i, j])
                theirs = (ruleset.endpoints[i].id, ruleset.endpoints[j].id, p) in nca_allowed
                if ours == theirs:
                    same += 1
                    continue
                verdict = evaluate(ruleset, Flow(parties[i], parties[j], port))
                by_block = any(
                    side.reason is Reason.RULE and side.rule is not None and _peer_has_blocks(ruleset, side)
                    for side in (verdict.egress, verdict.ingress)
                )
                if by_block:
                    ip_block += 1
                else:
                    other += 1
                    if len(examples) < 5:
                        examples.append(f"{ruleset.endpoints[i].id} -> {ruleset.endpoints[j].id} {port}: netfence {ours}, nca {theirs}")
    out.update(nca_pods=len(kept), nca_pairs=same + ip_block + other, nca_same=same, nca_ip_block=ip_block, nca_other=other, nca_examples=examples)
    return out


def _peer_has_blocks(ruleset: Any, side: Any) -> bool:
    """Whether the rule that decided `side` matched through a CIDR block (an ipBlock peer)."""
    for tier in ruleset.tiers(side.direction):
        for policy in tier.policies:
            for rule in policy.rules:
                if rule.ref == side.rule and rule.peers is not None:
                    return any(peer.index == side.peer_index and peer.blocks for peer in rule.peers)
    return False


_LINE = re.compile(r"^(\S+) => (\S+) : (.*)$")


def parse_nca(text: str, ports: list[Any]) -> tuple[set[tuple[str, str, int]], set[str]]:
    """(allowed (source, destination, port index) among pods, every pod named) from NCA's
    `txt_no_fw_rules` listing: `SRC => DST : All connections` or `{protocols:TCP,dst_ports:80,8080}`."""
    allowed: set[tuple[str, str, int]] = set()
    pods: set[str] = set()
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        source, destination, connections = match.groups()
        for party in (source, destination):
            if "/" in party and not party[0].isdigit():
                pods.add(party)
        if "/" not in source or source[0].isdigit() or "/" not in destination or destination[0].isdigit():
            continue
        for p, port in enumerate(ports):
            if _nca_allows(connections, str(port.protocol), port.port):
                allowed.add((source, destination, p))
    return allowed, pods


def _nca_allows(connections: str, protocol: str, number: int | None) -> bool:
    if connections.strip() == "All connections":
        return True
    for group in re.findall(r"\{([^}]*)\}", connections):
        fields = dict(re.findall(r"(protocols|dst_ports|src_ports):([^:]*?)(?=,(?:protocols|dst_ports|src_ports):|$)", group))
        protocols = {x.strip() for x in fields.get("protocols", protocol).split(",")}
        if protocol not in protocols:
            continue
        if "dst_ports" not in fields:
            return True
        for item in fields["dst_ports"].split(","):
            low, _, high = item.strip().partition("-")
            if number is not None and int(low) <= number <= int(high or low):
                return True
    return False


# --- parent -----------------------------------------------------------------------------------


def run_child(argv: list[str], timeout: float | None = None, stdout: Any = subprocess.PIPE) -> tuple[float, float, int, str]:
    """(wall seconds, peak RSS MiB, exit status, stdout) of a child process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        child_process = subprocess.Popen(argv, stdout=stdout, stderr=errors, text=True)
        # Waited for without polling (a 20 ms poll was 5 % of a 0.4 s run); a timer kills it at the timeout.
        killer = threading.Timer(timeout, child_process.kill) if timeout is not None else None
        if killer is not None:
            killer.start()
        output = child_process.stdout.read() if child_process.stdout is not None else ""
        _, status, usage = os.wait4(child_process.pid, 0)
        if killer is not None:
            killer.cancel()
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL and timeout is not None:
            return time.perf_counter() - start, usage.ru_maxrss / 1024, -9, ""
        seconds = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            errors.seek(0)
            sys.stderr.write(errors.read().decode(errors="replace")[-2000:])
        child_process.returncode = code
    return seconds, usage.ru_maxrss / 1024, code, output


def measure(phase: str, directory: Path, options: dict[str, Any]) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", phase, str(directory), "--options", json.dumps(options)]
    seconds, rss, code, output = run_child(argv)
    figures: dict[str, Any] = json.loads(output) if code == 0 else {}
    figures.update(wall=seconds, rss_mib=rss, rc=code)
    return figures


def ensure_cluster(pods: int, policies: int, seed: int, out_root: Path, extra: list[str]) -> Path:
    sys.path.insert(0, str(HERE))
    import generate

    suffix = "-" + "-".join(extra).replace("--", "").replace(" ", "") if extra else ""
    directory = out_root / f"pods{pods}-policies{policies}-seed{seed}{suffix}"
    stamp = directory / "GENERATED.txt"
    expected_head = f"generator {generate.generator_checksum()}"
    if not (stamp.is_file() and expected_head in stamp.read_text().splitlines()[:2]):
        subprocess.run(
            [sys.executable, str(HERE / "generate.py"), "--pods", str(pods), "--policies", str(policies),
             "--seed", str(seed), "--out", str(directory), *extra],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return directory


def start_times(args: argparse.Namespace) -> dict[str, float]:
    """What each tool costs before it reads anything: the bare interpreter, `netfence --version`,
    `netfence matrix` on an empty directory (the matrix verb's imports), `nca --help`."""
    with tempfile.TemporaryDirectory() as empty:
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "netfence --version": [str(args.netfence), "--version"],
            "netfence matrix (empty input)": [str(args.netfence), "matrix", "-f", empty, "--port", "80/TCP", "-o", "summary"],
        }
        if "nca" not in args.skip and args.nca.exists():
            commands["nca --help"] = [str(args.nca), "--help"]
        return {
            name: min(run_child(argv, stdout=subprocess.DEVNULL)[0] for _ in range(5)) for name, argv in commands.items()
        }


def run_size(args: argparse.Namespace, pods: int, policies: int) -> dict[str, Any]:
    directory = ensure_cluster(pods, policies, args.seed, args.out, args.generate_args)
    options = {"ports": args.ports, "sample": args.sample}
    row: dict[str, Any] = {"pods": pods, "policies": policies, "directory": str(directory)}
    skip = set(args.skip)
    if "netfence" not in skip:
        row["netfence"] = measure("netfence", directory, options)
        print(f"  netfence  {row['netfence']}", file=sys.stderr, flush=True)
    if "cli" not in skip:
        argv = [str(args.netfence), "matrix", "-f", str(directory), *(a for p in args.ports for a in ("--port", p)), "-o", "summary"]
        seconds, rss, code, _ = run_child(argv, stdout=subprocess.DEVNULL)
        row["cli"] = {"wall": seconds, "rss_mib": rss, "rc": code}
        print(f"  cli       {row['cli']}", file=sys.stderr, flush=True)
    if "old" not in skip and pods <= args.old_up_to:
        row["old"] = measure("old", directory, options)
        print(f"  old       {row['old']}", file=sys.stderr, flush=True)
    if "per-flow" not in skip:
        row["per-flow"] = measure("per-flow", directory, options)
        print(f"  per-flow  {row['per-flow']}", file=sys.stderr, flush=True)
    listing = None
    if "nca" not in skip and args.nca.exists() and pods <= args.nca_up_to:
        listing = args.out / f"nca-{directory.name}.txt"
        argv = [str(args.nca), "--connectivity", str(directory), "--pod_list", str(directory), "--ns_list", str(directory),
                "--output_format", "txt_no_fw_rules", "--output_endpoints", "pods", "--file_out", str(listing)]  # fmt: skip
        seconds, rss, code, _ = run_child(argv, timeout=args.nca_timeout, stdout=subprocess.DEVNULL)
        row["nca"] = {"wall": seconds, "rss_mib": rss, "rc": code, "finished": code == 0}
        print(f"  nca       {row['nca']}", file=sys.stderr, flush=True)
    if pods <= args.check_up_to:
        agree_options = {**options, "nca_listing": str(listing) if listing and row["nca"]["finished"] else None}
        row["agree"] = measure("agree", directory, agree_options)
        print(f"  agree     {row['agree']}", file=sys.stderr, flush=True)
    return row


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def report(rows: list[dict[str, Any]]) -> str:
    head = [
        "pods", "policies", "classes", "load s", "build s", "engine s", "engine heap MiB", "RSS MiB",
        "CLI e2e s", "CLI RSS MiB", "query ms", "old engine s", "old RSS MiB", "per-flow s", "NCA s", "NCA RSS MiB",
        "NCA/e2e", "NCA/engine", "old/engine", "per-flow/engine",
    ]  # fmt: skip
    lines = []
    for r in rows:
        nf, old, pf, nca, cli = (r.get(k, {}) for k in ("netfence", "old", "per-flow", "nca", "cli"))
        e2e = cli.get("wall") if cli.get("rc") == 0 else None  # a failed run is no figure
        engine = nf.get("engine")
        nca_s = nca.get("wall") if nca.get("finished") else None
        lines.append([
            f"{r['pods']:,}", f"{r['policies']:,}", "x".join(str(c) for c in nf.get("classes", [])) or "-",
            fmt(nf.get("load")), fmt(nf.get("build")), fmt(engine, 3), fmt(nf.get("engine_heap_mib"), 0),
            fmt(nf.get("rss_mib"), 0), fmt(e2e) if e2e or not cli else "failed", fmt(cli.get("rss_mib"), 0),
            fmt(nf["query"] * 1000 if "query" in nf else None, 1),
            fmt(old.get("engine")), fmt(old.get("rss_mib"), 0),
            (fmt(pf.get("engine"), 1) + ("*" if pf.get("extrapolated") else "")) if pf else "-",
            fmt(nca_s) if nca else "-", fmt(nca.get("rss_mib"), 0) if nca else "-",
            f"{nca_s / e2e:,.0f}x" if nca_s and e2e else (
                f"> {nca['wall'] / e2e:,.0f}x (timeout)" if nca and not nca.get("finished") and e2e else "-"
            ),
            f"{nca_s / engine:,.0f}x" if nca_s and engine else "-",
            f"{old['engine'] / engine:,.0f}x" if old.get("engine") and engine else "-",
            f"{pf['engine'] / engine:,.0f}x" if pf.get("engine") and engine else "-",
        ])  # fmt: skip
    widths = [max(len(x) for x in col) for col in zip(head, *lines)]
    out = ["  ".join(x.rjust(w) for x, w in zip(cells, widths)) for cells in [head, *lines]]
    notes = [
        "load/build/engine/query: in the netfence child; RSS MiB: that child's peak. CLI e2e: `netfence matrix -o summary`",
        "end to end (interpreter start to exit), its peak RSS. NCA/e2e compares NCA's wall time with CLI e2e;",
        "NCA/engine, old/engine, per-flow/engine with the class engine alone. * extrapolated from a sample.",
    ]
    for r in rows:
        a = r.get("agree")
        if a:
            text = (f"{r['pods']:,} pods: old engine {a['old_disagreements']} disagreements on every flow; per-flow "
                    f"{a['per_flow_disagreements']} on {a['per_flow_checked']:,} flows")  # fmt: skip
            if "nca_pairs" in a:
                text += (f"; NCA: {a['nca_same']:,} of {a['nca_pairs']:,} pod-pair flows agree over the {a['nca_pods']} pods "
                         f"it kept, {a['nca_ip_block']:,} differ by ipBlock-on-pod semantics, {a['nca_other']:,} otherwise")  # fmt: skip
                text += "".join(f"\n    ! {e}" for e in a.get("nca_examples", []))
            notes.append(text)
    return "\n".join(out + [""] + notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=2, metavar=("PHASE", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="100,1000,5000,10000")
    parser.add_argument("--policies", help="one count per size (default pods/5)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ports", type=lambda s: s.split(","), default=list(PORTS))
    parser.add_argument("--sample", type=int, default=20_000, help="flows given to the per-flow evaluator")
    parser.add_argument("--skip", type=lambda s: s.split(","), default=[], help=f"phases to skip: {','.join(PHASES)}")
    parser.add_argument("--old-up-to", type=int, default=10_000, help="largest size for the old engine")
    parser.add_argument("--nca-up-to", type=int, default=10_000, help="largest size for NCA")
    parser.add_argument("--nca-timeout", type=float, default=900)
    parser.add_argument("--check-up-to", type=int, default=1000, help="largest size checked for agreement")
    parser.add_argument("--generate-args", type=lambda s: s.split(), default=[], help="extra bench/generate.py arguments")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--netfence", type=Path, default=ROOT / ".venv" / "bin" / "netfence")
    parser.add_argument("--nca", type=Path, default=HERE / ".nca-venv" / "bin" / "nca")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], json.loads(args.options))))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    counts = [int(p) for p in args.policies.split(",")] if args.policies else [s // 5 for s in sizes]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, ports {' '.join(args.ports)}", flush=True)
    starts = start_times(args)
    print(f"start-up (best of 5): {starts}", file=sys.stderr, flush=True)
    rows = []
    for pods, policies in zip(sizes, counts):
        print(f"== {pods} pods, {policies} policies", file=sys.stderr, flush=True)
        rows.append(run_size(args, pods, policies))
    print(report(rows))
    print("start-up alone, best of 5: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in starts.items()))
    if args.json:
        args.json.write_text(json.dumps({"start_up": starts, "rows": rows}, indent=2) + "\n")
    bad = any(
        r.get("agree", {}).get(k) for r in rows for k in ("old_disagreements", "per_flow_disagreements", "nca_other")
    ) or any(r.get(k, {}).get("rc") not in (None, 0) for r in rows for k in ("netfence", "cli", "old", "per-flow"))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
