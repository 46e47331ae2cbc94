"""The desired table of one node: snapshot -> inventory -> ruleset -> the node's compiled table,
plus the fail-closed rules for pod interfaces the agent does not know.

Fail closed: a pod's interface can exist before the agent has heard of the pod (the CNI plugin
runs as soon as the pod is scheduled; the agent learns of it through the API a little later,
or much later when the agent is down). Every interface whose name starts with the pod interface
prefix (`cali`, `veth`, ...) and that is not the interface of a pod the agent knows is dropped in
both directions:

    set local_ifaces { type ifname; flags interval; elements = { <every known local pod interface> } }
    forward: ct state ...; iifname "cali*" iifname != @local_ifaces counter drop; oifname ... drop; vmaps
    input:   ct state ...; iifname "cali*" iifname != @local_ifaces counter drop; vmap

So a new pod gets no traffic until the agent has programmed its rules (a pod no policy selects
then passes freely), and pods that start while the agent is down stay isolated until it is back.
Interfaces without the prefix (the node's own, other CNIs') are never touched.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from netfence.dataplane.host import HostError, compile_host
from netfence.dataplane.nft.compile import compile_node
from netfence.dataplane.nft.flowlog import LogOptions
from netfence.dataplane.nft.host import render_host
from netfence.dataplane.nft.objects import AddressSet, Rule, Table
from netfence.errors import UsageError
from netfence.ir.audit import parse_policy_ref, policy_refs
from netfence.ir.build import build_ruleset
from netfence.ir.types import EndpointInfo, EndpointKind, PolicyRef, Ruleset
from netfence.model.endpoints import EXTERNAL_ID_PREFIX, EndpointId, IPAddress
from netfence.model.inventory import Inventory
from netfence.sources.snapshot import Snapshot
from netfence.sources.load import build_inventory

UNKNOWN_SET = "local_ifaces"
UNKNOWN_NOTE = "unknown local interface"
NAMINGS = ("hash", "route", "static")
_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,14}")
#: How parse_policy_ref says that a name matches no policy (as opposed to an unknown kind or
#: a name matching several).
_NO_SUCH_POLICY = ": no such policy"
#: Calico's scheme: prefix + the first 11 hex digits of sha1("namespace.pod").
_HASH_DIGITS = 11


@dataclass(frozen=True)
class Interfaces:
    """How the host side of a local pod's interface is named.

    - `hash`: prefix + sha1("namespace.pod")[:11], as Calico names `cali*` interfaces (the prefix
      is then at most 4 characters);
    - `route`: the interface of the host route to the pod's address (routed CNIs: Calico, the
      ptp plugin, kindnet), read from the node when the table is built;
    - `static`: a given map (the lab's veths).
    """

    prefix: str = "nf"
    naming: str = "hash"
    static: Mapping[EndpointId, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _PREFIX.fullmatch(self.prefix):
            raise UsageError(f"--interface-prefix: expected 1-14 letters, digits, '_', '.' or '-', got {self.prefix!r}")
        if self.naming not in NAMINGS:
            raise UsageError(f"--interface-naming: expected one of {', '.join(NAMINGS)}, got {self.naming!r}")
        if self.naming == "hash" and len(self.prefix) + _HASH_DIGITS > 15:
            raise UsageError(f"--interface-prefix: at most 4 characters with hash naming, got {self.prefix!r}")

    def names(self, local: Iterable[EndpointInfo], routes: Mapping[IPAddress, str] | None = None) -> dict[EndpointId, str]:
        """Local pod -> interface, for the pods whose interface is known."""
        found: dict[EndpointId, str] = {}
        for endpoint in local:
            if self.naming == "hash":
                found[endpoint.id] = hashed_name(self.prefix, endpoint.id)
            elif self.naming == "static":
                if endpoint.id in self.static:
                    found[endpoint.id] = self.static[endpoint.id]
            else:
                device = next((routes[ip] for ip in endpoint.ips if routes and ip in routes), None)
                if device is not None and device.startswith(self.prefix):
                    found[endpoint.id] = device
        return found


def hashed_name(prefix: str, endpoint: EndpointId) -> str:
    namespace, _, name = endpoint.partition("/")
    digest = hashlib.sha1(f"{namespace}.{name}".encode()).hexdigest()  # noqa: S324 - a name, not security
    return prefix + digest[:_HASH_DIGITS]


@dataclass(frozen=True)
class Desired:
    """What one node should enforce, and what it was built from."""

    table: Table
    ruleset: Ruleset
    #: The node's pods.
    local: tuple[EndpointInfo, ...]
    #: Local pod -> interface, for those whose interface is known.
    interfaces: Mapping[EndpointId, str]
    warnings: tuple[str, ...] = ()
    objects: int = 0


@dataclass(frozen=True)
class FlowLogs:
    """What a node's table logs (`--log`, `--log-allowed`, `--log-group`, `--log-rate`) and which
    policies it audits (`--audit`, as written): the names are resolved against each snapshot's
    ruleset, so an audited policy that is edited, or created after the agent started, is found."""

    options: LogOptions
    audit: tuple[str, ...] = ()

    def check(self) -> None:
        """Raise UsageError for a name no snapshot can resolve (an unknown kind), at start."""
        for text in self.audit:
            self._parse(text, ())

    def _parse(self, text: str, known: Sequence[PolicyRef]) -> PolicyRef | None:
        """The policy `text` names; None when no policy matches."""
        try:
            return parse_policy_ref(text, known)
        except UsageError as exc:
            if _NO_SUCH_POLICY in str(exc):
                return None
            raise

    def resolve(self, ruleset: Ruleset) -> tuple[LogOptions | None, tuple[str, ...]]:
        """The LogOptions for this ruleset (None: nothing to log), and notes. An audited name that
        matches no policy of the snapshot is a note, not an error: a policy that is absent is
        enforced exactly as an audited one (as if absent), so the table is right without it. A
        name that matches several policies raises UsageError (the last good table stays)."""
        known = policy_refs(ruleset)
        audited: set[PolicyRef] = set()
        notes = []
        for text in self.audit:
            found = self._parse(text, known)
            if found is None:
                notes.append(f"--audit {text}: no such policy in the input (nothing to audit)")
            else:
                audited.add(found)
        options = replace(self.options, audit=frozenset(audited))
        if not (options.denied or options.allowed or options.audit):
            return None, tuple(notes)
        return options, tuple(notes)


def build_desired(
    snapshot: Snapshot,
    node: str,
    interfaces: Interfaces,
    fail_closed: bool = True,
    transform: Callable[[Inventory], Inventory] | None = None,
    routes: Mapping[IPAddress, str] | None = None,
    logs: FlowLogs | None = None,
) -> Desired:
    """Raises InputErrors (every problem of the input) when the snapshot does not load."""
    loaded = build_inventory(snapshot.documents, snapshot.problems, snapshot.order)
    inventory = transform(loaded.inventory) if transform is not None else loaded.inventory
    ruleset = build_ruleset(inventory)
    local = tuple(e for e in ruleset.endpoints if e.kind is EndpointKind.POD and e.node == node)
    names = interfaces.names(local, routes)
    log, notes = logs.resolve(ruleset) if logs is not None else (None, ())
    table = compile_node(ruleset, node, names, log=log)
    if fail_closed:
        table = with_fail_closed(table, interfaces.prefix, names.values())
    return Desired(table, ruleset, local, names, (*loaded.warnings, *notes), loaded.objects)


def host_id(name: str) -> EndpointId:
    """`haproxy` or `ext/haproxy`: the endpoint id of an ExternalWorkload."""
    return EndpointId(name if name.startswith(EXTERNAL_ID_PREFIX) else EXTERNAL_ID_PREFIX + name)


def build_host_desired(
    snapshot: Snapshot,
    host: str,
    transform: Callable[[Inventory], Inventory] | None = None,
) -> Desired:
    """The own firewall of ExternalWorkload `host` (dataplane/host.py, as an nftables table): its
    input and output hooks. Service rules resolve to what the host connects to (node addresses
    and nodePorts, load-balancer IPs), so a Service, a nodePort, an endpoint or a pod IP that
    changes changes this table. Raises InputErrors when the snapshot does not load and
    HostError when it holds no such ExternalWorkload (the last good table then stays)."""
    loaded = build_inventory(snapshot.documents, snapshot.problems, snapshot.order)
    inventory = transform(loaded.inventory) if transform is not None else loaded.inventory
    ruleset = build_ruleset(inventory)
    endpoint = ruleset.endpoint(host_id(host))
    if endpoint is None or endpoint.kind is not EndpointKind.EXTERNAL:
        known = sorted(e.name for e in ruleset.endpoints if e.kind is EndpointKind.EXTERNAL)
        raise HostError(f"no ExternalWorkload {host!r} in the input (external workloads: {', '.join(known) or 'none'})")
    table = render_host(compile_host(ruleset, endpoint.id))
    return Desired(table, ruleset, (endpoint,), {}, tuple(loaded.warnings), loaded.objects)


def with_fail_closed(table: Table, prefix: str, known: Iterable[str]) -> Table:
    """`table` with the unknown-interface drops (see the module docstring) in its base chains,
    right after the connection-state rules."""
    if not _PREFIX.fullmatch(prefix):
        raise UsageError(f"not an interface prefix: {prefix!r}")
    elements = tuple(f'"{name}"' for name in sorted(set(known)))
    chains = []
    for chain in table.chains:
        if chain.hook is None:
            chains.append(chain)
            continue
        sides = [s for s, hook in (("iifname", "hook forward"), ("oifname", "hook forward"),
                                   ("iifname", "hook input"), ("oifname", "hook output")) if hook in chain.hook]  # fmt: skip
        drops = tuple(
            Rule(f'{side} "{prefix}*" {side} != @{UNKNOWN_SET} counter drop', UNKNOWN_NOTE) for side in sides
        )
        head = 0
        while head < len(chain.rules) and chain.rules[head].statement.startswith("ct state"):
            head += 1
        chains.append(replace(chain, rules=(*chain.rules[:head], *drops, *chain.rules[head:])))
    return replace(table, sets=(*table.sets, AddressSet(UNKNOWN_SET, "ifname", elements)), chains=tuple(chains))


def local_interfaces(table: Table) -> Sequence[str]:
    """The known local interfaces a table carries (empty without the fail-closed set)."""
    for item in table.sets:
        if item.name == UNKNOWN_SET:
            return tuple(e.strip('"') for e in item.elements)
    return ()


def summary(table: Table) -> dict[str, int]:
    """Sizes for metrics and logs."""
    return {
        "chains": len(table.chains),
        "rules": sum(len(c.rules) for c in table.chains),
        "sets": len(table.sets),
        "set_elements": sum(len(s.elements) for s in table.sets),
        "map_elements": sum(len(m.elements) for m in table.maps),
    }

