"""netfence validate: check input only."""

from __future__ import annotations

import argparse
import sys

from netfence.cli.common import add_files, load


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("validate", help="check input files; exit 2 listing every problem")
    add_files(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    loaded = load(args)
    inv = loaded.inventory
    external = f"{len(inv.external_workloads)} external workloads, " if inv.external_workloads else ""
    print(
        f"valid: {loaded.objects} objects ({len(inv.namespaces)} namespaces, {len(inv.pods)} pods, "
        f"{len(inv.services)} services, {external}{inv.policy_count} policies)",
        file=sys.stdout,
    )
    return 0
