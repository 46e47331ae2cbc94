"""Apply a rendered ruleset to a node's kernel: `nft --check`, then one atomic `nft -f`.

The nft CLI is driven as a subprocess (argument lists, never a shell), inside the node's
network namespace through nsenter when one is named; a script reaches it whole, as a file
(never a pipe that a dying writer could cut short). A failed check or apply leaves the
kernel's table exactly as it was: the last good ruleset stays.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from typing import BinaryIO

from netfence.dataplane.nft.objects import (
    TABLE_FAMILY,
    TABLE_NAME,
    Table,
    TableNames,
    transition_script,
    update_script,
)
from netfence.errors import NetfenceError


class DataplaneError(NetfenceError):
    """The kernel refused a ruleset (or nft is missing); nothing was changed."""


#: Seconds an nft run may take (a node's largest table applies in a few). A hung nft is killed
#: and counts as a failed apply: the kernel applies a transaction whole or not at all, so the
#: table is the old one or the new one, and the next sync reads which.
NFT_TIMEOUT = 120.0


def _command(args: Sequence[str], netns: str | None) -> list[str]:
    nft = shutil.which("nft") or "/usr/sbin/nft"
    if netns is None:
        return [nft, *args]
    nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
    # A name under /run/netns (`ip netns`), or a path such as /proc/PID/ns/net.
    path = netns if netns.startswith("/") else f"/run/netns/{netns}"
    return [nsenter, f"--net={path}", nft, *args]


def run_nft(args: Sequence[str], netns: str | None, stdin: str | None = None) -> str:
    """Run nft; `stdin` (a script for `-f -`) is handed over whole, as a file written before nft
    starts (see `whole_file`)."""
    where = f" in network namespace {netns}" if netns else ""
    try:
        with whole_file(stdin) if stdin is not None else contextlib.nullcontext() as script:
            proc = subprocess.run(
                _command(args, netns), stdin=script, capture_output=True, text=True, check=False, timeout=NFT_TIMEOUT
            )
    except FileNotFoundError as exc:
        raise DataplaneError(f"cannot run nft: {exc.strerror}: {exc.filename}") from None
    except subprocess.TimeoutExpired:
        raise DataplaneError(f"nft {' '.join(args)}{where} did not finish in {NFT_TIMEOUT:g} s and was killed") from None
    if proc.returncode != 0:
        raise DataplaneError(f"nft {' '.join(args)}{where} failed: {proc.stderr.strip()}")
    return proc.stdout


def whole_file(text: str) -> BinaryIO:
    """`text` in an anonymous in-memory file, rewound: nft's standard input.

    Not a pipe: a pipe is written while nft runs, and if this process dies meanwhile (kill -9 of
    the agent alone, the OOM killer) nft reads a script cut short, then end of file. A cut
    transaction can still parse (a rule cut before its verdict or inside a port number, after a
    `flush table`), and the kernel would apply half a table. A file is whole before nft starts:
    nft gets all of the script or is never started. memfd needs no writable filesystem (the
    agent's root filesystem is read-only); a temporary file where there is no memfd.
    """
    try:
        fd = os.memfd_create("netfence-nft", os.MFD_CLOEXEC)
        handle: BinaryIO = os.fdopen(fd, "w+b")
    except (AttributeError, OSError):
        handle = tempfile.TemporaryFile()
    try:
        handle.write(text.encode())
        handle.flush()
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return handle


def apply_script(script: str, netns: str | None) -> None:
    """Check, then apply `script` in one transaction."""
    run_nft(["--check", "-f", "-"], netns, script)
    run_nft(["-f", "-"], netns, script)


def apply_table(new: Table, netns: str | None, old: Table | None = None) -> str:
    """Make the kernel hold `new` in one transaction: element updates when only memberships
    changed since `old` (what this caller applied last), else an in-place replacement of the
    table's rules that keeps its sets (with `old` None, what the kernel holds is read first).
    Returns "update", "replace" or "unchanged"."""
    if old is not None:
        script = update_script(old, new)
        if script == "":
            return "unchanged"
        if script is not None:
            apply_script(script, netns)
            return "update"
    apply_script(transition_script(old.names() if old is not None else kernel_names(netns), new), netns)
    return "replace"


def kernel_names(netns: str | None) -> TableNames | None:
    """The sets, maps and chains of the kernel's netfence table; None when there is none."""
    if read_table_exists(netns) is False:
        return None
    listing = json.loads(run_nft(["-j", "list", "table", TABLE_FAMILY, TABLE_NAME], netns)).get("nftables", [])
    sets, maps, chains = set(), set(), set()
    for item in listing:
        if "set" in item:
            sets.add((item["set"]["name"], str(item["set"]["type"])))
        elif "map" in item:
            maps.add(item["map"]["name"])
        elif "chain" in item:
            chains.add(item["chain"]["name"])
    return TableNames(frozenset(sets), frozenset(maps), frozenset(chains))


def read_table_exists(netns: str | None) -> bool:
    tables = run_nft(["list", "tables", TABLE_FAMILY], netns)
    return f"table {TABLE_FAMILY} {TABLE_NAME}" in tables.splitlines()


def read_table(netns: str | None) -> str | None:
    """The netfence table as the kernel has it, or None when there is none."""
    if not read_table_exists(netns):
        return None
    return run_nft(["list", "table", TABLE_FAMILY, TABLE_NAME], netns)


def read_counters(netns: str | None) -> dict[str, tuple[int, int]]:
    """Packets and bytes per rule comment (policy rule or end of tier), summed over the rules
    that carry it; read from `nft -j` in one listing. Counters restart at every replacement."""
    text = run_nft(["-j", "list", "table", TABLE_FAMILY, TABLE_NAME], netns)
    totals: dict[str, tuple[int, int]] = {}
    for item in json.loads(text).get("nftables", []):
        rule = item.get("rule")
        if not rule or "comment" not in rule:
            continue
        for expr in rule.get("expr", []):
            counter = expr.get("counter") if isinstance(expr, dict) else None
            if isinstance(counter, dict):
                packets, octets = totals.get(rule["comment"], (0, 0))
                totals[rule["comment"]] = (packets + int(counter["packets"]), octets + int(counter["bytes"]))
    return totals


def delete_table(netns: str | None) -> None:
    if read_table(netns) is not None:
        run_nft(["delete", "table", TABLE_FAMILY, TABLE_NAME], netns)
