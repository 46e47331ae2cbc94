"""The fake API server served inside a lab node's network namespace, and the agent's HTTP
endpoints read from there: what the agent lab tests share."""

from __future__ import annotations

import socket
from pathlib import Path

import yaml
from fake_apiserver import FakeApiServer

from netfence.lab.connection import socket_in

#: Where the agents of the lab tests serve /metrics, on their node's own loopback.
METRICS_PORT = 9617


def serve_in(api: FakeApiServer, netns: str, folder: Path) -> Path:
    """Serve `api` on the loopback of `netns`; the kubeconfig that reaches it, written in `folder`."""
    listener = socket_in(netns, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    api.serve_socket(listener)
    config = folder / "kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "agent", "user": {"token": "lab"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "agent"}}],
    }))  # fmt: skip
    return config


def agent_metrics(netns: str) -> str:
    """GET /metrics from the agent running in `netns`."""
    sock = socket_in(netns, socket.SOCK_STREAM)
    try:
        sock.settimeout(5)
        sock.connect(("127.0.0.1", METRICS_PORT))
        sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    finally:
        sock.close()
    return data.decode()
