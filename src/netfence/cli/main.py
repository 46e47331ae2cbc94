"""netfence's entry point: build the parser, run a verb, map errors to exit codes.

Exit status: 0 success (a query: allowed), 1 a query's "denied", 2 bad input or usage.
Only NetfenceError is caught; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from netfence import __version__
from netfence.cli import agent, compile, demo, diff, explain, flows, inventory, isolate, lab, lint, matrix, query, report, selector, suggest, validate
from netfence.errors import InputError, InputErrors, NetfenceError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netfence",
        description="Network policy engine: who can reach whom under Kubernetes NetworkPolicy.",
    )
    parser.add_argument("--version", action="version", version=f"netfence {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND")
    sub.required = True
    for module in (validate, query, matrix, explain, compile, isolate, demo, lab, selector, diff, lint, inventory, report, suggest, agent, flows):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except NetfenceError as exc:
        # Input problems already read "file:line: object: field: ..."; other errors get a prefix.
        text = str(exc) if isinstance(exc, InputError | InputErrors) else f"error: {exc}"
        print(text, file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `netfence matrix ... | head`
        sys.stderr.close()
        return 0
