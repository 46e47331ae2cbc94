"""Long fault-injection runs of the agent: the properties of tests/robustness/test_agent_faults.py
and tests/agent/test_agent_api_faults.py, for many more trials.

Run (root, nft, ip):

    .venv/bin/python bench/faults.py [--kills 50] [--pods 400] [--lab-kills 10] [--api 50] [--seed N]

- kills: per kind of kill (SIGKILL of the agent alone or of its process group, SIGTERM; after a
  random delay or while its `nft -f` runs), trials of the real agent process in a throwaway
  netns: after each, the kernel must hold exactly the old or the new ruleset, and the restarted
  agent must reach the current state (adopting a table that already is it);
- lab-kills: `lab up` + `lab agents` SIGKILLed at a random point, then `lab clean`: no namespace,
  root-namespace interface or process of the lab may remain;
- api: random API server faults (410, 500, no answer, stalled or cut bodies, garbage) of random
  length against one in-process agent: while a fault lasts the table stays the last good one,
  afterwards the agent reaches the API's current state by itself.

Prints the counts; exit status 1 when any property failed.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "robustness"))
sys.path.insert(0, str(ROOT / "tests" / "agent"))

from agent_faults import MODES, Bench, netns  # noqa: E402


def run_kills(trials: int, pods: int, seed: int) -> tuple[int, int]:
    started = time.monotonic()
    with netns() as name, netns("ref") as reference, tempfile.TemporaryDirectory() as workdir:
        bench = Bench(Path(workdir), name, reference, pods=pods, seed=seed)
        bench.start()
        rng = random.Random(seed)
        order = [mode for mode in MODES for _ in range(trials)]
        rng.shuffle(order)
        try:
            for done, mode in enumerate(order, 1):
                bench.trial(mode)
                if done % 25 == 0:
                    print(f"kills: {done}/{len(order)}, {len(bench.tally.failures)} failures", flush=True)
        finally:
            bench.close()
    tally = bench.tally
    print(f"kills: {len(order)} trials of {pods} pods in {time.monotonic() - started:.0f} s")
    print(tally.summary())
    for failure in tally.failures[:20]:
        print("  FAILED:", failure)
    failures = len(tally.failures) + (1 if tally.piped_scripts else 0) + sum(n for code, n in tally.sigterm_exits.items() if code != 0)
    return len(order), failures


def run_lab_kills(count: int, seed: int) -> tuple[int, int]:
    from test_agent_faults import kill_lab_and_clean

    rng = random.Random(seed)
    failures = 0
    found_before: Counter[str] = Counter()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as workdir:
        for i in range(count):
            name = f"b{uuid.uuid4().hex[:8]}"
            found = kill_lab_and_clean(Path(workdir), name, rng.uniform(0.3, 6.0))
            found_before["with netns left" if found["netns"] else "before any netns"] += 1
            found_before["with processes left"] += 1 if found["processes"] else 0
            if found["clean_status"] != 0 or found["netns_after"] or found["processes_after"] or found["interfaces_added"]:
                failures += 1
                print(f"  FAILED lab {name}: {found}")
    print(f"lab-kills: {count} in {time.monotonic() - started:.0f} s; killed {dict(found_before)}; {failures} failures")
    return count, failures


def run_api(count: int, seed: int) -> tuple[int, int]:
    from fake_apiserver import FakeApiServer
    from fake_kernel import FakeKernel, view_of
    from kube_objects import netpol, pod, snapshot, wait_until
    from kubernetes import client
    from test_agent_api_faults import BASE, FAULTS, NODE, SHORT, STILL_LISTING

    from netfence.agent import run as run_module
    from netfence.agent.run import Agent, AgentConfig
    from netfence.agent.table import Interfaces, build_desired
    from netfence.sources.kube_api import KubeSource, resources

    run_module.STALE_AFTER = 0.3
    rng = random.Random(seed)
    server = FakeApiServer(bookmark_interval=0.1)
    server.start()
    for obj in BASE:
        server.create(obj)
    settings = client.Configuration()
    settings.host = server.url
    interfaces = Interfaces("nf")
    source = KubeSource(settings, resources("crd"), SHORT)
    kernel = FakeKernel()
    agent = Agent(AgentConfig(NODE, interval=0.02, verify_interval=0.2, interfaces=interfaces), source, kernel)  # type: ignore[arg-type]
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()

    def expected() -> Any:
        objects = [o for kind in server._kinds.values() for o in kind.objects.values()]
        return view_of(build_desired(snapshot(*objects), NODE, interfaces).table)

    seen: Counter[str] = Counter()
    failures = 0
    started = time.monotonic()
    try:
        wait_until(lambda: kernel.view == expected() and agent.ready, what="the first sync")
        for i in range(count):
            fault = rng.choice(list(FAULTS))
            before = kernel.view
            server.wait_for_watches(len(source.informers))  # none still connecting from before the fault
            server.inject(**FAULTS[fault])
            server.expire()
            server.drop_watches()
            if i % 2:
                server.update(netpol("dev/allow-client", {"app": "web"}, {"app": "client"}, port=8000 + i % 50))
            elif f"x{i - 2}" in {k[1] for k in server._kinds["/api/v1/pods"].objects}:
                server.delete("v1", "Pod", f"x{i - 2}", "dev")
            else:
                server.create(pod(f"dev/x{i}", f"10.0.{1 + i // 250}.{i % 250 + 1}", app="web"))
            time.sleep(rng.uniform(0.2, 1.5))
            problems = []
            if fault not in STILL_LISTING and kernel.view != before:
                problems.append("the table changed while the API server failed")
            if not thread.is_alive() or not all(inf._thread is not None and inf._thread.is_alive() for inf in source.informers):
                problems.append("a thread died")
            server.clear_faults()
            try:
                wait_until(lambda: kernel.view == expected() and agent.ready, timeout=15, what="recovery")
            except AssertionError:
                problems.append("no recovery within 15 s")
            seen[fault] += 1
            if problems:
                failures += 1
                print(f"  FAILED {fault}: {'; '.join(problems)}")
    finally:
        agent.stop.set()
        thread.join(10)
        server.stop()
    print(f"api: {count} faults in {time.monotonic() - started:.0f} s ({len(seen)} kinds); {failures} failures")
    return count, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50, help="trials per kind of kill (6 kinds); 0 to skip")
    parser.add_argument("--pods", type=int, default=400, help="pods of the cluster the killed agent enforces")
    parser.add_argument("--lab-kills", type=int, default=10, help="labs killed at a random point and cleaned; 0 to skip")
    parser.add_argument("--api", type=int, default=50, help="API server faults; 0 to skip")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"seed {seed}", flush=True)
    failed = 0
    if args.api:
        failed += run_api(args.api, seed)[1]
    if args.kills:
        failed += run_kills(args.kills, args.pods, seed)[1]
    if args.lab_kills:
        failed += run_lab_kills(args.lab_kills, seed)[1]
    print("all properties held" if not failed else f"{failed} failures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
