"""netfence inventory: the pods, Services, external workloads and host endpoints a Calico
selector matches, with their addresses.

    netfence inventory -f FILES [--selector SELECTOR] [-o table|json]

Selectors see each object's labels and netfence's derived labels (netfence.dev/kind, name,
namespace, node, address, service.<name>), so "service wordpress" is
`has(netfence.dev/service.wordpress)` and "address 172.18.221.1" is
`netfence.dev/address == "172.18.221.1"`.
"""

from __future__ import annotations

import argparse
import sys

from netfence.cli.common import add_files, add_output, load
from netfence.errors import UsageError
from netfence.ir.catalog import catalog, select
from netfence.model.calico_selector import SelectorError, parse_selector
from netfence.output.inventory import inventory_dump, inventory_table


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("inventory", help="list the pods, services and external hosts a selector matches")
    add_files(parser)
    parser.add_argument(
        "--selector",
        "-l",
        metavar="SELECTOR",
        help="""a Calico selector, e.g. 'has(netfence.dev/service.wordpress)' (default: everything)""",
    )
    add_output(parser, ("table", "json"), "table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    selector = None
    if args.selector is not None:
        try:
            selector = parse_selector(args.selector)
        except SelectorError as exc:
            raise UsageError(f"--selector: invalid selector: {exc}") from None
    inventory = load(args).inventory
    entries = select(catalog(inventory), selector)
    if args.output == "json":
        inventory_dump(entries, sys.stdout)
    else:
        inventory_table(entries, sys.stdout)
    return 0
