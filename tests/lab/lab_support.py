"""Helpers for the lab tests: processes of a lab, the root netns as seen before, generated clusters."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml


def lab_processes(name: str) -> list[int]:
    """Processes whose command line names lab `name` (its server, a `netfence lab ... --name`)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as handle:
                zombie = handle.read().rpartition(")")[2].split()[0] == "Z"
        except OSError:
            continue
        if not zombie and b"netfence" in b" ".join(argv) and name.encode() in argv:
            found.append(int(entry))
    return found


def root_netns_snapshot() -> dict[str, str]:
    """What the lab must never change in this (the initial) network namespace."""
    commands = {
        "links": ["ip", "-o", "link", "show"],
        "addresses": ["ip", "-o", "address", "show"],
        "routes": ["ip", "route", "show", "table", "all"],
        "rules": ["ip", "rule", "show"],
        "neighbours": ["ip", "neigh", "show", "nud", "permanent"],
        "nft": ["nft", "list", "ruleset"],
    }
    return {key: subprocess.run(argv, capture_output=True, text=True, check=True).stdout for key, argv in commands.items()}


def write_cluster(path: Path, pods: int, nodes: int) -> str:
    """A namespace with `pods` pods spread over `nodes` nodes, each serving TCP 80."""
    docs: list[dict[str, object]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}]
    for i in range(pods):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"p{i}", "namespace": "bench", "labels": {"app": f"a{i % 3}"}},
                "spec": {
                    "nodeName": f"node{i % nodes}",
                    "containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}],
                },
                "status": {"phase": "Running", "podIP": f"10.{i % nodes}.{i // 250}.{i % 250 + 1}"},
            }
        )
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)
