"""netfence matrix: who can reach whom, for every pod pair and port."""

from __future__ import annotations

import argparse
import sys

from netfence.analysis.matrix import compute_matrix
from netfence.cli.common import add_files, add_output, declared_ports, flow_port, load_ruleset
from netfence.errors import UsageError
from netfence.output.render import matrix_csv, matrix_json, matrix_table


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("matrix", help="reachability of every pod pair on every port")
    add_files(parser)
    parser.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="PORT/PROTO",
        help="80/TCP, 53/UDP, ICMP; repeatable (default: every containerPort in the inventory)",
    )
    parser.add_argument("-n", "--namespace", help="only pods of this namespace (default: all namespaces)")
    add_output(parser, ("table", "wide", "json", "csv"), "table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    inventory, ruleset = load_ruleset(args)
    ports = [flow_port(p) for p in args.port] or declared_ports(inventory)
    if not ports:
        raise UsageError("no ports to evaluate: the inventory declares no containerPorts; pass --port PORT/PROTO")
    ports = list(dict.fromkeys(ports))
    endpoints = ruleset.endpoints
    if args.namespace:
        endpoints = tuple(e for e in endpoints if e.namespace == args.namespace)
    matrix = compute_matrix(ruleset, ports, endpoints)
    if args.output == "json":
        matrix_json(matrix, sys.stdout)
    elif args.output == "csv":
        matrix_csv(matrix, sys.stdout)
    else:
        matrix_table(matrix, sys.stdout, wide=args.output == "wide")
    return 0
