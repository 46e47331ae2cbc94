"""netfence suggest: least-privilege policies from observed flows (JSON lines or conntrack output)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from netfence.analysis.suggest import SuggestKind, suggest
from netfence.analysis.suggest.flows import FlowRecord, read_flow_text
from netfence.cli.common import add_files, add_output, load
from netfence.errors import InputError, InputErrors, Location, UsageError
from netfence.output.suggest import suggestion_report, write_suggestion

#: Accepted by --kind, never generated: why, in one line.
_ANP = (
    "--kind anp: not generated. An AdminNetworkPolicy Allow is final (NetworkPolicies are not consulted),"
    " and denying the rest takes a Deny at a lower priority that overrides every namespace's own"
    " policies; ANP ingress cannot name addresses outside the cluster. Least privilege per workload is"
    " what NetworkPolicy (or --kind calico) expresses; see README, `suggest`"
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "suggest",
        help="print least-privilege policies that allow exactly the observed flows",
        description=(
            "Read observed flows (JSON lines or `conntrack -L -o extended` output) and the inventory, group the "
            "pods into workloads by their stable labels, and print one ingress policy per workload (and one "
            "egress policy with --egress) admitting exactly what was observed, for kubectl apply -f -. "
            "The analyzer checks the result: every observed flow allowed, and which unobserved pod pairs "
            "it allows too (on stderr)."
        ),
    )
    parser.add_argument(
        "--flows",
        action="append",
        metavar="PATH",
        help="observed flows: JSON lines or conntrack output, a file or - for stdin; repeatable",
    )
    add_files(parser)
    parser.add_argument(
        "--kind",
        choices=[*(k.value for k in SuggestKind), "anp"],
        default=SuggestKind.NETWORK_POLICY.value,
        help="networkpolicy (default), calico (projectcalico.org/v3 NetworkPolicy; can allow ICMP), anp (not generated: see README)",
    )
    parser.add_argument(
        "--egress",
        action="store_true",
        help="also restrict egress: one egress policy per workload (outside addresses as ipBlocks, DNS when observed)",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        dest="namespaces",
        action="append",
        default=[],
        metavar="NS",
        help="write policies for the workloads of this namespace only (repeatable; default: every namespace)",
    )
    parser.add_argument(
        "--ignore-label",
        dest="ignored_labels",
        action="append",
        default=[],
        metavar="KEY",
        help="treat this pod label as per-pod (replicas differ in it), like pod-template-hash; repeatable",
    )
    add_output(parser, ("yaml", "json"), "yaml")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.kind == "anp":
        raise UsageError(_ANP)
    if not args.flows:
        raise UsageError("no flows: give --flows FILE|- (JSON lines or conntrack output; repeatable)")
    if args.flows.count("-") > 1 or ("-" in args.flows and args.files and "-" in args.files):
        raise UsageError("standard input (-) can be read once only")
    inventory = load(args).inventory
    records: list[tuple[FlowRecord, Location]] = []
    notes: list[str] = []
    problems: list[InputError] = []
    for path in args.flows:
        name = "<stdin>" if path == "-" else path
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(InputError(Location(name), f"cannot read flows: {exc}"))
            continue
        try:
            read = read_flow_text(text, name)
        except InputErrors as exc:
            problems += exc.problems
            continue
        records += read.records
        notes += read.skipped
    if problems:
        raise InputErrors(problems)
    suggestion = suggest(
        inventory,
        records,
        kind=SuggestKind(args.kind),
        egress=args.egress,
        namespaces=args.namespaces,
        ignored_labels=args.ignored_labels,
    )
    for line in [*notes, *suggestion_report(suggestion)]:
        print(line, file=sys.stderr)
    write_suggestion(suggestion, args.output, sys.stdout)
    return 1 if suggestion.check.denied or suggestion.check.unexpected else 0
