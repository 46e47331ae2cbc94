"""What every verb shares: loading -f paths, printing warnings, parsing --port."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from netfence.errors import UsageError
from netfence.ir.build import build_ruleset
from netfence.ir.types import Ruleset
from netfence.model.inventory import Inventory
from netfence.model.ports import FlowPort, parse_flow_port
from netfence.sources.load import Loaded, load_inventory


def add_files(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        dest="files",
        action="append",
        metavar="PATH",
        help="file, directory (recursive: *.yaml *.yml *.json) or - for stdin; repeatable",
    )


def add_output(parser: argparse.ArgumentParser, choices: Sequence[str], default: str) -> None:
    parser.add_argument("-o", "--output", choices=choices, default=default, help=f"output format (default {default})")


def load(args: argparse.Namespace) -> Loaded:
    if not args.files:
        raise UsageError("no input: give -f FILE|DIR|- (repeatable)")
    loaded = load_inventory(args.files)
    for line in loaded.warnings:
        print(line, file=sys.stderr)
    return loaded


def load_ruleset(args: argparse.Namespace) -> tuple[Inventory, Ruleset]:
    inventory = load(args).inventory
    return inventory, build_ruleset(inventory)


def flow_port(text: str) -> FlowPort:
    try:
        return parse_flow_port(text)
    except ValueError as exc:
        raise UsageError(f"--port: {exc}") from None


def declared_ports(inventory: Inventory) -> list[FlowPort]:
    """Every port/protocol some (non-hostNetwork) pod's containers declare."""
    found = {FlowPort(p.protocol, p.port) for pod in inventory.pods if not pod.host_network for p in pod.ports}
    return sorted(found, key=lambda p: p.sort_key)
