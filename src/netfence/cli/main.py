"""netfence's entry point: build the parser, run a verb, map errors to exit codes.

Exit status: 0 success (a query: allowed), 1 a query's "denied", 2 bad input or usage.
Only NetfenceError is caught; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from netfence import __version__
from netfence.errors import InputError, InputErrors, NetfenceError

#: The verbs, in the order `netfence --help` lists them; each is the module netfence.cli.<verb>.
VERBS = (
    "validate",
    "query",
    "matrix",
    "explain",
    "compile",
    "isolate",
    "demo",
    "lab",
    "selector",
    "diff",
    "lint",
    "inventory",
    "report",
    "suggest",
    "agent",
    "flows",
)


def _chosen_verb(argv: Sequence[str]) -> str | None:
    """The verb of a command line, when it names one: the top level has no option with a value,
    so that is the first argument not starting with '-'."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in VERBS else None
        if arg == "--":
            return None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given the command line, only its verb's module is imported (a verb's
    imports, numpy and the loaders, are most of a short run), else all of them for the help."""
    parser = argparse.ArgumentParser(
        prog="netfence",
        description="Network policy engine: who can reach whom under Kubernetes NetworkPolicy.",
    )
    parser.add_argument("--version", action="version", version=f"netfence {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND")
    sub.required = True
    chosen = _chosen_verb(argv) if argv is not None else None
    if chosen is None and argv and argv[0] == "--version":
        return parser  # argparse prints the version and exits before a verb is needed
    for verb in (chosen,) if chosen else VERBS:
        importlib.import_module(f"netfence.cli.{verb}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
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
