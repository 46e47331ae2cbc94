"""Broken and hostile input: every file of bad_inputs/ is rejected through the CLI with exactly the
lines of its `.expected` file on stderr, exit status 2, nothing on stdout and no traceback.

The corpus covers what the API server (or Calico's, or the network-policy-api CRDs') validation
rejects for every kind netfence loads — names, namespaces, label keys and values, selector
operators and values, ports, endPort, port names, CIDRs and `except`, peers, policy types, Calico
rules and names, AdminNetworkPolicy fields — and what is unsafe to parse: Python tags, alias
bombs, deep nesting, duplicate keys, bytes that are not UTF-8 text. A file may hold several
problems; every one is listed. To add a case, write `<case>.yaml` and the lines netfence must
print into `<case>.expected` (file names relative to bad_inputs/).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from netfence.errors import InputErrors
from netfence.sources import documents
from netfence.sources.documents import MAX_FILE_BYTES
from netfence.sources.load import load_inventory

Run = Callable[..., tuple[int, str, str]]
CORPUS = Path(__file__).resolve().parent / "bad_inputs"
CASES = sorted(path.stem for path in CORPUS.glob("*.yaml"))
#: One located problem per line: `file[:line]: ...`.
LOCATED = re.compile(r"^[\w.-]+\.yaml(:\d+)?: \S")


def test_the_corpus_holds_at_least_a_hundred_bad_documents_each_with_its_message() -> None:
    assert len(CASES) >= 100
    assert sorted(path.stem for path in CORPUS.glob("*.expected")) == CASES


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_rejected_with_its_exact_messages(case: str, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)
    expected = (CORPUS / f"{case}.expected").read_text()

    code, out, err = run("validate", "-f", f"{case}.yaml")

    assert (code, out) == (2, "")
    assert err == expected
    assert all(LOCATED.match(line) for line in err.splitlines()), err


def test_the_whole_corpus_in_one_process_exits_2_with_located_one_line_messages_and_no_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "netfence", "validate", *(f"-f{case}.yaml" for case in CASES)],
        cwd=CORPUS,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert all(LOCATED.match(line) for line in lines), [line for line in lines if not LOCATED.match(line)]
    # Each file's own problems come out as they do alone; only "defined twice" can name another
    # file now (several files define a namespace `a`).
    for case in CASES:
        for line in (CORPUS / f"{case}.expected").read_text().splitlines():
            assert line in lines or "defined twice" in line, line


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(documents, "MAX_FILE_BYTES", 1024)
    path = tmp_path / "big.yaml"
    path.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n" + "# padding\n" * 200)

    with pytest.raises(InputErrors) as caught:
        load_inventory([str(path)])

    assert str(caught.value) == f"{path}: more than 1024 bytes; netfence reads at most 1024 bytes per file (split it)"


def test_the_size_limit_message_names_the_limit() -> None:
    assert MAX_FILE_BYTES == 64 * 2**20
    assert str(documents.too_large("a.yaml")) == "a.yaml: more than 64 MiB; netfence reads at most 64 MiB per file (split it)"
