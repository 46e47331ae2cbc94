"""netfence diff: every flow whose verdict changes between two sets of inputs. Exit 1 when any
does (a CI gate), 0 when none does."""

from __future__ import annotations

import argparse
import sys

from netfence.analysis.diff import Snapshot, default_ports, diff_rulesets, summarize
from netfence.cli.common import add_files, add_output, flow_port
from netfence.cli.inputs import load, read_paths
from netfence.ir.build import build_ruleset
from netfence.output.diff import diff_json, diff_table, diff_yaml, endpoint_notes

PATHS = "PATH|git:REV:PATH"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "diff",
        help="flows whose verdict changes between --old and --new inputs (exit 1 if any)",
        description="Compare the verdicts of two sets of inputs. -f files belong to both sides; "
        "git:REV:PATH reads a file or directory as it was at a git revision.",
    )
    add_files(parser)
    parser.add_argument("--old", nargs="+", action="extend", required=True, metavar=PATHS, help="the old side")
    parser.add_argument("--new", nargs="+", action="extend", required=True, metavar=PATHS, help="the new side")
    parser.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="PORT/PROTO",
        help="80/TCP, 53/UDP, ICMP; repeatable (default: the ports either side's policies name, "
        "every containerPort, and 53/UDP, 53/TCP, 80/TCP, 443/TCP)",
    )
    add_output(parser, ("table", "json", "yaml"), "table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    common = read_paths(args.files or [])  # read once, for both sides
    seen: set[str] = set()
    sides = []
    for paths in (args.old, args.new):
        loaded = load(common + read_paths(paths), warn=False)
        for line in loaded.warnings:
            if line not in seen:  # files both sides read warn once
                seen.add(line)
                print(line, file=sys.stderr)
        sides.append(Snapshot(loaded.inventory, build_ruleset(loaded.inventory)))
    old, new = sides
    ports = list(dict.fromkeys(flow_port(p) for p in args.port)) or default_ports(old, new)
    diff = diff_rulesets(old.ruleset, new.ruleset, ports)
    notes = endpoint_notes(diff, "--old", "--new")
    if args.output == "table":
        diff_table(diff, summarize(diff, new.inventory), sys.stdout)
        for line in notes:
            print(line)
    else:
        for line in notes:
            print(f"note: {line}", file=sys.stderr)
        (diff_json if args.output == "json" else diff_yaml)(diff, sys.stdout)
    return 1 if diff.count else 0
