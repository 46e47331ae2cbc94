"""Conntrack entries of local pod addresses that went away.

The table accepts `ct state established,related` first, so a connection accepted once keeps
flowing without meeting the policy again. When a local pod is deleted, its IP changes or it
moves to another node, its address can be given to a new pod at once; an entry left from the
old pod's flows would then let packets of those 5-tuples through to the new pod, whatever the
new pod's policy says, until the entry times out (5 days for an established TCP connection).
So, after the table without the old pod is committed (from then on no entry can be created for
a flow the new table denies), the agent deletes every entry whose original or reply source or
destination is the address, in the node's network namespace, as Calico's Felix does:

    conntrack -D -f ipv4 --orig-src IP     (then --orig-dst, --reply-src, --reply-dst)

Policy changes flush nothing: connections established before a policy change keep flowing, as
in Calico and Kubernetes.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from netfence.dataplane.apply import DataplaneError
from netfence.ir.types import EndpointInfo
from netfence.model.endpoints import IPAddress

#: Seconds one conntrack run may take before it is killed (a failed flush).
CONNTRACK_TIMEOUT = 30.0
#: Each entry is matched on both directions and both ends: the reply side covers NAT (a
#: Service's virtual IP in the original direction, the pod's address in the reply).
_DIRECTIONS = ("--orig-src", "--orig-dst", "--reply-src", "--reply-dst")
_DELETED = re.compile(r"(\d+) flow entr(?:y has|ies have) been deleted")


def removed_addresses(before: Iterable[EndpointInfo], after: Iterable[EndpointInfo]) -> tuple[IPAddress, ...]:
    """The addresses a local endpoint of `before` held that the same endpoint does not hold in
    `after`: a pod deleted, its IP changed, the pod moved off the node. An address given to
    another pod in the same sync is among them (the old pod's entries must go); an address the
    same pod keeps is not, whatever else changed (labels, policies)."""
    kept = {(endpoint.id, ip) for endpoint in after for ip in endpoint.ips}
    gone = {ip for endpoint in before for ip in endpoint.ips if (endpoint.id, ip) not in kept}
    return tuple(sorted(gone, key=lambda ip: (ip.version, int(ip))))


@dataclass(frozen=True)
class Flushed:
    """What one flush did: entries deleted, and the runs that failed (empty: none)."""

    entries: int
    errors: tuple[str, ...] = ()


class Conntrack:
    """The conntrack table of one network namespace (`netns`: a name under /run/netns, a path,
    or None for this process's own), through the conntrack CLI."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns

    def flush(self, addresses: Iterable[IPAddress]) -> Flushed:
        """Delete every entry with one of `addresses` at either end, in either direction. Every
        run is made, whichever fail; a run that finds nothing to delete is not a failure."""
        entries, errors = 0, []
        for address in addresses:
            for direction in _DIRECTIONS:
                try:
                    entries += self._delete(address, direction)
                except DataplaneError as exc:
                    errors.append(str(exc))
        return Flushed(entries, tuple(errors))

    def _delete(self, address: IPAddress, direction: str) -> int:
        family = "ipv4" if isinstance(address, ipaddress.IPv4Address) else "ipv6"
        args = ["-D", "-f", family, direction, str(address)]
        where = f" in network namespace {self.netns}" if self.netns else ""
        try:
            proc = subprocess.run(
                self._command(args), capture_output=True, text=True, check=False, timeout=CONNTRACK_TIMEOUT
            )
        except FileNotFoundError as exc:
            raise DataplaneError(f"cannot run conntrack: {exc.strerror}: {exc.filename}") from None
        except subprocess.TimeoutExpired:
            raise DataplaneError(f"conntrack {' '.join(args)}{where} did not finish in {CONNTRACK_TIMEOUT:g} s") from None
        found = _DELETED.search(proc.stderr)
        if found is None or proc.returncode not in (0, 1):
            raise DataplaneError(f"conntrack {' '.join(args)}{where} failed: {proc.stderr.strip() or proc.returncode}")
        # Status 1 with "0 flow entries have been deleted": nothing to delete.
        return int(found.group(1))

    def _command(self, args: list[str]) -> list[str]:
        conntrack = shutil.which("conntrack") or "/usr/sbin/conntrack"
        if self.netns is None:
            return [conntrack, *args]
        path = self.netns if self.netns.startswith("/") else f"/run/netns/{self.netns}"
        return [shutil.which("nsenter") or "/usr/bin/nsenter", f"--net={path}", conntrack, *args]
