"""Time the node agent from an API event to the rule enforced in the kernel: pod churn and
policy edits, at 100 and 500 local endpoints, p50/p99 over 200 changes each.

Run as root (from the repository root, after `bash scripts/setup.sh`):

    .venv/bin/python bench/bench_agent.py                          # 100 and 500 endpoints, 200 changes
    .venv/bin/python bench/bench_agent.py --endpoints 500 --changes 50 --interval-ms 20

What is measured. The in-process API server of the tests (tests/agent/fake_apiserver.py, the
real list/watch wire protocol) holds a cluster with N pods on the agent's node (the local
endpoints), N/2 pods on other nodes, and a default deny per namespace and N/10 NetworkPolicies
allowing other apps on named and numbered ports. One `netfence agent` process (the real
CLI, `--kubeconfig` to that server, `--netns` to a throwaway namespace netfence-bench-<pid>)
enforces it. `nft monitor` in that namespace prints every committed transaction ("# new
generation"). A change is timed from just before the API server accepts the write to the first
commit that follows:

- pod churn: a local pod, selected by a policy and a peer of another, created, then deleted
  (each a change): the agent's answer is one element update of sets and maps;
- policy edits: one policy's port changed back and forth: one in-place replacement of the rules.

Changes are made one at a time, each after the agent logged the end of the previous sync. The rows "sync
update" and "sync replace" are the agent's own account of each sync (building the table from its
cache plus the kernel change), read from its log: the rest of the latency is the coalescing
window, the watch event's delivery and scheduling. `--interval-ms` is
the agent's coalescing window (default 10 ms here; the agent's default is 100 ms, which adds to
every figure). Nothing touches the root network namespace except a listening socket on
127.0.0.1 for the API server.
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "agent"))
from fake_apiserver import FakeApiServer  # noqa: E402  (tests/agent/fake_apiserver.py)

NODE = "bench-node"
APPS = 20
NAMESPACES = 10


def pod(ns: str, name: str, ip: str, node: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x",
                 "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9090}]}]},  # fmt: skip
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    }


def policy(ns: str, name: str, app: str, peer: str, port: int | str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "podSelector": {"matchLabels": {"app": app}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": peer}}},
                                  {"namespaceSelector": {"matchLabels": {"team": "ops"}}}],
                         "ports": [{"port": port}]}],  # fmt: skip
        },
    }


def cluster(local: int) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for n in range(NAMESPACES):
        labels = {"kubernetes.io/metadata.name": f"ns{n}", **({"team": "ops"} if n == 0 else {})}
        objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns{n}", "labels": labels}})
    for i in range(local + local // 2):
        node = NODE if i < local else f"node{i % 7}"
        objects.append(pod(f"ns{i % NAMESPACES}", f"p{i}", f"10.{40 + i // 60000}.{i // 250 % 240}.{i % 250 + 1}", node, f"a{i % APPS}"))
    for n in range(NAMESPACES):
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": {"name": "default-deny", "namespace": f"ns{n}"},
                        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})  # fmt: skip
    for j in range(local // 10):
        port: int | str = "http" if j % 2 else 9090
        objects.append(policy(f"ns{j % NAMESPACES}", f"allow-{j}", f"a{j % APPS}", f"a{(j + 1) % APPS}", port))
    return objects


class Monitor:
    """`nft monitor` in the namespace: the time of every committed transaction."""

    def __init__(self, netns: str) -> None:
        command = ["nsenter", f"--net=/run/netns/{netns}", "stdbuf", "-oL", "nft", "monitor"]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.commits: queue.Queue[float] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("# new generation"):
                self.commits.put(time.perf_counter())

    def drain(self) -> None:
        while not self.commits.empty():
            self.commits.get_nowait()

    def next_after(self, started: float, timeout: float = 30.0) -> float:
        deadline = time.perf_counter() + timeout
        while True:
            at = self.commits.get(timeout=max(0.01, deadline - time.perf_counter()))
            if at >= started:
                return at

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def settle(monitor: Monitor, quiet: float = 0.3) -> None:
    """Wait until nothing has been committed for `quiet` seconds."""
    while True:
        try:
            monitor.commits.get(timeout=quiet)
        except queue.Empty:
            return


def syncs(log: Path) -> int:
    return sum(1 for line in log.read_text().splitlines() if " synced " in line)


def finished(log: Path, count: int, timeout: float = 30.0) -> int:
    """Wait for the agent's `count`-th sync to be logged (a replacement's read-back follows its
    commit: the next change must not arrive while it runs, or two edits may coalesce)."""
    deadline = time.monotonic() + timeout
    while syncs(log) < count:
        if time.monotonic() > deadline:
            sys.exit(f"the agent logged no sync {count}; its log:\n" + log.read_text()[-4000:])
        time.sleep(0.002)
    return count


def run(local: int, changes: int, interval_ms: int, netns: str, work: Path) -> dict[str, list[float]]:
    api = FakeApiServer()
    url = api.start()
    for obj in cluster(local):
        api.create(obj)
    config = work / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: b\n"
        f"clusters: [{{name: b, cluster: {{server: '{url}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: b, context: {cluster: b, user: u}}]\n"
    )
    subprocess.run(["nsenter", f"--net=/run/netns/{netns}", "nft", "flush", "ruleset"], check=True)
    monitor = Monitor(netns)
    log = open(work / f"agent-{local}.log", "w")  # noqa: SIM115 - closed below
    agent = subprocess.Popen(
        [sys.executable, "-m", "netfence", "agent", "--node", NODE, "--kubeconfig", str(config), "--netns", netns,
         "--interval-ms", str(interval_ms), "--verify-interval-ms", "3600000", "--metrics-addr", "off",
         "--calico-api", "none"],  # fmt: skip
        stdout=log, stderr=log,
    )
    results: dict[str, list[float]] = {"pod churn": [], "policy edit": [], "sync update": [], "sync replace": []}
    try:
        monitor.next_after(0.0, timeout=120)  # the table created
        settle(monitor)
        path = work / f"agent-{local}.log"
        log.flush()
        done = finished(path, 1)
        # Pod churn: a local pod that a policy selects (app a1) and that is a peer of another (a0).
        for k in range(changes):
            name = f"churn{k // 2}"
            monitor.drain()
            started = time.perf_counter()
            if k % 2 == 0:
                api.create(pod("ns1", name, f"10.99.{k // 500}.{k // 2 % 250 + 1}", NODE, "a1"))
            else:
                api.delete("v1", "Pod", name, "ns1")
            results["pod churn"].append(monitor.next_after(started) - started)
            done = finished(path, done + 1)
        # Policy edits: the port of one allow policy, back and forth.
        target = next(o for o in cluster(local) if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].startswith("allow-"))
        for k in range(changes):
            edited = policy(target["metadata"]["namespace"], target["metadata"]["name"],
                            target["spec"]["podSelector"]["matchLabels"]["app"],
                            target["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app"],
                            8000 + k % 2)  # fmt: skip
            monitor.drain()
            started = time.perf_counter()
            api.update(edited)
            results["policy edit"].append(monitor.next_after(started) - started)
            done = finished(path, done + 1)
    finally:
        agent.terminate()
        agent.wait()
        log.close()
        monitor.stop()
        api.stop()
    # The agent's own account: build plus kernel change, per sync ("synced result=update ms=...").
    for line in (work / f"agent-{local}.log").read_text().splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if " synced " in line and fields.get("result") in ("update", "replace"):
            results[f"sync {fields['result']}"].append(float(fields["ms"]) / 1000)
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, nargs="+", default=[100, 500], help="local endpoints (default 100 500)")
    parser.add_argument("--changes", type=int, default=200, help="changes of each kind (default 200)")
    parser.add_argument("--interval-ms", type=int, default=10, help="the agent's coalescing window (default 10)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (a network namespace and nft)", file=sys.stderr)
        return 2
    netns = f"netfence-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="netfence-bench-") as tmp:
            for local in args.endpoints:
                for kind, values in run(local, args.changes, args.interval_ms, netns, Path(tmp)).items():
                    rows.append((local, kind, len(values), percentile(values, 0.5), percentile(values, 0.99),
                                 statistics.mean(values), max(values)))  # fmt: skip
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)
    load = os.getloadavg()[0]
    print(f"API event -> enforced (nft commit), agent --interval-ms {args.interval_ms}; load average {load:.1f} on {os.cpu_count()} CPUs")
    print("(sync update / sync replace: the agent's own time per sync, build + kernel change, from its log)")
    print(f"{'local endpoints':>15} {'change':<12} {'n':>4} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'max ms':>8}")
    for local, kind, n, p50, p99, mean, top in rows:
        print(f"{local:>15} {kind:<12} {n:>4} {p50 * 1000:>8.1f} {p99 * 1000:>8.1f} {mean * 1000:>8.1f} {top * 1000:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
