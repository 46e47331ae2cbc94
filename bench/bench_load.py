"""Time the loader on the happy path and on hostile YAML, for the YAML safety limits.

Run:

    .venv/bin/python bench/bench_load.py [--dir bench/out/pods10000-policies2000-seed1] [--repeat 15]

Happy path: `load_documents` (read + parse every file, the part the YAML limits touch) and
`load_inventory` (everything: parse, validate, convert) over a generated cluster (made with
bench/generate.py when missing); the least CPU time of `--repeat` runs is reported (compare
revisions with the same machine and --repeat). Hostile input: how long the loader takes to reject each document
of bench/hostile (a billion-laughs alias bomb, deep nesting, an oversized file, ...).
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from netfence.errors import InputError, InputErrors
from netfence.sources.documents import MAX_FILE_BYTES, load_documents
from netfence.sources.load import load_inventory

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = HERE / "out" / "pods10000-policies2000-seed1"


def best(fn: Callable[[], object], repeat: int) -> float:
    """Least CPU time of this process over `repeat` runs (other processes on the machine do not
    count in it, as they do in wall-clock time)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return min(times)


def happy_path(directory: Path, repeat: int) -> None:
    if not directory.is_dir():
        pods, policies = 10000, 2000
        subprocess.run(
            [sys.executable, str(HERE / "generate.py"), "--pods", str(pods), "--policies", str(policies),
             "--seed", "1", "--out", str(directory)],
            check=True,
        )
    files = sorted(directory.glob("*.yaml"))
    size = sum(f.stat().st_size for f in files)
    print(f"{directory.name}: {len(files)} files, {size / 2**20:.1f} MiB")

    def parse() -> None:
        problems: list[InputError] = []
        load_documents([str(directory)], problems)
        assert not problems

    print(f"  load_documents  best of {repeat}: {best(parse, repeat):.3f} s")
    print(f"  load_inventory  best of {repeat}: {best(lambda: load_inventory([str(directory)]), repeat):.3f} s")


def hostile() -> dict[str, str]:
    """name -> document text; each must be rejected quickly with one message."""
    laughs = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        laughs.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return {
        "billion laughs (9^9 strings)": "\n".join(laughs) + "\n",
        "alias fan-out (one 10^5-item list, 10^5 references)": (
            "a: &a [" + ",".join(["x"] * 100_000) + "]\nb: [" + ",".join(["*a"] * 100_000) + "]\n"
        ),
        "flow nesting 100000 deep": "a: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "block nesting 100000 deep": "- " * 100_000 + "x\n",
        "oversized file (MAX_FILE_BYTES + 1)": "#" * MAX_FILE_BYTES + "\n",
        "python tag": "a: !!python/object/apply:os.system ['true']\n",
    }


def hostile_timings() -> None:
    print("hostile documents (time to reject, best of 3):")
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in hostile().items():
            path = Path(tmp) / "hostile.yaml"
            path.write_text(text)

            def reject() -> None:
                try:
                    load_inventory([str(path)])
                except InputErrors:
                    return
                raise AssertionError(f"{name}: accepted")

            seconds = best(reject, 3)
            try:
                load_inventory([str(path)])
            except InputErrors as exc:
                message = str(exc).split(": ", 1)[1][:90]
            print(f"  {seconds * 1000:8.1f} ms  {name}: {message}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--no-hostile", action="store_true")
    args = parser.parse_args(argv)
    happy_path(args.dir, args.repeat)
    if not args.no_hostile:
        hostile_timings()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
