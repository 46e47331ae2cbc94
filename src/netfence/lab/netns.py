"""Create and delete the lab's namespaces: `ip -batch -` once per netns, sysctls set explicitly.

Order (design/lab-dataplane-notes.md §1): every netns, their sysctls, the underlay (which also
creates each node's uplink inside the node netns), the nodes (which create each pod's veth with
the peer placed straight into the pod netns), the per-veth sysctls, the pods. No command here
ever names a link, address or route of the initial netns: each batch runs with `ip -n NETFENCE-NS`.

setns() is per thread, so code that enters a lab netns runs in a thread of its own that first
moves to a fresh empty netns (`isolated`); a forgotten setns then reaches nothing at all.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from netfence.errors import NetfenceError
from netfence.ir.types import EPHEMERAL_PORTS
from netfence.lab.plan import (
    BRIDGE,
    GATEWAY,
    GATEWAY_MAC,
    NETNS_PREFIX,
    NODE_UPLINK,
    POD_INTERFACE,
    LabPlan,
)

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
_PARALLEL = 8

T = TypeVar("T")
#: (st_dev, st_ino) of an nsfs inode: the identity of a network namespace.
NetnsId = tuple[int, int]

_libc = ctypes.CDLL(None, use_errno=True)


# --- entering namespaces ----------------------------------------------------------------------


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def unshare_net() -> None:
    """Move the calling thread into a new, empty network namespace."""
    _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")


def current_netns() -> NetnsId:
    st = os.stat("/proc/thread-self/ns/net")
    return (st.st_dev, st.st_ino)


def enter(netns: str) -> NetnsId:
    """Move the calling thread into a netfence netns; return its identity, checked."""
    if not netns.startswith(NETNS_PREFIX) or "/" in netns:
        raise NetfenceError(f"refusing to enter {netns!r}: not a netfence netns")
    fd = os.open(NETNS_DIR / netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns({netns})")
    finally:
        # Gotcha 17/18: an open netns fd keeps the netns alive and costs an fd; never cache it.
        os.close(fd)
    identity = (st.st_dev, st.st_ino)
    if current_netns() != identity:
        raise NetfenceError(f"setns({netns}) did not move this thread into it")
    return identity


def isolated(work: Callable[[], T], stop: threading.Event | None = None) -> T:
    """Run `work` in a new thread that starts in an empty netns of its own; return its result.

    If the caller is interrupted (Ctrl-C) while waiting, `stop` is set and the thread is still
    waited for: its sockets would otherwise keep lab namespaces alive after they are deleted.
    """
    box: dict[str, object] = {}

    def body() -> None:
        try:
            unshare_net()
            box["result"] = work()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=body, name="netfence-lab-netns", daemon=True)
    thread.start()
    try:
        thread.join()
    except BaseException:
        if stop is not None:
            stop.set()
        thread.join()
        raise
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


# --- commands ---------------------------------------------------------------------------------


def ip_batch(lines: Sequence[str], netns: str | None = None, *, force: bool = False) -> None:
    """One `ip [-force] [-n NETNS] -batch -` process; NetfenceError with ip's message on failure."""
    argv = ["ip", *(["-force"] if force else []), *(["-n", netns] if netns else []), "-batch", "-"]
    proc = subprocess.run(argv, input="".join(f"{line}\n" for line in lines), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        where = f" in {netns}" if netns else ""
        raise NetfenceError(f"ip -batch{where} failed: {proc.stderr.strip() or proc.stdout.strip()}")


def ip_batches(jobs: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Several netns' batches, a few at a time; raises the first failure after all finished."""
    with ThreadPoolExecutor(max_workers=_PARALLEL, thread_name_prefix="netfence-ip") as pool:
        futures = [pool.submit(ip_batch, lines, netns) for netns, lines in jobs]
    for future in futures:
        future.result()


def write_sysctls(settings: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> None:
    """(netns, [(key under /proc/sys, value)]) for each netns.

    /proc/sys/net follows the netns of the thread that opens the file, so the writes happen in
    an isolated thread that enters each netns in turn. Keys under net/bridge/ exist only when
    br_netfilter is loaded and are skipped otherwise.
    """

    def work() -> None:
        for netns, items in settings:
            enter(netns)
            for key, value in items:
                path = f"/proc/sys/{key}"
                try:
                    with open(path, "w") as handle:
                        handle.write(value)
                except FileNotFoundError:
                    if not key.startswith("net/bridge/"):
                        raise NetfenceError(f"{netns}: no sysctl {key.replace('/', '.')}") from None

    isolated(work)


# --- the lab ----------------------------------------------------------------------------------


def _ipv6_off() -> list[tuple[str, str]]:
    # Gotcha 23: IPv6 link-local noise (DAD, router solicitations); the lab is IPv4 only.
    return [("net/ipv6/conf/all/disable_ipv6", "1"), ("net/ipv6/conf/default/disable_ipv6", "1")]


def _base_sysctls(plan: LabPlan) -> list[tuple[str, Sequence[tuple[str, str]]]]:
    """Gotcha 4: a new netns copies the initial netns's IPv4 settings, so set every one we rely on."""
    underlay = [
        ("net/ipv4/ip_forward", "0"),
        ("net/ipv4/conf/all/rp_filter", "0"),  # a bridge without addresses: nothing to filter
        ("net/ipv4/conf/default/rp_filter", "0"),
        *_ipv6_off(),
        # Gotcha 15: br_netfilter would run the underlay's bridged frames through IP hooks.
        ("net/bridge/bridge-nf-call-iptables", "0"),
        ("net/bridge/bridge-nf-call-ip6tables", "0"),
        ("net/bridge/bridge-nf-call-arptables", "0"),
    ]
    node = [
        ("net/ipv4/ip_forward", "1"),  # first: writing it resets per-device forwarding settings
        ("net/ipv4/conf/all/rp_filter", "1"),  # strict: policies trust source addresses (gotcha 5)
        ("net/ipv4/conf/default/rp_filter", "1"),
        ("net/ipv4/conf/all/proxy_arp", "0"),  # on per pod veth only, below
        ("net/ipv4/conf/default/proxy_arp", "0"),
        ("net/ipv4/icmp_ratemask", "0"),  # gotcha 12: rejects must not be rate limited
        *_ipv6_off(),
    ]
    pod = [
        ("net/ipv4/ip_forward", "0"),
        ("net/ipv4/conf/all/rp_filter", "1"),
        ("net/ipv4/conf/default/rp_filter", "1"),
        ("net/ipv4/icmp_ratemask", "0"),  # closed UDP ports answer every probe
        ("net/ipv4/icmp_echo_ignore_all", "0"),
        ("net/ipv4/ping_group_range", "0 0"),  # the prober's ICMP datagram sockets (root)
        # Clients pick source ports where the analysis assumes they do (Linux's default).
        ("net/ipv4/ip_local_port_range", f"{EPHEMERAL_PORTS[0]} {EPHEMERAL_PORTS[1]}"),
        *_ipv6_off(),
    ]
    return [
        (plan.underlay, underlay),
        *((n.netns, node) for n in plan.nodes),
        *((p.netns, pod) for p in plan.pods),
        *((x.netns, pod) for x in plan.externals),  # a host outside the cluster: an end system like a pod
    ]


def _veth_sysctls(plan: LabPlan) -> list[tuple[str, Sequence[tuple[str, str]]]]:
    out: list[tuple[str, Sequence[tuple[str, str]]]] = []
    for node in plan.nodes:
        items: list[tuple[str, str]] = []
        for pod in plan.pods_on(node.name):
            items.append((f"net/ipv4/conf/{pod.veth}/proxy_arp", "1"))  # fallback to the static neighbours
            # Gotcha 2: the default 80 holds a new neighbour's first packet up to 0.8 s. There is
            # no neigh.default in a non-initial netns, so it is set per veth.
            items.append((f"net/ipv4/neigh/{pod.veth}/proxy_delay", "0"))
        out.append((node.netns, items))
    return out


def underlay_batch(plan: LabPlan) -> list[str]:
    lines = ["link set lo up", f"link add {BRIDGE} type bridge", f"link set {BRIDGE} up"]
    for node in plan.nodes:
        lines += [
            f"link add {node.uplink} type veth peer name {NODE_UPLINK} netns {node.netns} address {node.mac}",
            f"link set {node.uplink} master {BRIDGE}",
            f"link set {node.uplink} up",
        ]
    for external in plan.externals:
        lines += [
            f"link add {external.uplink} type veth peer name {POD_INTERFACE} netns {external.netns}"
            f" address {external.mac}",
            f"link set {external.uplink} master {BRIDGE}",
            f"link set {external.uplink} up",
        ]
    return lines


def node_batch(plan: LabPlan, name: str) -> list[str]:
    node = plan.node(name)
    lines = [
        "link set lo up",
        f"link set {NODE_UPLINK} up",
        f"address add {node.ip}/{plan.network.prefixlen} dev {NODE_UPLINK}",
        # Gotcha 1: proxy ARP answers only with a route to the target via another device.
        f"route add {GATEWAY}/32 dev {NODE_UPLINK}",
    ]
    for other in plan.nodes:
        if other.name != name:
            # Gotcha 3: permanent neighbours are not counted against the global gc_thresh3.
            lines.append(f"neigh replace {other.ip} lladdr {other.mac} dev {NODE_UPLINK} nud permanent")
    for pod in plan.pods:
        if pod.node == name:
            lines += [
                f"link add {pod.veth} address {GATEWAY_MAC} type veth"
                f" peer name {POD_INTERFACE} netns {pod.netns} address {pod.mac}",
                f"link set {pod.veth} up",
                f"route add {pod.ip}/32 dev {pod.veth} scope link",
                f"neigh replace {pod.ip} lladdr {pod.mac} dev {pod.veth} nud permanent",
            ]
        else:
            lines.append(f"route add {pod.ip}/32 via {plan.node(pod.node).ip} dev {NODE_UPLINK}")
    for external in plan.externals:
        lines += [
            f"route add {external.ip}/32 dev {NODE_UPLINK}",
            f"neigh replace {external.ip} lladdr {external.mac} dev {NODE_UPLINK} nud permanent",
        ]
    return lines


def pod_batch(plan: LabPlan, netns: str) -> list[str]:
    pod = next(p for p in plan.pods if p.netns == netns)
    return [
        "link set lo up",  # gotcha 6: a pod reaches its own address over lo
        f"link set {POD_INTERFACE} up",
        f"address add {pod.ip}/32 dev {POD_INTERFACE}",
        f"route add {GATEWAY}/32 dev {POD_INTERFACE} scope link",
        f"route add default via {GATEWAY} dev {POD_INTERFACE}",
        f"neigh replace {GATEWAY} lladdr {GATEWAY_MAC} dev {POD_INTERFACE} nud permanent",
    ]


def external_batch(plan: LabPlan, netns: str) -> list[str]:
    """A host on the underlay: its address as a /32, the underlay on-link, every pod through its
    node (a routed pod network), other external hosts directly; static neighbours only."""
    host = next(x for x in plan.externals if x.netns == netns)
    lines = [
        "link set lo up",
        f"link set {POD_INTERFACE} up",
        f"address add {host.ip}/32 dev {POD_INTERFACE}",
        f"route add {plan.network} dev {POD_INTERFACE} scope link src {host.ip}",
    ]
    for node in plan.nodes:
        lines.append(f"neigh replace {node.ip} lladdr {node.mac} dev {POD_INTERFACE} nud permanent")
    for pod in plan.pods:
        lines.append(f"route add {pod.ip}/32 via {plan.node(pod.node).ip} dev {POD_INTERFACE}")
    for other in plan.externals:
        if other.netns != netns:
            lines += [
                f"route add {other.ip}/32 dev {POD_INTERFACE} scope link src {host.ip}",
                f"neigh replace {other.ip} lladdr {other.mac} dev {POD_INTERFACE} nud permanent",
            ]
    return lines


def create_lab(plan: LabPlan) -> None:
    """Every netns, link, address, route, neighbour and sysctl of the plan."""
    existing = list_netns(plan.prefix)
    if existing:
        raise NetfenceError(f"netns {existing[0]} already exists; run `netfence lab clean --name {plan.name}`")
    ip_batch([f"netns add {netns}" for netns in plan.netns])
    write_sysctls(_base_sysctls(plan))
    ip_batch(underlay_batch(plan), plan.underlay)
    ip_batches([(n.netns, node_batch(plan, n.name)) for n in plan.nodes])
    write_sysctls(_veth_sysctls(plan))
    ip_batches([(p.netns, pod_batch(plan, p.netns)) for p in plan.pods])
    ip_batches([(x.netns, external_batch(plan, x.netns)) for x in plan.externals])


def delete_netns(names: Sequence[str]) -> None:
    """`ip -force -batch -` of `netns del` lines (a netns still held stays alive until released)."""
    for name in names:
        if not name.startswith(NETNS_PREFIX):
            raise NetfenceError(f"refusing to delete netns {name!r}: not a netfence netns")
    if names:
        ip_batch([f"netns del {name}" for name in names], force=True)


def list_netns(prefix: str = NETNS_PREFIX) -> list[str]:
    """Names under /run/netns starting with `prefix` (read directly: `ip netns list` adds ids)."""
    if not prefix.startswith(NETNS_PREFIX):
        raise NetfenceError(f"refusing to list netns by prefix {prefix!r}: not a netfence prefix")
    try:
        return sorted(name for name in os.listdir(NETNS_DIR) if name.startswith(prefix))
    except FileNotFoundError:
        return []


@contextmanager
def inside(netns: str) -> Iterator[NetnsId]:
    """For single-threaded processes (the server): enter `netns`, then go back where we were."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield enter(netns)
    finally:
        try:
            _check(_libc.setns(home, CLONE_NEWNET), "setns(back)")
        finally:
            os.close(home)
