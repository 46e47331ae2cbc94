"""The lab state file, /run/netfence/lab/<name>.json: how separate invocations find a lab.

It holds the plan and the server's pid. It is written before the first netns is created, so
even a lab whose `up` was killed midway has one (and `lab clean` finds the rest by prefix).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from netfence.errors import NetfenceError
from netfence.lab.plan import LabExternal, LabNode, LabPlan, LabPod, check_lab_name
from netfence.model.endpoints import EndpointId
from netfence.model.ports import FlowPort, Protocol

STATE_DIR = Path("/run/netfence/lab")
_VERSION = 1


@dataclass(frozen=True, slots=True)
class LabState:
    plan: LabPlan
    #: The background server (None until it answers).
    server_pid: int | None = None


def state_path(name: str) -> Path:
    return STATE_DIR / f"{check_lab_name(name)}.json"


def log_path(name: str) -> Path:
    """The server's stderr."""
    return STATE_DIR / f"{check_lab_name(name)}.log"


def save_state(state: LabState) -> Path:
    """Write atomically (temporary file + rename), so a crash never leaves half a file."""
    path = state_path(state.plan.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".tmp{os.getpid()}")
    temporary.write_text(json.dumps(_state_data(state), indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)
    return path


def load_state(name: str) -> LabState | None:
    """The lab's state, or None when there is no state file."""
    path = state_path(name)
    try:
        data = json.loads(path.read_text())
        return _state_from(data)
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise NetfenceError(f"{path}: not a netfence lab state file ({exc}); run `netfence lab clean`") from None


def require_state(name: str) -> LabState:
    state = load_state(name)
    if state is None:
        raise NetfenceError(f"no lab {name!r} (no {state_path(name)}); start one with `netfence lab up -f FILES`")
    return state


def lab_names() -> list[str]:
    """Names of the labs that have a state file."""
    if not STATE_DIR.is_dir():
        return []
    return sorted(p.stem for p in STATE_DIR.glob("*.json"))


def _state_data(state: LabState) -> dict[str, Any]:
    plan = state.plan
    return {
        "version": _VERSION,
        "server_pid": state.server_pid,
        "plan": {
            "name": plan.name,
            "underlay": plan.underlay,
            "network": str(plan.network),
            "notes": list(plan.notes),
            "nodes": [
                {"name": n.name, "netns": n.netns, "ip": str(n.ip), "mac": n.mac, "uplink": n.uplink}
                for n in plan.nodes
            ],
            "pods": [
                {
                    "id": p.id,
                    "node": p.node,
                    "netns": p.netns,
                    "veth": p.veth,
                    "ip": str(p.ip),
                    "mac": p.mac,
                    "ports": [{"port": f.port, "protocol": str(f.protocol)} for f in p.ports],
                    "allocated": p.allocated,
                }
                for p in plan.pods
            ],
            "externals": [
                {
                    "id": x.id,
                    "netns": x.netns,
                    "uplink": x.uplink,
                    "ip": str(x.ip),
                    "mac": x.mac,
                    "ports": [{"port": f.port, "protocol": str(f.protocol)} for f in x.ports],
                    "allocated": x.allocated,
                }
                for x in plan.externals
            ],
        },
    }


def _state_from(data: dict[str, Any]) -> LabState:
    if data.get("version") != _VERSION:
        raise ValueError(f"version {data.get('version')!r}, expected {_VERSION}")
    raw = data["plan"]
    plan = LabPlan(
        name=raw["name"],
        underlay=raw["underlay"],
        network=IPv4Network(raw["network"]),
        nodes=tuple(
            LabNode(n["name"], n["netns"], IPv4Address(n["ip"]), n["mac"], n["uplink"]) for n in raw["nodes"]
        ),
        pods=tuple(
            LabPod(
                EndpointId(p["id"]),
                p["node"],
                p["netns"],
                p["veth"],
                IPv4Address(p["ip"]),
                p["mac"],
                tuple(FlowPort(Protocol(f["protocol"]), f["port"]) for f in p["ports"]),
                bool(p["allocated"]),
            )
            for p in raw["pods"]
        ),
        notes=tuple(raw["notes"]),
        externals=tuple(
            LabExternal(
                EndpointId(x["id"]),
                x["netns"],
                x["uplink"],
                IPv4Address(x["ip"]),
                x["mac"],
                tuple(FlowPort(Protocol(f["protocol"]), f["port"]) for f in x["ports"]),
                bool(x["allocated"]),
            )
            for x in raw.get("externals", [])
        ),
    )
    pid = data.get("server_pid")
    return LabState(plan, int(pid) if pid is not None else None)
