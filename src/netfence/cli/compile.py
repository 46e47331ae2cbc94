"""netfence compile: the nftables ruleset of one node, for review (like iptables-save)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from netfence.cli.common import add_files, add_output, load_ruleset
from netfence.dataplane.nft.compile import compile_node
from netfence.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("compile", help="print the nftables ruleset netfence enforces on a node")
    add_files(parser)
    parser.add_argument("--node", help="the node (spec.nodeName) whose pods the ruleset covers (default: all pods)")
    add_output(parser, ("nft", "json"), "nft")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    _, ruleset = load_ruleset(args)
    if args.node is not None:
        nodes = sorted({e.node for e in ruleset.endpoints if e.node})
        if args.node not in nodes:
            raise UsageError(f"--node: no pod runs on node {args.node!r} (nodes: {', '.join(nodes) or 'none'})")
    table = compile_node(ruleset, args.node)
    if args.output == "json":
        json.dump({"table": asdict(table)}, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(table.render())
    return 0
