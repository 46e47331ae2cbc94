"""How fast NFLOG messages can be read, and at what CPU cost: netfence's own netlink reader
against libnetfilter_log through nflogr, and against ulogd2 writing JSON that netfence would tail.

Run as root; everything happens in a throwaway `netfence-bench-nflog` netns (a table there logs
every UDP datagram to 127.0.0.2:9 to NFLOG group 5 and drops it; a sender inside sends N):

    .venv/bin/python bench/bench_nflog.py [-n 100000]
        [--nflogr-python PATH]   a Python with nflogr installed (it needs libnetfilter-log-dev and
                                 a compiler to build; not a netfence dependency)
        [--ulogd PATH --ulogd-plugins DIR]   ulogd2's binary and plugin directory (ulogd2, ulogd2-json)

Each reader prints: messages received of those sent, seconds from the first to the last, and
the reader's CPU seconds (its process's user + system time; for ulogd2 the daemon's, plus the
cost of parsing its JSON lines in Python).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from netfence.dataplane.nflog import NflogSocket, decode_header

NETNS = "netfence-bench-nflog"
TABLE = """table inet bench {
    chain out { type filter hook output priority filter; policy accept;
        ip daddr 127.0.0.2 udp dport 9 log group 5 prefix "netfence:Di:0123456789" drop;
    }
}
"""
SENDER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[1])):
    try:
        s.sendto(b"x" * 32, ("127.0.0.2", 9))
    except OSError:
        pass
"""
NFLOGR_READER = """
import sys
sys.stderr = open("/dev/null", "w")
import json, resource, select, sys, time, nflogr
sent = int(sys.argv[1])
log = nflogr.open(5, rcvbuf=8 << 20, enobufs=nflogr.ENOBUFS_HANDLE)
print("ready", flush=True)
count, first, last = 0, None, None
fd = log.getfd()
error = None
while True:
    ready, _, _ = select.select([fd], [], [], 2.0)
    if not ready:
        break
    try:
        log.queue(False)
    except BaseException as exc:  # it raises on messages without NFULA_TIMESTAMP
        error = f"{type(exc).__name__}: {exc} ({exc.__cause__})"
        break
    while True:
        data = log.next(False)
        if data is None:
            break
        payload = data.payload
        prefix = data.prefix
        count += 1
        last = time.monotonic()
        first = first or last
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"received": count, "seconds": (last or 0) - (first or 0), "cpu": usage.ru_utime + usage.ru_stime, "drops": log.drops, "error": error}))
"""
ULOGD_CONF = """[global]
logfile="{log}"
loglevel=5
plugin="{plugins}/ulogd_inppkt_NFLOG.so"
plugin="{plugins}/ulogd_raw2packet_BASE.so"
plugin="{plugins}/ulogd_filter_IFINDEX.so"
plugin="{plugins}/ulogd_filter_IP2STR.so"
plugin="{plugins}/ulogd_output_JSON.so"
stack=log1:NFLOG,base1:BASE,ifi1:IFINDEX,ip2str1:IP2STR,json1:JSON

[log1]
group=5
netlink_socket_buffer_size=8388608
netlink_socket_buffer_maxsize=8388608

[json1]
sync=0
file="{out}"
"""


def sh(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True)


def send(count: int) -> None:
    sh("ip", "netns", "exec", NETNS, sys.executable, "-c", SENDER, str(count))


def netfence_reader(count: int, qthreshold: int) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_SELF)
    reader = NflogSocket(5, NETNS, qthreshold=qthreshold, timeout_cs=1, receive_buffer=8 << 20)
    sender = subprocess.Popen(["ip", "netns", "exec", NETNS, sys.executable, "-c", SENDER, str(count)])
    received, first, last = 0, None, None
    while True:
        ready, _, _ = select.select([reader], [], [], 2.0)
        if not ready:
            break
        for packet in reader.read():
            decode_header(packet.family, packet.payload)
            received += 1
            last = time.monotonic()
            first = first or last
    sender.wait()
    reader.close()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"received": received, "seconds": (last or 0) - (first or 0), "cpu": cpu, "overruns": reader.overruns}


def nflogr_reader(count: int, python: str) -> dict[str, float]:
    reader = subprocess.Popen(
        ["ip", "netns", "exec", NETNS, python, "-c", NFLOGR_READER, str(count)], stdout=subprocess.PIPE, text=True
    )
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "ready"
    send(count)
    result: dict[str, float] = json.loads(reader.stdout.read())
    reader.wait()
    return result


def ulogd_reader(count: int, binary: str, plugins: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="netfence-bench-ulogd-") as work:
        out, log, conf = Path(work, "out.json"), Path(work, "ulogd.log"), Path(work, "ulogd.conf")
        conf.write_text(ULOGD_CONF.format(log=log, plugins=plugins, out=out))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        daemon = subprocess.Popen(["ip", "netns", "exec", NETNS, binary, "-c", str(conf)])
        time.sleep(1.0)  # no readiness signal: give it time to bind the group
        started = time.monotonic()
        send(count)
        lines = 0
        while True:  # until the file stops growing
            time.sleep(1.0)
            now = sum(1 for _ in out.open()) if out.exists() else 0
            if now == lines:
                break
            lines = now
        seconds = time.monotonic() - started - 1.0
        daemon.send_signal(signal.SIGTERM)
        daemon.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        parse_start = time.process_time()
        with out.open() as handle:
            parsed = [json.loads(line) for line in handle]
        parse_cpu = time.process_time() - parse_start
        daemon_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        sample = {k: parsed[0].get(k) for k in ("oob.prefix", "src_ip", "dest_ip", "udp.dport")} if parsed else {}
        return {"received": len(parsed), "seconds": seconds, "cpu": daemon_cpu + parse_cpu, "parse_cpu": parse_cpu, "sample": sample}  # type: ignore[dict-item]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--nflogr-python")
    parser.add_argument("--ulogd")
    parser.add_argument("--ulogd-plugins")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (a network namespace)", file=sys.stderr)
        return 2
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, check=False)
    sh("ip", "netns", "add", NETNS)
    try:
        sh("ip", "-n", NETNS, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", NETNS, "nft", "-f", "-", stdin=TABLE)
        results = {
            "netfence (qthreshold 1)": netfence_reader(args.n, 1),
            "netfence (qthreshold 64)": netfence_reader(args.n, 64),
        }
        if args.nflogr_python:
            results["nflogr (libnetfilter_log)"] = nflogr_reader(args.n, args.nflogr_python)
        if args.ulogd and args.ulogd_plugins:
            results["ulogd2 JSON + json.loads"] = ulogd_reader(args.n, args.ulogd, args.ulogd_plugins)
        for name, result in results.items():
            if result.get("error"):
                print(f"{name:28} failed after {int(result['received'])} messages: {result['error']}")
                continue
            rate = result["received"] / result["seconds"] if result["seconds"] else 0
            print(
                f"{name:28} {int(result['received']):>7} of {args.n} in {result['seconds']:.2f} s"
                f" ({rate:,.0f}/s), reader CPU {result['cpu']:.2f} s"
                f" ({result['cpu'] / max(1, result['received']) * 1e6:.1f} us/message)"
                + (f"  {result.get('sample')}" if result.get("sample") else "")
            )
    finally:
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
