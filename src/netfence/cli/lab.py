"""netfence lab: a cluster of network namespaces on this machine, enforced and probed for real.

    netfence lab up -f FILES [--name NAME] [--port 80/TCP ...]   build it, start its server
    netfence lab apply -f FILES [--name NAME] [--host-firewall nft|iptables]
                                                                  apply policies on nodes and external
                                                                  hosts, NodePort Services on nodes
    netfence lab probe [--name NAME] [--port ...] [-o table|json] what the kernel allows
    netfence lab down [--name NAME]                               remove it
    netfence lab clean [--name NAME]                              remove leftovers (all labs by default)
    netfence lab run -f FILES [--port ...] [-o table|json] [--host-firewall nft|iptables]
                                                                  up, apply, probe, down; exit 1 on mismatch
    netfence lab agents -f DIR [--name NAME] [--interval-ms N]    one agent per node watching DIR, until Ctrl-C
    netfence lab record --duration S [--name NAME] [-o FILE]      the flows that happen, as JSON lines
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from netfence.analysis.suggest.flows import record_lines
from netfence.cli.common import add_files, add_output, declared_ports, flow_port, load
from netfence.cli.flows import add_log_arguments, log_options
from netfence.errors import UsageError
from netfence.ir.audit import enforced_ruleset
from netfence.ir.build import build_ruleset
from netfence.lab.agents import run_agents
from netfence.lab.clean import Cleaned, clean
from netfence.lab.control import HOST_FIREWALLS, compare, down, enforce, up
from netfence.lab.plan import LabPlan, check_lab_name, lab_inventory
from netfence.lab.probe import probe
from netfence.lab.record import record
from netfence.lab.services import apply_services
from netfence.lab.state import require_state
from netfence.model.inventory import Inventory
from netfence.model.ports import FlowPort
from netfence.output.lab import lab_comparison_table, lab_flows_json, lab_pods_table, lab_probe_table

DEFAULT_NAME = "default"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("lab", help="build a cluster of network namespaces here, enforce policies, probe them")
    verbs = parser.add_subparsers(dest="lab_verb", metavar="VERB")
    verbs.required = True

    p = verbs.add_parser("up", help="build the lab for the pods in FILES and start its server")
    add_files(p)
    _add_name(p)
    _add_ports(p, "also serve this port in every pod")
    p.set_defaults(run=run_up)

    p = verbs.add_parser("apply", help="compile the policies in FILES and apply them on every lab node")
    add_files(p)
    _add_name(p)
    _add_host_firewall(p)
    add_log_arguments(p)
    p.set_defaults(run=run_apply)

    p = verbs.add_parser("probe", help="probe every pod pair (self included) and report what the kernel did")
    _add_name(p)
    _add_ports(p, "probe this port (default: every port the lab serves)")
    add_output(p, ("table", "json"), "table")
    p.set_defaults(run=run_probe)

    p = verbs.add_parser("down", help="remove the lab: server, namespaces, state")
    _add_name(p)
    p.set_defaults(run=run_down)

    p = verbs.add_parser("clean", help="remove lab leftovers after a crash (every netfence-* netns by default)")
    p.add_argument("--name", type=_lab_name, help="only this lab's leftovers")
    p.set_defaults(run=run_clean)

    p = verbs.add_parser("run", help="up, apply, probe, down; compare the kernel with the analyzer")
    add_files(p)
    _add_name(p)
    _add_ports(p, "probe this port (default: every containerPort in the inventory)")
    add_output(p, ("table", "json"), "table")
    _add_host_firewall(p)
    add_log_arguments(p)
    p.set_defaults(run=run_run)

    p = verbs.add_parser("agents", help="run one netfence agent per lab node, watching FILES, until interrupted")
    add_files(p)
    _add_name(p)
    p.add_argument("--interval-ms", type=int, default=100, metavar="N", help="coalesce changes within N ms (default 100)")
    p.set_defaults(run=run_agents_verb)

    p = verbs.add_parser("record", help="record the flows that happen in the lab (conntrack in its nodes) as JSON lines")
    _add_name(p)
    p.add_argument("--duration", type=float, required=True, metavar="S", help="seconds to record (Ctrl-C ends it early)")
    p.add_argument("-o", "--output", default="-", metavar="FILE", help="write the flows to FILE (default -: stdout)")
    p.set_defaults(run=run_record)


def _lab_name(text: str) -> str:
    try:
        return check_lab_name(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--name: ")) from None


def _add_name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", type=_lab_name, default=DEFAULT_NAME, help=f"lab name (default {DEFAULT_NAME})")


def _add_ports(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--port", action="append", default=[], metavar="PORT/PROTO", help=f"80/TCP, 53/UDP, ICMP; {text}")


def _ports(args: argparse.Namespace) -> list[FlowPort]:
    return list(dict.fromkeys(flow_port(p) for p in args.port))


def _add_host_firewall(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host-firewall",
        choices=HOST_FIREWALLS,
        default=HOST_FIREWALLS[0],
        help="how external hosts enforce their own side: nft (a netfence table) or iptables"
        " (ipset + iptables-restore); nodes always use nft",
    )


def _declared(inventory: Inventory) -> list[FlowPort]:
    """The pods' containerPorts, then the external workloads' ports."""
    extra = [FlowPort(p.protocol, p.port) for w in inventory.external_workloads for p in w.ports]
    return list(dict.fromkeys([*declared_ports(inventory), *sorted(extra, key=lambda p: p.sort_key)]))


def _notes(plan: LabPlan) -> None:
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)


def run_up(args: argparse.Namespace) -> int:
    inventory = load(args).inventory
    started = up(inventory, args.name, _ports(args))
    plan = started.state.plan
    _notes(plan)
    rows = [
        (p.id, p.node, p.netns, str(p.ip), " ".join(str(port) for port in p.ports) or "-") for p in plan.pods
    ]
    rows += [(x.id, "-", x.netns, str(x.ip), " ".join(str(port) for port in x.ports) or "-") for x in plan.externals]
    lab_pods_table(rows, sys.stdout)
    externals = f", {len(plan.externals)} external hosts" if plan.externals else ""
    print(
        f"lab {plan.name} up in {started.seconds:.2f} s: {len(plan.nodes)} nodes, {len(plan.pods)} pods{externals},"
        f" server pid {started.state.server_pid}; netns {plan.prefix}*"
    )
    return 0


def run_apply(args: argparse.Namespace) -> int:
    plan = require_state(args.name).plan
    inventory = load(args).inventory
    lab = lab_inventory(inventory, plan)
    ruleset = build_ruleset(lab)
    for warning in enforce(plan, ruleset, args.host_firewall, log_options(args, ruleset)):
        print(warning, file=sys.stderr)
    apply_services(plan, lab)
    hosts = f" and {len(plan.externals)} external hosts ({args.host_firewall})" if plan.externals else ""
    print(f"lab {plan.name}: {inventory.policy_count} policies applied on {len(plan.nodes)} nodes{hosts}")
    return 0


def run_probe(args: argparse.Namespace) -> int:
    plan = require_state(args.name).plan
    ports = _ports(args) or list(plan.served_ports())
    if not ports:
        raise UsageError("no ports to probe: the lab serves none; pass --port PORT/PROTO")
    report = probe(plan, ports)
    if args.output == "json":
        lab_flows_json(report.matrix(), report.outcomes, sys.stdout)
    else:
        lab_probe_table(report.matrix(), report.counts(), report.seconds, sys.stdout)
    return 0


def _removed(what: str, cleaned: Cleaned) -> None:
    print(
        f"{what}: {len(cleaned.netns)} netns deleted, {len(cleaned.pids)} processes stopped,"
        f" {len(cleaned.labs)} state files removed"
    )


def run_down(args: argparse.Namespace) -> int:
    _removed(f"lab {args.name} down", down(args.name))
    return 0


def run_clean(args: argparse.Namespace) -> int:
    cleaned = clean(args.name)
    if cleaned.nothing:
        print("lab clean: nothing to remove")
    else:
        _removed("lab clean", cleaned)
    return 0


def run_run(args: argparse.Namespace) -> int:
    inventory = load(args).inventory
    ports = _ports(args) or _declared(inventory)
    if not ports:
        raise UsageError("no ports to probe: the inventory declares no containerPorts; pass --port PORT/PROTO")
    built = False
    try:
        # Every pod serves every probed port: a flow the policy allows must find a listener.
        plan = up(inventory, args.name, ports).state.plan
        built = True
        _notes(plan)
        lab = lab_inventory(inventory, plan)
        ruleset = build_ruleset(lab)
        log = log_options(args, ruleset)
        if inventory.policy_count:  # without policies the kernel's default (accept) is Kubernetes's
            for warning in enforce(plan, ruleset, args.host_firewall, log):
                print(warning, file=sys.stderr)
        apply_services(plan, lab)
        # Audited policies are not enforced: the kernel must agree with the ruleset without them.
        comparison = compare(plan, enforced_ruleset(ruleset, log.audit if log else ()), ports)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if built:
            down(args.name)
    report = comparison.report
    if args.output == "json":
        lab_flows_json(comparison.actual, report.outcomes, sys.stdout, comparison.predicted)
    else:
        lab_comparison_table(
            comparison.actual, report.outcomes, comparison.predicted, report.counts(), report.seconds, sys.stdout
        )
    if comparison.wrong_pod:
        print(f"error: {comparison.wrong_pod} probes were answered by the wrong pod (a lab routing error)", file=sys.stderr)
    return 1 if comparison.mismatches or comparison.wrong_pod else 0


def run_agents_verb(args: argparse.Namespace) -> int:
    if not args.files:
        raise UsageError("no input: give -f FILE|DIR (repeatable) for the agents to watch")
    if args.interval_ms <= 0:
        raise UsageError(f"--interval-ms: expected a positive number, got {args.interval_ms}")
    plan = require_state(args.name).plan
    return run_agents(plan, args.files, args.interval_ms, lambda line: print(line, flush=True))


def run_record(args: argparse.Namespace) -> int:
    if not args.duration > 0:
        raise UsageError(f"--duration: expected a positive number of seconds, got {args.duration:g}")
    plan = require_state(args.name).plan
    recording = record(plan, args.duration)
    text = record_lines(recording.flows)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    print(
        f"lab {plan.name}: {len(recording.flows)} flows from {recording.connections} connections"
        f" in {recording.seconds:.1f} s",
        file=sys.stderr,
    )
    return 0
