"""netfence flows: read the flow log (NFLOG) of a node's netfence table, one line per flow.

    netfence flows [--group N] [--netns PATH | --lab NAME] [-f FILES] [-o table|json]
                   [--count N] [--duration S] [--window S]

The table must log (`compile`/`lab apply`/`lab run` with --log, --log-allowed or --audit).
With -f, addresses are named after the inventory's endpoints and log ids after the rules of
its ruleset (for a lab, the same files `lab apply` read); without it, a lab's pods still name
addresses, and the kernel table's log rule comments name the rules.

Also here: the logging options `compile` and `lab` share (add_log_arguments, log_options).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

from netfence.cli.common import add_files, add_output, load
from netfence.dataplane.flows import DEFAULT_WINDOW, FlowLog, Source, kernel_notes, open_sources, read_records
from netfence.dataplane.nft.flowlog import DEFAULT_BURST, DEFAULT_GROUP, DEFAULT_RATE, LogOptions, log_catalog
from netfence.errors import UsageError
from netfence.ir.audit import parse_audited
from netfence.ir.build import build_ruleset
from netfence.ir.types import Ruleset
from netfence.lab.plan import check_lab_name, lab_inventory
from netfence.lab.state import require_state
from netfence.model.endpoints import IPAddress
from netfence.output.flows import flows_header, write_flow


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "flows",
        help="print the flows a node's table logged (NFLOG), with the rule that decided each",
        description="Read NFLOG messages of netfence's table (compile/lab apply with --log, --log-allowed or "
        "--audit) and print one line per flow: time, node, direction, source and destination, protocol and port, "
        "verdict, tier and the deciding rule.",
    )
    add_files(parser)
    parser.add_argument("--group", type=_group, default=DEFAULT_GROUP, metavar="N", help=f"NFLOG group (default {DEFAULT_GROUP})")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--netns", metavar="PATH", help="read in this network namespace (a path or a name under /run/netns)")
    where.add_argument("--lab", metavar="NAME", type=_lab, help="read on every node of lab NAME")
    add_output(parser, ("table", "json"), "table")
    parser.add_argument("--count", type=_positive_int, metavar="N", help="stop after N flows")
    parser.add_argument("--duration", type=_positive_float, metavar="S", help="stop after S seconds")
    parser.add_argument(
        "--window",
        type=_positive_float,
        default=DEFAULT_WINDOW,
        metavar="S",
        help=f"packets of one flow (5-tuple, direction, decision) within S seconds are one line (default {DEFAULT_WINDOW:g})",
    )
    parser.set_defaults(run=run)


def _group(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected an NFLOG group 0-65535, got {text!r}")
    return int(text)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _rate(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected messages per second (0: no limit), got {text!r}")
    return int(text)


def _lab(text: str) -> str:
    try:
        return check_lab_name(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--name: ")) from None


def run(args: argparse.Namespace) -> int:
    ruleset = None
    names: dict[IPAddress, str] = {}
    if args.lab:
        plan = require_state(args.lab).plan
        sources = [Source(node.name, node.netns) for node in plan.nodes]
        names = {w.ip: str(w.id) for w in plan.workloads}
        if args.files:
            ruleset = build_ruleset(lab_inventory(load(args).inventory, plan))
    else:
        netns = args.netns
        sources = [Source(os.path.basename(netns) if netns else None, netns)]
        if args.files:
            ruleset = build_ruleset(load(args).inventory)
    catalog = None
    notes: dict[str, str] = {}
    if ruleset is not None:
        catalog = log_catalog(ruleset)
        names.update((ip, str(e.id)) for e in ruleset.endpoints for ip in e.ips)
    else:
        for source in sources:
            notes.update(kernel_notes(source.netns))
    flows = FlowLog(catalog, names, notes, args.window)
    sockets = open_sources(sources, args.group)
    try:
        where = f"lab {args.lab} ({len(sources)} nodes)" if args.lab else (args.netns or "this network namespace")
        print(f"flows: reading NFLOG group {args.group} in {where}", file=sys.stderr, flush=True)
        if args.output == "table":
            print(flows_header(), flush=True)
        for record in read_records(sockets, flows, args.count, args.duration):
            write_flow(record, args.output, sys.stdout)
    except KeyboardInterrupt:
        return 130
    finally:
        for _, sock in sockets:
            sock.close()
    return 0


# --- what compile and lab share ---------------------------------------------------------------


def add_log_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("flow logs (read them with `netfence flows`)")
    group.add_argument("--log", action="store_true", help="log denied packets to NFLOG (rule and end-of-tier drops)")
    group.add_argument("--log-allowed", action="store_true", help="log allowed new connections too (implies --log)")
    group.add_argument("--log-group", type=_group, default=DEFAULT_GROUP, metavar="N", help=f"NFLOG group (default {DEFAULT_GROUP})")
    group.add_argument(
        "--log-rate",
        type=_rate,
        default=DEFAULT_RATE,
        metavar="N",
        help=f"at most N log messages per second per deciding rule and node, burst {DEFAULT_BURST} (0: no limit;"
        f" default {DEFAULT_RATE})",
    )
    group.add_argument(
        "--audit",
        action="append",
        default=[],
        metavar="POLICY",
        help="audit this policy (KIND/NAMESPACE/NAME, NAMESPACE/NAME or NAME): enforce as if it were absent, log"
        " what it would deny; repeatable",
    )


def log_options(args: argparse.Namespace, ruleset: Ruleset) -> LogOptions | None:
    """The LogOptions the arguments ask for; None when they ask for no logging at all."""
    audit = parse_audited(args.audit, ruleset)
    if not (args.log or args.log_allowed or audit):
        return None
    return replace(log_settings(args), audit=audit)


def log_settings(args: argparse.Namespace) -> LogOptions:
    """The LogOptions the arguments ask for, audited policies left out (the agent resolves them
    against every snapshot)."""
    return LogOptions(
        group=args.log_group,
        denied=args.log or args.log_allowed,
        allowed=args.log_allowed,
        rate=args.log_rate or None,
        burst=DEFAULT_BURST,
    )
