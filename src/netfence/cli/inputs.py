"""Input paths of `diff` and `lint`: files, directories, `-`, and `git:REV:PATH`, loaded with
the documents they came from (lint finds the line of a field in them).

`git:REV:PATH` is a file or directory as it was at revision REV of the git repository holding
the current directory; PATH is relative to the current directory, like any other path. git runs
with an argument list (never through a shell), and a revision or path git does not know is a
usage error (exit 2) in one line. A file at a revision is held to the size limit of files on
disk (documents.MAX_FILE_BYTES): a larger one is an input error, found from its size before git
is asked for its contents.
"""

from __future__ import annotations

import posixpath
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from netfence.errors import InputError, UsageError
from netfence.sources.documents import (
    SUFFIXES,
    Document,
    Source,
    check_size,
    decode_source,
    expand_paths,
    load_documents,
    parse_source,
)
from netfence.sources.load import Loaded, build_inventory

GIT_PREFIX = "git:"


@dataclass
class Read:
    """Documents read from some paths, with the problems met and the files in order."""

    documents: list[Document] = field(default_factory=list)
    problems: list[InputError] = field(default_factory=list)
    order: list[str] = field(default_factory=list)

    def __add__(self, other: Read) -> Read:
        return Read(self.documents + other.documents, self.problems + other.problems, self.order + other.order)


def read_paths(paths: Sequence[str]) -> Read:
    """Read and parse every path (files, directories, `-`, git:REV:PATH), problems collected."""
    read = Read()
    for raw in paths:
        if raw.startswith(GIT_PREFIX):
            for source in read_git(raw):
                if isinstance(source, InputError):  # a file that cannot be read
                    read.order.append(source.where.file if source.where else raw)
                    read.problems.append(source)
                    continue
                read.order.append(source.name)
                try:
                    read.documents.extend(parse_source(source, read.problems))
                except InputError as exc:
                    read.problems.append(exc)
        else:
            read.documents.extend(load_documents([raw], read.problems))
            read.order.extend("<stdin>" if p == "-" else p for p in expand_paths([raw]))
    return read


def load(read: Read, *, warn: bool = True) -> Loaded:
    """One inventory of what was read; raise InputErrors listing every problem. Warnings go to
    stderr unless `warn` is false (the caller prints them)."""
    loaded = build_inventory(read.documents, read.problems, read.order)
    if warn:
        for line in loaded.warnings:
            print(line, file=sys.stderr)
    return loaded


def read_git(spec: str) -> list[Source | InputError]:
    """The files of `git:REV:PATH` (a file, or a directory's *.yaml, *.yml, *.json, recursively,
    in sorted order), each named `git:REV:PATH/...` in messages; a file that cannot be read (too
    large, not UTF-8) is the InputError saying so, in its place."""
    rev, colon, path = spec[len(GIT_PREFIX) :].partition(":")
    if not rev or not colon:
        raise UsageError(f"{spec}: expected git:REVISION:PATH (git:HEAD~1:policies/)")
    if shutil.which("git") is None:
        raise UsageError(f"{spec}: git is not installed")
    commit = _git(spec, ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"])
    if commit is None:
        _git(spec, ["rev-parse", "--show-toplevel"], "not inside a git repository")
        raise UsageError(f"{spec}: unknown revision {rev!r}")
    commit = commit.strip()
    prefix = _git(spec, ["rev-parse", "--show-prefix"], "not inside a git repository") or ""
    tree = posixpath.normpath(posixpath.join(prefix.strip(), path or "."))
    if tree == ".." or tree.startswith("../") or posixpath.isabs(path):
        raise UsageError(f"{spec}: {path!r} is outside the repository")
    tree = "" if tree == "." else tree
    kind = _git(spec, ["cat-file", "-t", f"{commit}:{tree}"])
    if kind is None:
        raise UsageError(f"{spec}: no {path or '.'} at revision {rev}")
    if kind.strip() == "blob":
        return _read_files(spec, [(spec, f"{commit}:{tree}")])
    listing = _git(spec, ["ls-tree", "-r", "-z", "--name-only", "--full-tree", f"{commit}:{tree}"]) or ""
    names = sorted(n for n in listing.split("\0") if n.lower().endswith(SUFFIXES) and "\n" not in n)
    shown = path.rstrip("/")
    shown = "" if shown == "." else shown
    return _read_files(
        spec, [(f"{GIT_PREFIX}{rev}:{posixpath.join(shown, n)}", f"{commit}:{posixpath.join(tree, n)}") for n in names]
    )


def _read_files(spec: str, files: list[tuple[str, str]]) -> list[Source | InputError]:
    """(name in messages, REV:PATH object) -> each file's text, or why it cannot be read. Sizes
    come first (`git cat-file --batch-check`), so a blob over the limit is never read."""
    slots: list[Source | InputError | None] = []
    wanted: list[tuple[int, str, str]] = []
    for (name, obj), size in zip(files, _sizes(spec, [obj for _, obj in files])):
        try:
            check_size(name, size)
        except InputError as exc:
            slots.append(exc)
        else:
            wanted.append((len(slots), name, obj))
            slots.append(None)
    for (position, name, _), data in zip(wanted, _blobs(spec, [obj for _, _, obj in wanted])):
        try:
            slots[position] = decode_source(name, data)
        except InputError as exc:
            slots[position] = exc
    return [slot for slot in slots if slot is not None]


def _git(spec: str, args: list[str], failure: str | None = None) -> str | None:
    """git's output, or None when it fails (with `failure`: a usage error saying that)."""
    try:
        proc = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise UsageError(f"{spec}: cannot run git: {exc.strerror}") from None
    if proc.returncode != 0:
        if failure is not None:
            raise UsageError(f"{spec}: {failure}")
        return None
    return proc.stdout


def _cat_file(spec: str, mode: str, objects: list[str]) -> bytes:
    """What `git cat-file --batch` or `--batch-check` prints for `objects`, one run for all."""
    proc = subprocess.run(
        ["git", "cat-file", mode], input="".join(o + "\n" for o in objects).encode(), capture_output=True, check=False
    )
    if proc.returncode != 0:
        raise UsageError(f"{spec}: git cat-file failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def _sizes(spec: str, objects: list[str]) -> list[int]:
    """The sizes of `objects` (REV:PATH names of files), from one `git cat-file --batch-check`."""
    if not objects:
        return []
    sizes = []
    for name, line in zip(objects, _cat_file(spec, "--batch-check", objects).splitlines()):
        header = line.split()
        if len(header) != 3 or header[1] != b"blob":
            raise UsageError(f"{spec}: {name.partition(':')[2]} is not a file at that revision")
        sizes.append(int(header[2]))
    return sizes


def _blobs(spec: str, objects: list[str]) -> list[bytes]:
    """The contents of `objects` (REV:PATH names), read by one `git cat-file --batch`."""
    if not objects:
        return []
    data, position, found = _cat_file(spec, "--batch", objects), 0, []
    for name in objects:
        end = data.index(b"\n", position)
        header = data[position:end].split()
        if len(header) != 3 or header[1] != b"blob":
            raise UsageError(f"{spec}: {name.partition(':')[2]} is not a file at that revision")
        size = int(header[2])
        found.append(data[end + 1 : end + 1 + size])
        position = end + 1 + size + 1
    return found
