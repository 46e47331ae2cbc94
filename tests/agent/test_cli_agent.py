"""netfence agent's command line: what it refuses before it touches anything."""

from __future__ import annotations

from collections.abc import Callable

import pytest

Run = Callable[..., tuple[int, str, str]]


def test_the_node_is_required(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    assert run("agent", "-f", "x") == (2, "", "error: --node: which node is this? (or set $NODE_NAME, or give --host NAME)\n")


def test_one_source_at_a_time(run: Run) -> None:
    code, _, err = run("agent", "--node", "n", "-f", "x", "--kubeconfig", "y")
    assert code == 2 and err == "error: give either -f PATH or --kubeconfig PATH, not both\n"


def test_hash_naming_needs_a_short_prefix(run: Run) -> None:
    code, _, err = run("agent", "--node", "n", "-f", "x", "--interface-prefix", "vethpod")
    assert code == 2 and "--interface-prefix: at most 4 characters with hash naming, got 'vethpod'" in err


def test_intervals_are_positive_milliseconds(run: Run) -> None:
    code, _, err = run("agent", "--node", "n", "-f", "x", "--interval-ms", "0")
    assert code == 2 and "--interval-ms: expected a positive number of milliseconds, got 0" in err


def test_an_unknown_lab_is_named(run: Run) -> None:
    code, _, err = run("agent", "--node", "n", "-f", "x", "--lab", "nosuchlab0")
    assert code == 2 and "no lab 'nosuchlab0'" in err
