"""netfence compile: the ruleset of one node (nftables) or of one external host's own firewall
(nftables or iptables), for review (like iptables-save) or to load."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from netfence.cli.common import add_files, add_output, load_ruleset
from netfence.cli.flows import add_log_arguments, log_options
from netfence.dataplane.host import compile_host
from netfence.dataplane.iptables.render import render_iptables
from netfence.dataplane.nft.compile import compile_node
from netfence.dataplane.nft.host import render_host
from netfence.dataplane.nft.objects import Table
from netfence.errors import UsageError
from netfence.ir.types import EndpointKind, Ruleset
from netfence.model.endpoints import EXTERNAL_ID_PREFIX, EndpointId


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("compile", help="print the ruleset netfence enforces on a node or an external host")
    add_files(parser)
    parser.add_argument("--node", help="the node (spec.nodeName) whose pods the ruleset covers (default: all pods)")
    parser.add_argument(
        "--host",
        metavar="NAME",
        help="an ExternalWorkload: the ruleset of its own firewall (input and output, for its addresses)",
    )
    add_output(parser, ("nft", "iptables", "json"), "nft")
    add_log_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.node is not None and args.host is not None:
        raise UsageError("--node and --host exclude each other: a node's pods or an external host's own firewall")
    if args.output == "iptables" and args.host is None:
        raise UsageError("-o iptables: only an external host's firewall (--host NAME) is written for iptables")
    _, ruleset = load_ruleset(args)
    if args.host is not None:
        if args.log or args.log_allowed or args.audit:
            raise UsageError("--log, --log-allowed and --audit apply to a node's table (--node), not to --host")
        return _host(ruleset, args.host, args.output)
    if args.node is not None:
        nodes = sorted({e.node for e in ruleset.endpoints if e.node})
        if args.node not in nodes:
            raise UsageError(f"--node: no pod runs on node {args.node!r} (nodes: {', '.join(nodes) or 'none'})")
    log = log_options(args, ruleset)
    _print(compile_node(ruleset, args.node, log=log), args.output)
    return 0


def _host(ruleset: Ruleset, name: str, output: str) -> int:
    endpoint = EndpointId(name if name.startswith(EXTERNAL_ID_PREFIX) else EXTERNAL_ID_PREFIX + name)
    found = ruleset.endpoint(endpoint)
    if found is None or found.kind is not EndpointKind.EXTERNAL:
        known = sorted(e.name for e in ruleset.endpoints if e.kind is EndpointKind.EXTERNAL)
        raise UsageError(
            f"--host: no ExternalWorkload {endpoint.removeprefix(EXTERNAL_ID_PREFIX)!r}"
            f" (external workloads: {', '.join(known) or 'none'})"
        )
    firewall = compile_host(ruleset, endpoint)
    if output == "iptables":
        sys.stdout.write(render_iptables(firewall).text())
    else:
        _print(render_host(firewall), output)
    return 0


def _print(table: Table, output: str) -> None:
    if output == "json":
        json.dump({"table": asdict(table)}, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(table.render())
