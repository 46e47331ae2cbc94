"""Address sets as sorted integer spans per IP version: union, intersection, difference, and
their text forms (nft elements, CIDRs for ipset). Pure functions over plain tuples."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from netfence.model.endpoints import IPAddress
from netfence.model.policies import IPNetwork

#: {4: [(lo, hi), ...], 6: [...]}: inclusive integer ranges, merged and sorted.
Spans = dict[int, list[tuple[int, int]]]

FULL = {4: 2**32 - 1, 6: 2**128 - 1}


def everything() -> Spans:
    return {4: [(0, FULL[4])], 6: [(0, FULL[6])]}


def merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def of_addresses(addresses: Iterable[IPAddress]) -> Spans:
    out: Spans = {4: [], 6: []}
    for ip in addresses:
        out[ip.version].append((int(ip), int(ip)))
    return {family: merge(spans) for family, spans in out.items()}


def of_networks(networks: Iterable[IPNetwork]) -> Spans:
    out: Spans = {4: [], 6: []}
    for net in networks:
        out[net.version].append((int(net.network_address), int(net.broadcast_address)))
    return {family: merge(spans) for family, spans in out.items()}


def union(*parts: Spans) -> Spans:
    return {family: merge(s for part in parts for s in part.get(family, [])) for family in (4, 6)}


def _intersect(a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def intersect(a: Spans | None, b: Spans) -> Spans:
    """a ∩ b; a None stands for every address."""
    if a is None:
        return {family: list(b.get(family, [])) for family in (4, 6)}
    return {family: _intersect(a.get(family, []), b.get(family, [])) for family in (4, 6)}


def subtract(a: Spans | None, b: Spans) -> Spans:
    """a - b; a None stands for every address."""
    if a is None:
        a = everything()
    out: Spans = {}
    for family in (4, 6):
        complement, start = [], 0
        for lo, hi in b.get(family, []):
            if lo > start:
                complement.append((start, lo - 1))
            start = hi + 1
        if start <= FULL[family]:
            complement.append((start, FULL[family]))
        out[family] = _intersect(a.get(family, []), complement)
    return out


def is_everything(spans: Sequence[tuple[int, int]], family: int) -> bool:
    return list(spans) == [(0, FULL[family])]


def networks(family: int, spans: Iterable[tuple[int, int]]) -> list[IPNetwork]:
    """The fewest CIDRs covering exactly the spans (what ipset's hash:net holds)."""
    make = ipaddress.IPv4Address if family == 4 else ipaddress.IPv6Address
    out: list[IPNetwork] = []
    for lo, hi in merge(spans):
        out.extend(ipaddress.summarize_address_range(make(lo), make(hi)))
    return out


def nft_elements(family: int, spans: Iterable[tuple[int, int]]) -> tuple[str, ...]:
    """nft interval set elements: an address, a prefix when the range is one, else `a-b`."""
    make = ipaddress.IPv4Address if family == 4 else ipaddress.IPv6Address
    bits = 32 if family == 4 else 128
    out = []
    for lo, hi in merge(spans):
        size = hi - lo + 1
        if size == 1:
            out.append(str(make(lo)))
        elif size & (size - 1) == 0 and lo % size == 0:
            out.append(f"{make(lo)}/{bits - size.bit_length() + 1}")
        else:
            out.append(f"{make(lo)}-{make(hi)}")
    return tuple(out)


def without_excepts(network: IPNetwork, excepts: Iterable[IPNetwork]) -> Spans:
    """A CIDR minus its `except` CIDRs."""
    return subtract(of_networks([network]), of_networks(list(excepts)))
