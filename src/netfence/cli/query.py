"""netfence query: the verdict of one flow and why. Exit 0 allowed, 1 denied."""

from __future__ import annotations

import argparse
import sys

from netfence.analysis.verdict import Flow, Party, Verdict, evaluate
from netfence.cli.common import add_files, add_output, flow_port, load_ruleset
from netfence.cli.targets import ServiceTarget, outside_entry, resolve_party, resolve_service
from netfence.ir.audit import enforced_ruleset, parse_audited
from netfence.ir.types import EndpointKind, Ruleset
from netfence.model.endpoints import EndpointId
from netfence.model.inventory import Inventory
from netfence.model.ports import FlowPort
from netfence.output.audit import audit_query_dump, audit_query_text
from netfence.output.data import flow_port_data
from netfence.output.render import verdict_text, verdicts_dump


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("query", help="is one flow allowed, and which policy decided it (exit 0/1)")
    add_files(parser)
    parser.add_argument("--from", dest="source", required=True, metavar="NS/POD|IP")
    parser.add_argument("--to", dest="destination", required=True, metavar="NS/POD|IP|svc/NS/NAME")
    parser.add_argument("--port", required=True, metavar="PORT/PROTO", help="80/TCP, 53/UDP or ICMP")
    parser.add_argument("-n", "--namespace", help="namespace of a pod or service given without one")
    add_output(parser, ("table", "wide", "json", "yaml"), "table")
    parser.add_argument(
        "--audit",
        action="append",
        default=[],
        metavar="POLICY",
        help="treat this policy as audited (staged): the verdict is without it, the audit verdict with it; repeatable",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    inventory, full = load_ruleset(args)
    audited = parse_audited(args.audit, full)
    # Audited policies are not enforced: the verdict is the ruleset's without them.
    ruleset = enforced_ruleset(full, audited)
    verdicts, info = _verdicts(args, inventory, ruleset)
    allowed = bool(verdicts) and all(v.allowed for v in verdicts)
    if audited:
        audit, _ = _verdicts(args, inventory, full)
        if args.output in ("json", "yaml"):
            audit_query_dump(verdicts, audit, sorted(audited, key=str), args.output, sys.stdout, info)
        else:
            _print(verdicts, info)
            audit_query_text(audit, sorted(audited, key=str), sys.stdout)
    elif args.output in ("json", "yaml"):
        verdicts_dump(verdicts, args.output, sys.stdout, info)
    else:
        _print(verdicts, info)
    return 0 if allowed else 1


def _verdicts(
    args: argparse.Namespace, inventory: Inventory, ruleset: Ruleset
) -> tuple[list[Verdict], dict[str, object] | None]:
    port = flow_port(args.port)
    source = resolve_party(inventory, ruleset, args.source, args.namespace, "--from")
    service = resolve_service(inventory, ruleset, args.destination, args.namespace, port)
    info: dict[str, object] | None = None
    if service is None:
        destination = resolve_party(inventory, ruleset, args.destination, args.namespace, "--to")
        verdicts = [evaluate(ruleset, Flow(source, destination, port))]
    else:
        info = {"service": service.service.id, "port": port.port, "protocol": str(port.protocol)}
        if source.endpoint is not None and source.endpoint.kind is EndpointKind.EXTERNAL:
            verdicts = _from_outside(inventory, ruleset, source, service, port, info)
        else:
            verdicts = [evaluate(ruleset, Flow(source, backend, target)) for backend, target in service.backends]
        if service.missing:
            info["backendsWithoutTargetPort"] = list(service.missing)
    return verdicts, info


def _from_outside(
    inventory: Inventory,
    ruleset: Ruleset,
    source: Party,
    service: ServiceTarget,
    port: FlowPort,
    info: dict[str, object],
) -> list[Verdict]:
    """An external workload reaching a Service: its egress is judged on what it connects to (a
    node's nodePort, the load balancer), the backend's ingress on the address it then sees."""
    verdicts: list[Verdict] = []
    entries: list[dict[str, object]] = []
    for backend, target in service.backends:
        pod = inventory.pod(EndpointId(backend.label.split(" ")[0]))
        entry = outside_entry(inventory, service.service, port, pod) if pod is not None else None
        if entry is None:
            verdicts.append(evaluate(ruleset, Flow(source, backend, target)))
            entries.append({"backend": backend.label, "via": None})
            continue
        outward = evaluate(ruleset, Flow(source, Party.outside(entry.address), entry.port))
        seen = source if entry.masquerade is None else Party.outside(entry.masquerade)
        inward = evaluate(ruleset, Flow(seen, backend, target))
        verdicts.append(Verdict(Flow(source, backend, target), outward.egress, inward.ingress))
        entries.append(
            {
                "backend": backend.label,
                "via": {"address": str(entry.address), **flow_port_data(entry.port), "what": entry.what},
                "sourceSeenByBackend": str(entry.masquerade) if entry.masquerade is not None else source.label,
            }
        )
    info["fromOutside"] = entries
    return verdicts


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
    outside = info.get("fromOutside") if info is not None else None
    for i, verdict in enumerate(verdicts):
        verdict_text(verdict, sys.stdout)
        if isinstance(outside, list):
            via = outside[i]["via"]
            if via is None:
                print("  via      nothing: the service is not published outside the cluster (judged as a direct flow)")
            else:
                seen = outside[i]["sourceSeenByBackend"]
                where = f"{via['address']}:{via['port']}/{via['protocol']}"
                print(f"  via      {where} ({via['what']}); the backend sees {seen}")
