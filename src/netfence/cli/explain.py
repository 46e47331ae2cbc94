"""netfence explain: each policy in plain words, grouped by namespace."""

from __future__ import annotations

import argparse
import sys

from netfence.analysis.explain import explain_policies
from netfence.cli.common import add_files, add_output, load_ruleset
from netfence.output.render import explain_dump, explain_text


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("explain", help="each policy in plain words")
    add_files(parser)
    parser.add_argument("-n", "--namespace", help="only policies of this namespace")
    add_output(parser, ("table", "wide", "json", "yaml"), "table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    inventory, ruleset = load_ruleset(args)
    items = explain_policies(inventory, ruleset)
    if args.namespace:
        items = [i for i in items if i.namespace == args.namespace]
    if args.output in ("json", "yaml"):
        explain_dump(items, args.output, sys.stdout)
    else:
        explain_text(items, sys.stdout)
    return 0
