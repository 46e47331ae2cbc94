"""netfence report: one self-contained HTML page with the matrix, the flow graph, the policies and
the lint findings. Inputs are read as `lint` reads them (`git:REV:PATH` too)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from netfence.analysis.explain import explain_policies
from netfence.analysis.lint import lint
from netfence.analysis.matrix import compute_matrix
from netfence.cli.common import add_files
from netfence.cli.inputs import load, read_paths
from netfence.cli.lint import DocumentOrigins
from netfence.cli.matrix import add_selection, selection
from netfence.errors import NetfenceError, UsageError
from netfence.ir.build import build_ruleset
from netfence.output.findings import finding_data
from netfence.output.report import Report, ReportFinding, report_html

#: Above this many sources or destinations the heat map shows namespace pairs by default: the
#: per-endpoint data grows with their product (200 x 200 is 40,000 cells per port).
DETAIL_THRESHOLD = 200
DETAILS = ("auto", "pods", "namespaces")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("report", help="one self-contained HTML page: matrix, flow graph, policies, lint")
    add_files(parser)
    add_selection(parser)
    parser.add_argument(
        "--detail",
        choices=DETAILS,
        default="auto",
        help=f"heat map per pod or per namespace pair (default auto: pods up to {DETAIL_THRESHOLD:,} sources "
        "and destinations)",
    )
    parser.add_argument("--no-lint", dest="lint", action="store_false", help="leave the lint findings out")
    parser.add_argument("--title", default="netfence report", help="the page's title")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="the HTML file to write, - for stdout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.files:
        raise UsageError("no input: give -f FILE|DIR|-|git:REV:PATH (repeatable)")
    read = read_paths(args.files)
    inventory = load(read).inventory
    ruleset = build_ruleset(inventory)
    # The flows `netfence matrix` lists for the same options: pods and external workloads.
    ports, endpoints, sources, destinations = selection(args, inventory, ruleset)
    detail = args.detail == "pods" or (
        args.detail == "auto" and max(len(sources), len(destinations)) <= DETAIL_THRESHOLD
    )
    matrix = compute_matrix(ruleset, ports, endpoints, sources=sources, destinations=destinations)
    policies = explain_policies(inventory, ruleset)
    if args.namespace:
        policies = [p for p in policies if p.namespace in (args.namespace, "")]
    findings = None
    if args.lint:
        # What `netfence lint` reports, each finding at the line of its field.
        origins = DocumentOrigins(read.documents)
        findings = [ReportFinding(**finding_data(origins.place(f))) for f in lint(inventory, ruleset, origins)]
    report = Report(inventory, matrix, policies, findings, detail, tuple(args.files), args.title)
    write(report_html(report), args.output)
    if args.output != "-":
        level = "pods" if detail else "namespace pairs"
        print(
            f"wrote {args.output}: {len(sources):,} sources x {len(destinations):,} destinations on "
            f"{len(ports)} port{'s' if len(ports) != 1 else ''} ({level}), "
            f"{len(policies)} polic{'ies' if len(policies) != 1 else 'y'}",
            file=sys.stderr,
        )
    return 0


def write(text: str, output: str) -> None:
    """To stdout, or to the file all at once: a failed run leaves no half-written page behind."""
    if output == "-":
        sys.stdout.write(text)
        return
    target = Path(output)
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise NetfenceError(f"cannot write {output}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as open() would have made it
        os.replace(temporary, target)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise NetfenceError(f"cannot write {output}: {exc.strerror or exc}") from None
