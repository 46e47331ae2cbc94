"""netfence lint: policies that are legal but likely not what was meant. Exit 1 when a finding
of severity error or warning exists, 0 otherwise."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from netfence.analysis.lint import CHECKS, NO_PODS, Finding, Severity, lint
from netfence.cli.common import add_files, add_output
from netfence.cli.inputs import load, read_paths
from netfence.errors import Location, UsageError
from netfence.ir.build import build_ruleset
from netfence.output.findings import findings_dump, findings_text
from netfence.sources.documents import Document

CODES = [c.code for c in (*CHECKS, NO_PODS)]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    checks = "\n".join(f"  {c.code:<32} {c.severity:<8} {c.title}" for c in (*CHECKS, NO_PODS))
    parser = sub.add_parser(
        "lint",
        help="policies that are legal but likely wrong (exit 1 on an error or warning)",
        description="Report policies that are legal but likely not what was meant. "
        "Exit 1 when a finding of severity error or warning exists.",
        epilog=f"checks:\n{checks}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_files(parser)
    parser.add_argument(
        "--ignore", action="append", default=[], metavar="CODE", help="skip this check; repeatable"
    )
    add_output(parser, ("table", "json", "yaml"), "table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    unknown = [c for c in args.ignore if c not in CODES]
    if unknown:
        raise UsageError(f"--ignore {unknown[0]}: no such check (expected one of: {', '.join(CODES)})")
    if not args.files:
        raise UsageError("no input: give -f FILE|DIR|-|git:REV:PATH (repeatable)")
    read = read_paths(args.files)
    loaded = load(read)
    origins = DocumentOrigins(read.documents)
    findings = [origins.place(f) for f in lint(loaded.inventory, build_ruleset(loaded.inventory), origins, skip=args.ignore)]
    findings.sort(key=lambda f: f.sort_key)
    if args.output == "table":
        findings_text(findings, sys.stdout)
    else:
        findings_dump(findings, args.output, sys.stdout)
    return 1 if any(f.severity in (Severity.ERROR, Severity.WARNING) for f in findings) else 0


class DocumentOrigins:
    """The objects' documents, by the location the model gives each object."""

    def __init__(self, documents: Sequence[Document]) -> None:
        self._documents = {doc.location(): doc for doc in documents}

    def api_version(self, where: Location) -> str | None:
        doc = self._documents.get(where)
        return doc.api_version if doc is not None else None

    def place(self, finding: Finding) -> Finding:
        """The finding at the line of its field, when the field is found in its object's text."""
        where = finding.location
        if where is None or not finding.field:
            return finding
        doc = self._documents.get(where)
        if doc is None:
            return finding
        line = doc.location(finding.field).line
        return dataclasses.replace(finding, location=Location(where.file, line or where.line))
