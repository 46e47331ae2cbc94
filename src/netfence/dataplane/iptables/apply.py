"""Apply a host's iptables ruleset: `ipset restore`, then `iptables-restore --test` and
`iptables-restore` (and ip6tables), then destroy netfence sets no rule uses any more.

The tools run as subprocesses (argument lists, never a shell), inside a network namespace
through nsenter when one is named. Each table is replaced in one commit; a rejected table leaves
the previous one in place. Across ipset and iptables there is no transaction: the sets are
swapped in first (each atomically), then the tables.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from netfence.dataplane.apply import DataplaneError, whole_file
from netfence.dataplane.iptables.render import NEW_SUFFIX, SET_PREFIX, IptablesRuleset

#: An empty filter table: what `delete_iptables` restores (user chains are removed with it).
EMPTY_FILTER = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"


def run_tool(args: Sequence[str], netns: str | None, stdin: str | None = None) -> str:
    tool = shutil.which(args[0]) or f"/usr/sbin/{args[0]}"
    argv = [tool, *args[1:]]
    if netns is not None:
        argv = [shutil.which("nsenter") or "/usr/bin/nsenter", f"--net=/run/netns/{netns}", *argv]
    try:
        if stdin is None:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        else:  # whole before the tool starts (`ipset restore` applies line by line)
            with whole_file(stdin) as text:
                proc = subprocess.run(argv, stdin=text, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise DataplaneError(f"cannot run {args[0]}: {exc.strerror}: {exc.filename}") from None
    if proc.returncode != 0:
        where = f" in network namespace {netns}" if netns else ""
        raise DataplaneError(f"{' '.join(args)}{where} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def apply_iptables(rules: IptablesRuleset, netns: str | None) -> None:
    run_tool(["ipset", "restore"], netns, rules.ipset)
    for tool, text in (("iptables-restore", rules.iptables), ("ip6tables-restore", rules.ip6tables)):
        run_tool([tool, "--test"], netns, text)
    for tool, text in (("iptables-restore", rules.iptables), ("ip6tables-restore", rules.ip6tables)):
        run_tool([tool], netns, text)
    _destroy_sets([s for s in _netfence_sets(netns) if s not in rules.sets], netns)


def delete_iptables(netns: str | None) -> None:
    """Empty the filter tables and destroy every netfence set."""
    for tool in ("iptables-restore", "ip6tables-restore"):
        run_tool([tool], netns, EMPTY_FILTER)
    _destroy_sets(_netfence_sets(netns), netns)


def holds_iptables(netns: str | None) -> bool:
    """Whether netfence's chains or sets are there (what `delete_iptables` would remove)."""
    return ":NETFENCE-" in run_tool(["iptables-save", "-t", "filter"], netns) or bool(_netfence_sets(netns))


def read_iptables(netns: str | None) -> str:
    """`iptables-save -t filter` and `ipset list -n`: what the kernel holds, for review."""
    return run_tool(["iptables-save", "-t", "filter"], netns) + run_tool(["ipset", "list", "-n"], netns)


def _netfence_sets(netns: str | None) -> list[str]:
    return [name for name in run_tool(["ipset", "list", "-n"], netns).split() if name.startswith(SET_PREFIX)]


def _destroy_sets(names: Sequence[str], netns: str | None) -> None:
    for name in names:
        try:
            run_tool(["ipset", "destroy", name], netns)
        except DataplaneError:
            if not name.endswith(NEW_SUFFIX):
                raise
