"""netfence query: the verdict of one flow and why. Exit 0 allowed, 1 denied."""

from __future__ import annotations

import argparse
import sys

from netfence.analysis.verdict import Flow, Verdict, evaluate
from netfence.cli.common import add_files, add_output, flow_port, load_ruleset
from netfence.cli.targets import resolve_party, resolve_service
from netfence.output.render import verdict_text, verdicts_dump


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("query", help="is one flow allowed, and which policy decided it (exit 0/1)")
    add_files(parser)
    parser.add_argument("--from", dest="source", required=True, metavar="NS/POD|IP")
    parser.add_argument("--to", dest="destination", required=True, metavar="NS/POD|IP|svc/NS/NAME")
    parser.add_argument("--port", required=True, metavar="PORT/PROTO", help="80/TCP, 53/UDP or ICMP")
    parser.add_argument("-n", "--namespace", help="namespace of a pod or service given without one")
    add_output(parser, ("table", "wide", "json", "yaml"), "table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    inventory, ruleset = load_ruleset(args)
    port = flow_port(args.port)
    source = resolve_party(inventory, ruleset, args.source, args.namespace, "--from")
    service = resolve_service(inventory, ruleset, args.destination, args.namespace, port)
    info: dict[str, object] | None = None
    if service is None:
        destination = resolve_party(inventory, ruleset, args.destination, args.namespace, "--to")
        verdicts = [evaluate(ruleset, Flow(source, destination, port))]
    else:
        verdicts = [evaluate(ruleset, Flow(source, backend, target)) for backend, target in service.backends]
        info = {"service": service.service.id, "port": port.port, "protocol": str(port.protocol)}
        if service.missing:
            info["backendsWithoutTargetPort"] = list(service.missing)
    allowed = bool(verdicts) and all(v.allowed for v in verdicts)
    if args.output in ("json", "yaml"):
        verdicts_dump(verdicts, args.output, sys.stdout, info)
    else:
        _print(verdicts, info)
    return 0 if allowed else 1


def _print(verdicts: list[Verdict], info: dict[str, object] | None) -> None:
    if info is not None:
        head = f"service {info['service']} {info['protocol']}/{info['port']}"
        print(f"{head}: {len(verdicts)} backend{'s' if len(verdicts) != 1 else ''}")
        if not verdicts:
            print("DENIED   the service has no backend to reach")
        skipped = info.get("backendsWithoutTargetPort", [])
        assert isinstance(skipped, list)
        for pod in skipped:
            print(f"  skipped {pod}: it does not declare the service's targetPort")
    for verdict in verdicts:
        verdict_text(verdict, sys.stdout)
