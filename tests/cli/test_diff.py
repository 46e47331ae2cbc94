"""netfence diff on the command line: the wordpress steps diffed step to step, exact JSON,
exit codes, endpoints on one side only, and git:REV:PATH inputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netfence.cli import inputs
from netfence.cli.demo import scenario_dir
from netfence.sources import documents

Run = Callable[..., tuple[int, str, str]]
Write = Callable[[str, str], str]

WORDPRESS = scenario_dir() / "wordpress"
STEPS = ["step1-default-deny.yaml", "step2-allow-frontend.yaml", "step3-allow-mysql-from-frontend.yaml"]
FRONTEND, MYSQL, TOOLBOX = "wordpress/wordpress-7d5f9c6b8-x2k4q", "wordpress/wordpress-mysql-0", "tools/toolbox"
DENY = "NetworkPolicy wordpress/default-deny (ingress isolation, end of tier default)"
PORTS = ("--port", "80", "--port", "3306")


def step(n: int) -> list[str]:
    """The files of wordpress step n (0: no policy)."""
    return [str(WORDPRESS / f) for f in STEPS[:n]] or [os.devnull]


def diff(run: Run, old: int, new: int, *extra: str) -> tuple[int, str, str]:
    return run("diff", "-f", str(WORDPRESS / "cluster.yaml"), "--old", *step(old), "--new", *step(new), *extra)


def change(src: str, dst: str, port: int, before: bool, before_rule: str | None, after_rule: str | None) -> dict[str, object]:
    return {
        "from": src, "to": dst, "port": port, "protocol": "TCP",
        "before": before, "after": not before, "beforeRule": before_rule, "afterRule": after_rule,
    }  # fmt: skip


def test_step_one_denies_every_flow_into_wordpress(run: Run) -> None:
    code, out, err = diff(run, 0, 1, *PORTS, "-o", "json")
    assert (code, err) == (1, "")
    assert json.loads(out) == {
        "changes": [
            change(TOOLBOX, FRONTEND, 80, True, None, DENY),
            change(TOOLBOX, FRONTEND, 3306, True, None, DENY),
            change(TOOLBOX, MYSQL, 80, True, None, DENY),
            change(TOOLBOX, MYSQL, 3306, True, None, DENY),
            change(FRONTEND, MYSQL, 80, True, None, DENY),
            change(FRONTEND, MYSQL, 3306, True, None, DENY),
            change(MYSQL, FRONTEND, 80, True, None, DENY),
            change(MYSQL, FRONTEND, 3306, True, None, DENY),
        ]
    }


def test_step_two_opens_the_frontend_to_everyone(run: Run) -> None:
    code, out, _ = diff(run, 1, 2, *PORTS, "-o", "json")
    allow = "NetworkPolicy wordpress/allow-frontend ingress[0]"
    assert code == 1
    assert json.loads(out) == {
        "changes": [
            change(TOOLBOX, FRONTEND, 80, False, DENY, allow),
            change(TOOLBOX, FRONTEND, 3306, False, DENY, allow),
            change(MYSQL, FRONTEND, 80, False, DENY, allow),
            change(MYSQL, FRONTEND, 3306, False, DENY, allow),
        ]
    }


def test_step_three_admits_the_frontend_to_mysql_only(run: Run) -> None:
    code, out, _ = diff(run, 2, 3, *PORTS, "-o", "json")
    assert code == 1
    assert json.loads(out) == {
        "changes": [
            change(FRONTEND, MYSQL, 3306, False, DENY, "NetworkPolicy wordpress/allow-mysql-from-frontend ingress[0]")
        ]
    }


def test_the_table_groups_flows_and_names_the_rules(run: Run) -> None:
    code, out, _ = diff(run, 0, 1, *PORTS)
    assert code == 1
    assert out == (
        "4 flows newly denied: tools/toolbox → wordpress/* on TCP/80, TCP/3306\n"
        "  before: ingress allowed: no policy selects it\n"
        "  after:  ingress denied: isolated by NetworkPolicy wordpress/default-deny (end of tier default)\n"
        "\n"
        "4 flows newly denied: wordpress/* → wordpress/* on TCP/80, TCP/3306\n"
        "  before: ingress allowed: no policy selects it\n"
        "  after:  ingress denied: isolated by NetworkPolicy wordpress/default-deny (end of tier default)\n"
        "\n"
        "8 flows changed: 8 newly denied, 0 newly allowed; 3 endpoints on both sides, 2 ports (TCP/80, TCP/3306)\n"
    )


def test_no_change_exits_zero(run: Run) -> None:
    code, out, _ = diff(run, 2, 2, *PORTS)
    assert (code, out) == (0, "no flow changed; 3 endpoints on both sides, 2 ports (TCP/80, TCP/3306)\n")
    code, out, _ = diff(run, 2, 2, "-o", "json")
    assert (code, json.loads(out)) == (0, {"changes": []})


def test_default_ports_are_those_named_declared_and_common(run: Run) -> None:
    code, out, _ = diff(run, 0, 1)
    assert code == 1
    assert out.endswith("3 endpoints on both sides, 5 ports (TCP/53, UDP/53, TCP/80, TCP/443, TCP/3306)\n")


def test_yaml_prints_the_same_changes(run: Run) -> None:
    import yaml

    _, as_json, _ = diff(run, 1, 3, *PORTS, "-o", "json")
    code, as_yaml, _ = diff(run, 1, 3, *PORTS, "-o", "yaml")
    assert code == 1
    assert yaml.safe_load(as_yaml) == json.loads(as_json)


def test_endpoints_on_one_side_only_are_listed_and_not_compared(run: Run, write: Write) -> None:
    extra = write(
        "extra.yaml",
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: newcomer, namespace: tools}
        status: {phase: Running, podIP: 10.42.255.31}
        """,
    )
    cluster = str(WORDPRESS / "cluster.yaml")
    code, out, _ = run("diff", "-f", cluster, "--old", os.devnull, "--new", extra, *PORTS)
    assert code == 0
    assert out.splitlines()[-1] == "only in --new (not compared): 1 endpoint: tools/newcomer"
    code, out, err = run("diff", "-f", cluster, "--old", extra, "--new", os.devnull, *PORTS, "-o", "json")
    assert (code, json.loads(out)) == (0, {"changes": []})
    assert err == "note: only in --old (not compared): 1 endpoint: tools/newcomer\n"


def test_warnings_of_files_both_sides_read_are_printed_once(run: Run, write: Write) -> None:
    odd = write("odd.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    code, _, err = run("diff", "-f", odd, "--old", os.devnull, "--new", os.devnull, *PORTS)
    assert code == 0
    assert err.count("Widget") == 1


# --- git:REV:PATH ---------------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A git repository: commit 1 holds cluster/ and policies/ with step 1, commit 2 adds step 2;
    the working tree adds step 3. The current directory is policies/."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "cluster").mkdir(parents=True)
    (repo / "policies").mkdir()
    shutil.copy(WORDPRESS / "cluster.yaml", repo / "cluster")
    shutil.copy(WORDPRESS / STEPS[0], repo / "policies")
    for key, value in (("GIT_AUTHOR_NAME", "t"), ("GIT_AUTHOR_EMAIL", "t@example.com"),
                       ("GIT_COMMITTER_NAME", "t"), ("GIT_COMMITTER_EMAIL", "t@example.com")):  # fmt: skip
        monkeypatch.setenv(key, value)
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "step 1")
    shutil.copy(WORDPRESS / STEPS[1], repo / "policies")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "step 2")
    shutil.copy(WORDPRESS / STEPS[2], repo / "policies")
    monkeypatch.chdir(repo / "policies")
    yield repo


def test_a_directory_at_a_revision_against_the_working_tree(run: Run, repository: Path) -> None:
    code, out, _ = run("diff", "-f", "../cluster", "--old", "git:HEAD:.", "--new", ".", *PORTS, "-o", "json")
    assert code == 1
    assert [(c["from"], c["to"], c["port"]) for c in json.loads(out)["changes"]] == [(FRONTEND, MYSQL, 3306)]


def test_two_revisions_and_a_file(run: Run, repository: Path) -> None:
    code, out, _ = run(
        "diff", "-f", "git:HEAD:../cluster/cluster.yaml", "--old", "git:HEAD~1:./", "--new", "git:HEAD:.", *PORTS,
        "-o", "json",
    )  # fmt: skip
    assert code == 1
    assert len(json.loads(out)["changes"]) == 4  # step 1 -> step 2


def test_problems_in_a_file_at_a_revision_name_it(run: Run, repository: Path) -> None:
    (repository / "policies" / "broken.yaml").write_text("kind: NetworkPolicy\n")
    git(repository, "add", ".")
    git(repository, "commit", "-qm", "broken")
    code, out, err = run("diff", "-f", "../cluster", "--old", "git:HEAD:.", "--new", ".", *PORTS)
    assert code == 2 and out == ""
    assert err == "git:HEAD:broken.yaml:1: NetworkPolicy (unnamed): apiVersion: required field is missing\n"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("git:no-such-rev:.", "error: git:no-such-rev:.: unknown revision 'no-such-rev'\n"),
        ("git:HEAD:missing.yaml", "error: git:HEAD:missing.yaml: no missing.yaml at revision HEAD\n"),
        ("git:HEAD:../../elsewhere", "error: git:HEAD:../../elsewhere: '../../elsewhere' is outside the repository\n"),
        ("git:HEAD", "error: git:HEAD: expected git:REVISION:PATH (git:HEAD~1:policies/)\n"),
    ],
)
def test_a_bad_revision_or_path_is_one_line_and_exit_two(run: Run, repository: Path, spec: str, message: str) -> None:
    code, out, err = run("diff", "-f", "../cluster", "--old", spec, "--new", ".")
    assert (code, out, err) == (2, "", message)


@pytest.mark.parametrize("spec", ["git:HEAD:../big/huge.yaml", "git:HEAD:../big"])
def test_a_file_at_a_revision_over_the_size_limit_is_an_input_error_and_is_never_read(
    run: Run, repository: Path, monkeypatch: pytest.MonkeyPatch, spec: str
) -> None:
    monkeypatch.setattr(documents, "MAX_FILE_BYTES", 4096)
    (repository / "big").mkdir()
    (repository / "big" / "huge.yaml").write_text("# padding\n" * 500)
    (repository / "big" / "small.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n")
    git(repository, "add", ".")
    git(repository, "commit", "-qm", "big")
    asked: list[str] = []
    read_blobs = inputs._blobs

    def blobs(spec: str, objects: list[str]) -> list[bytes]:
        asked.extend(objects)
        return read_blobs(spec, objects)

    monkeypatch.setattr(inputs, "_blobs", blobs)
    code, out, err = run("diff", "-f", "../cluster", "--old", spec, "--new", os.devnull, *PORTS)
    assert (code, out) == (2, "")
    assert err == "git:HEAD:../big/huge.yaml: more than 4096 bytes; netfence reads at most 4096 bytes per file (split it)\n"
    assert not any(name.endswith("huge.yaml") for name in asked)
    assert any(name.endswith("small.yaml") for name in asked) == spec.endswith("big")


def test_outside_a_repository_git_paths_are_a_usage_error(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    code, _, err = run("diff", "--old", "git:HEAD:.", "--new", os.devnull)
    assert (code, err) == (2, "error: git:HEAD:.: not inside a git repository\n")
