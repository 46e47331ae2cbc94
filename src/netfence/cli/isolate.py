"""netfence isolate: the NetworkPolicies that isolate projects (namespace label) or stacks (pod label)."""

from __future__ import annotations

import argparse
import re
import sys

from netfence.analysis.isolate import GroupBy, isolate_namespaces, isolate_pods
from netfence.cli.common import add_files, add_output, load
from netfence.errors import UsageError
from netfence.output.manifests import isolation_notes, write_manifests

# Kubernetes qualified names (label keys) and label values, as apimachinery validates them.
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_KEY = re.compile(rf"(?:(?P<prefix>{_PREFIX})/)?(?P<name>{_NAME})")
_VALUE = re.compile(rf"(?:{_NAME})?")

_BY_FORMS = " or ".join(f"{form} KEY" for form in GroupBy)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "isolate",
        help="print NetworkPolicies isolating projects (namespace label) or stacks (pod label)",
        description=(
            "Print the NetworkPolicies that let each group reach only itself, for kubectl apply -f -. "
            "--by namespace-label KEY: per labelled namespace, netfence-isolation admits ingress from "
            "namespaces with the same value (and the --system-project ones); netfence-isolation-nodes "
            "admits the nodes' addresses. --by pod-label KEY: per namespace and value, "
            "netfence-stack-VALUE admits ingress from pods with the same value in any namespace."
        ),
    )
    add_files(parser)
    parser.add_argument(
        "--by",
        nargs="+",
        metavar="FORM",
        help=f"{_BY_FORMS} (e.g. namespace-label field.cattle.io/projectId, pod-label stack)",
    )
    parser.add_argument(
        "--system-project",
        metavar="VALUE",
        help="with namespace-label: namespaces with this value stay unisolated and every project admits them",
    )
    parser.add_argument(
        "--no-nodes",
        dest="nodes",
        action="store_false",
        help="do not generate the policies admitting the nodes' addresses",
    )
    add_output(parser, ("yaml", "json"), "yaml")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    by, key = parse_by(args.by)
    system = args.system_project
    if system is not None:
        if by is not GroupBy.NAMESPACE_LABEL:
            raise UsageError("--system-project applies to --by namespace-label only")
        if len(system) > 63 or not _VALUE.fullmatch(system):
            raise UsageError(f"--system-project: expected a label value, got {system!r}")
    inventory = load(args).inventory
    if by is GroupBy.NAMESPACE_LABEL:
        isolation = isolate_namespaces(inventory, key, system, nodes=args.nodes)
    else:
        isolation = isolate_pods(inventory, key, nodes=args.nodes)
    for line in isolation_notes(isolation):
        print(line, file=sys.stderr)
    write_manifests(isolation.policies, isolation.labels, args.output, sys.stdout)
    return 0


def parse_by(words: list[str] | None) -> tuple[GroupBy, str]:
    """`--by FORM KEY` -> (form, label key); a UsageError (one line) for anything else."""
    if not words:
        raise UsageError(f"--by is required: {_BY_FORMS}")
    forms = {form.value: form for form in GroupBy}
    form = forms.get(words[0])
    if form is None:
        raise UsageError(f"--by: expected {_BY_FORMS}, got {words[0]!r}")
    if len(words) == 1:
        raise UsageError(f"--by {form}: missing the label key ({form} KEY)")
    if len(words) > 2:
        raise UsageError(f"--by {form}: expected one label key, got {len(words) - 1}: {' '.join(words[1:])}")
    key = words[1]
    match = _KEY.fullmatch(key)
    if match is None or len(match.group("name")) > 63 or len(match.group("prefix") or "") > 253:
        raise UsageError(f"--by {form}: expected a label key ([prefix/]name), got {key!r}")
    return form, key
