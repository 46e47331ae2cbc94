"""netfence agent: keep one node's kernel enforcing the cluster's policies, continuously.

    netfence agent (--node NAME | --host NAME) [--kubeconfig PATH | -f DIR ...] [--netns PATH]
                   [--interval-ms N] [--metrics-addr 127.0.0.1:9617] [--dry-run] [--uninstall]
                   [--log-format text|json] [--log] [--log-allowed] [--log-group N] [--log-rate N]
                   [--audit POLICY ...]

--node: the node's pods (its `table inet netfence`); --host: an ExternalWorkload's own
firewall, on that host (the table `compile --host` prints), re-rendered as Services, nodePorts,
endpoints and pod IPs change.

Without --kubeconfig or -f the agent uses the pod's service account (in-cluster config).
The agent's modules are imported when it runs: the Kubernetes client alone takes about two
seconds to import, which no other verb should pay.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from typing import TYPE_CHECKING, Any

from netfence.agent import logs
from netfence.agent.table import NAMINGS, FlowLogs, Interfaces
from netfence.cli.flows import add_log_arguments, log_settings
from netfence.errors import UsageError
from netfence.lab.agents import LAB_INTERFACE_PREFIX, lab_transform
from netfence.lab.state import require_state
from netfence.model.inventory import Inventory

if TYPE_CHECKING:
    from netfence.agent.metrics import Metrics
    from netfence.agent.run import Source

DEFAULT_METRICS = "127.0.0.1:9617"
CALICO_CHOICES = ("auto", "v3", "crd", "none")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "agent",
        help="run the node agent: watch the cluster, keep this node's nftables table in line",
        description="Watch the Kubernetes API (or files) and keep the node's `table inet netfence` enforcing "
        "the policies of its pods. Stopping the agent leaves the table in place; --uninstall deletes it.",
    )
    parser.add_argument("--node", help="this node's name (spec.nodeName of its pods; default $NODE_NAME)")
    parser.add_argument(
        "--host", metavar="NAME",
        help="enforce the own firewall of this ExternalWorkload instead (input and output hooks, its addresses)",
    )  # fmt: skip
    source = parser.add_argument_group("source (default: the in-cluster service account)")
    source.add_argument("--kubeconfig", metavar="PATH", help="a kubeconfig file")
    source.add_argument("--context", help="the kubeconfig context (default: its current context)")
    source.add_argument(
        "-f", "--filename", dest="files", action="append", metavar="PATH",
        help="watch files instead: a file or directory (recursive: *.yaml *.yml *.json); repeatable",
    )  # fmt: skip
    source.add_argument(
        "--calico-api", choices=CALICO_CHOICES, default="auto",
        help="Calico objects from projectcalico.org/v3 (the Calico API server), crd.projectcalico.org/v1, or none;"
        " auto: v3 when served (default)",
    )  # fmt: skip
    parser.add_argument("--netns", metavar="PATH", help="enforce in this network namespace (a path or a name under /run/netns)")
    parser.add_argument("--interval-ms", type=_positive, default=100, metavar="N", help="coalesce changes arriving within N ms into one sync (default 100)")
    parser.add_argument("--verify-interval-ms", type=_positive, default=5000, metavar="N", help="read the table back every N ms and repair foreign edits (default 5000)")
    parser.add_argument("--metrics-addr", default=DEFAULT_METRICS, metavar="HOST:PORT", help=f"serve /metrics, /healthz, /readyz here (default {DEFAULT_METRICS}; 'off': not at all)")
    parser.add_argument("--interface-prefix", default="nf", metavar="PREFIX", help="host-side pod interfaces start with this (cali, veth, ...; default nf)")
    parser.add_argument("--interface-naming", choices=NAMINGS[:2], default="hash", help="hash: PREFIX + sha1(namespace.pod)[:11] as Calico names them (default); route: the interface of the host route to the pod's IP")
    parser.add_argument("--unknown-interfaces", choices=("drop", "accept"), default="drop", help="traffic of PREFIX interfaces no known pod owns (default drop: fail closed)")
    parser.add_argument("--lab", metavar="NAME", help="run against lab NAME (pod addresses, nodes and veths as the lab built them)")
    parser.add_argument("--dry-run", action="store_true", help="print what a sync would change and exit; the kernel is only read")
    parser.add_argument("--uninstall", action="store_true", help="delete the table and exit")
    parser.add_argument("--log-format", choices=logs.FORMATS, default="text", help="text (default) or json, one object a line")
    add_log_arguments(parser)
    parser.set_defaults(run=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of milliseconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of milliseconds, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from netfence.agent.kernel import NftKernel
    from netfence.agent.metrics import Metrics, serve
    from netfence.agent.oneshot import dry_run, uninstall
    from netfence.agent.run import Agent, AgentConfig

    kernel = NftKernel(args.netns)
    if args.uninstall:
        return uninstall(kernel, sys.stdout)
    if args.node and args.host:
        raise UsageError("--node and --host exclude each other: a node's pods or an external host's own firewall")
    node: str = args.node or ("" if args.host else os.environ.get("NODE_NAME", ""))
    if not node and not args.host:
        raise UsageError("--node: which node is this? (or set $NODE_NAME, or give --host NAME)")
    if args.files and args.kubeconfig:
        raise UsageError("give either -f PATH or --kubeconfig PATH, not both")
    flow_logs = None
    if args.log or args.log_allowed or args.audit:
        if args.host:
            raise UsageError("--log, --log-allowed and --audit apply to a node's table (--node), not to --host")
        flow_logs = FlowLogs(log_settings(args), tuple(args.audit))
        flow_logs.check()
    interfaces = Interfaces(args.interface_prefix, args.interface_naming)
    transform: Callable[[Inventory], Inventory] | None = None
    if args.lab and args.host:
        plan = require_state(args.lab).plan
        if args.host.removeprefix("ext/") not in {x.name for x in plan.externals}:
            known = ", ".join(x.name for x in plan.externals) or "none"
            raise UsageError(f"--host: lab {args.lab} has no external workload {args.host!r} (external workloads: {known})")
        transform = lab_transform(plan)
    elif args.lab:
        plan = require_state(args.lab).plan
        if node not in {n.name for n in plan.nodes}:
            raise UsageError(f"--node: lab {args.lab} has no node {node!r} (nodes: {', '.join(n.name for n in plan.nodes)})")
        veths = {p.id: p.veth for p in plan.pods_on(node)}
        interfaces = Interfaces(LAB_INTERFACE_PREFIX, "static", veths)
        transform = lab_transform(plan)
    config = AgentConfig(
        node=node,
        netns=args.netns,
        interval=args.interval_ms / 1000,
        verify_interval=args.verify_interval_ms / 1000,
        interfaces=interfaces,
        fail_closed=args.unknown_interfaces == "drop",
        transform=transform,
        host=args.host,
        logs=flow_logs,
    )
    logs.configure(args.log_format)
    metrics = Metrics()
    source = _source(args, metrics)
    if args.dry_run:
        return dry_run(config, source, kernel, sys.stdout)
    agent = Agent(config, source, kernel, metrics)
    if args.metrics_addr != "off":
        try:
            serve(args.metrics_addr, metrics, agent.health())
        except (OSError, ValueError) as exc:
            raise UsageError(f"--metrics-addr {args.metrics_addr}: {exc}") from None
    _stop_on_signals(agent.stop)
    agent.run()
    return 0


def _source(args: argparse.Namespace, metrics: Metrics) -> Source:
    from netfence.agent.files import FileSource
    from netfence.sources import kube_api

    if args.files:
        return FileSource(args.files, interval=max(0.05, min(1.0, args.interval_ms / 1000)))
    configuration = kube_api.configuration(args.kubeconfig, args.context)
    calico = args.calico_api
    if calico == "auto":
        calico = kube_api.choose_calico(kube_api.api_client(configuration), calico)
        logging.getLogger("netfence.agent").info("calico objects", extra={"fields": {"api": calico}})

    def reconnected(resource: Any, reason: str) -> None:
        metrics.reconnects.labels(f"{resource.kind}.{resource.api_version}", reason).inc()

    return kube_api.KubeSource(configuration, kube_api.resources(calico), on_reconnect=reconnected)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
