"""netfence matrix: who can reach whom, for every pod pair and port."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from fnmatch import fnmatchcase

from netfence.analysis.matrix import compute_matrix
from netfence.cli.common import add_files, declared_ports, flow_port, load_ruleset
from netfence.errors import UsageError
from netfence.ir.audit import enforced_ruleset, parse_audited
from netfence.ir.types import EndpointInfo, EndpointKind, Ruleset
from netfence.model.inventory import Inventory
from netfence.model.ports import FlowPort
from netfence.output.audit import audit_matrix_changes, audit_matrix_csv, audit_matrix_json
from netfence.output.render import matrix_csv, matrix_json, matrix_summary, matrix_table

OUTPUTS = ("table", "wide", "json", "csv", "summary")
#: Above this many sources or destinations, a full listing (10,000 pods: 100 M pairs per port)
#: is not what anyone wants by default: without -o, print the summary and say so.
SUMMARY_THRESHOLD = 2000


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("matrix", help="reachability of every pod pair on every port")
    add_files(parser)
    add_selection(parser)
    parser.add_argument(
        "-o",
        "--output",
        choices=OUTPUTS,
        default=None,
        help=f"output format (default table; summary above {SUMMARY_THRESHOLD:,} sources or destinations)",
    )
    parser.add_argument(
        "--audit",
        action="append",
        default=[],
        metavar="POLICY",
        help="treat this policy as audited (staged): the matrix is without it; the flows it would change follow"
        " (json/csv: an `audit` verdict per flow); repeatable",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    inventory, full = load_ruleset(args)
    audited = sorted(parse_audited(args.audit, full), key=str)
    ruleset = enforced_ruleset(full, audited)
    ports, endpoints, sources, destinations = selection(args, inventory, ruleset)
    output = args.output
    if output is None:
        output = "table"
        if max(len(sources), len(destinations)) > SUMMARY_THRESHOLD:
            output = "summary"
            print(
                f"note: {len(sources):,} sources x {len(destinations):,} destinations: printing counts per namespace "
                "pair (-o summary); -o json|csv|table lists every pair",
                file=sys.stderr,
            )
    # Only the chosen sources and destinations are classified and evaluated.
    matrix = compute_matrix(ruleset, ports, endpoints, sources=sources, destinations=destinations)
    if audited:
        audit = compute_matrix(full, ports, endpoints, sources=sources, destinations=destinations)
        if output == "json":
            audit_matrix_json(matrix, audit, audited, sys.stdout)
            return 0
        if output == "csv":
            audit_matrix_csv(matrix, audit, sys.stdout)
            return 0
        if output == "summary":
            matrix_summary(matrix, sys.stdout)
        else:
            matrix_table(matrix, sys.stdout, wide=output == "wide")
        audit_matrix_changes(matrix, audit, audited, sys.stdout)
        return 0
    if output == "json":
        matrix_json(matrix, sys.stdout)
    elif output == "csv":
        matrix_csv(matrix, sys.stdout)
    elif output == "summary":
        matrix_summary(matrix, sys.stdout)
    else:
        matrix_table(matrix, sys.stdout, wide=output == "wide")
    return 0


def add_selection(parser: argparse.ArgumentParser) -> None:
    """--port, -n, --from and --to: which flows a matrix (or the report's heat map) covers."""
    parser.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="PORT/PROTO",
        help="80/TCP, 53/UDP, ICMP; repeatable (default: every containerPort in the inventory)",
    )
    parser.add_argument("-n", "--namespace", help="only pods of this namespace (default: all namespaces)")
    parser.add_argument(
        "--from",
        dest="sources",
        action="append",
        default=[],
        metavar="PATTERN",
        help="only these sources: NAMESPACE or NAMESPACE/POD, shell wildcards allowed (shop, shop/web-*); repeatable",
    )
    parser.add_argument(
        "--to",
        dest="destinations",
        action="append",
        default=[],
        metavar="PATTERN",
        help="only these destinations, as --from; repeatable",
    )


def selection(
    args: argparse.Namespace, inventory: Inventory, ruleset: Ruleset
) -> tuple[list[FlowPort], tuple[EndpointInfo, ...], tuple[EndpointInfo, ...], tuple[EndpointInfo, ...]]:
    """The ports, the endpoints, the sources and the destinations `add_selection`'s options ask for."""
    ports = [flow_port(p) for p in args.port] or declared_ports(inventory)
    if not ports:
        raise UsageError("no ports to evaluate: the inventory declares no containerPorts; pass --port PORT/PROTO")
    ports = list(dict.fromkeys(ports))
    # Pods and external workloads; host endpoints are queried one flow at a time (hep/NAME).
    endpoints = tuple(e for e in ruleset.endpoints if e.kind is not EndpointKind.HOST)
    if args.namespace:
        endpoints = tuple(e for e in endpoints if e.namespace == args.namespace)
    sources = select(endpoints, args.sources, "--from")
    destinations = select(endpoints, args.destinations, "--to")
    return ports, endpoints, sources, destinations


def select(endpoints: Sequence[EndpointInfo], patterns: Sequence[str], flag: str) -> tuple[EndpointInfo, ...]:
    """The endpoints some pattern matches (all of them without patterns), in their order.

    A pattern without `/` matches the namespace, one with `/` the whole `namespace/name`.
    """
    if not patterns:
        return tuple(endpoints)
    chosen = []
    matched = set()
    for endpoint in endpoints:
        hits = [p for p in patterns if fnmatchcase(endpoint.id if "/" in p else endpoint.namespace, p)]
        if hits:
            chosen.append(endpoint)
            matched.update(hits)
    unmatched = [p for p in patterns if p not in matched]
    if unmatched:
        raise UsageError(f"{flag} {unmatched[0]}: matches no pod (expected NAMESPACE or NAMESPACE/POD, wildcards allowed)")
    return tuple(chosen)
