"""Read `-f FILE|DIR|-` into Kubernetes object documents that remember where they were written.

Loading uses libyaml's C loader for speed; line numbers are looked up only when a message needs
one, by composing the file's node tree once (lazily) and walking the field path in it.

YAML is read safely, whatever the input (tests/robustness holds the hostile cases):

- safe tags only: `!!python/...` and other unknown tags are an error naming the tag, never run;
  a value a tag cannot be built from (`!!int x`, a 5,000-digit integer) is an error too;
- at most MAX_FILE_BYTES per file (read with a bound, so a device or pipe cannot grow it);
- nesting at most MAX_DEPTH deep (libyaml's composer recurses in C and would crash the process
  on a few tens of thousands of levels): the depth is counted by the resolver hooks the composer
  calls on every node, which costs nothing measurable;
- aliases: a document whose aliases, expanded, nest deeper than MAX_DEPTH, make more than
  max(MAX_EXPANDED_NODES, ALIAS_FACTOR x its written nodes) nodes ("billion laughs"), or refer to
  a node that contains them (a cycle), is rejected before anything walks it; the check runs only
  on files that have an anchor (`&`) at all;
- a key written twice in one mapping is an error (kubectl's strict field validation rejects it,
  and a silent "last one wins" would let a reviewer read one podSelector while another applies);
  merge keys (`<<`) may still be overridden, as YAML intends;
- text that is not UTF-8, or holds control characters, is an error for the file; an empty file
  or an empty `List` holds no objects; a document that is not a mapping is an error.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from netfence.errors import SHOWN_CHARACTERS, InputError, Location, show

try:
    _Base: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Base = yaml.SafeLoader

SUFFIXES = (".yaml", ".yml", ".json")
PathItem = str | int

#: Largest input file read (and standard input). A `kubectl get -A -o yaml` dump of a cluster with
#: tens of thousands of pods fits; loading this much takes tens of seconds already.
MAX_FILE_BYTES = 64 * 2**20
#: Deepest nesting of mappings and sequences (aliases expanded). Kubernetes objects nest a few
#: tens of levels at most (a CRD's schema in a dump); libyaml's composer crashes near 30,000.
MAX_DEPTH = 256
#: Aliases may expand a document to this many nodes, or ALIAS_FACTOR times the nodes written,
#: whichever is larger: merge keys and shared blocks stay usable, alias bombs do not.
MAX_EXPANDED_NODES = 100_000
ALIAS_FACTOR = 10

_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"
_SPECIAL_KEYS = frozenset((_MERGE_TAG, _VALUE_TAG))
#: What may come before an anchor's `&`: whitespace or a flow indicator (or nothing, at the start).
_BEFORE_ANCHOR = frozenset(" \t\r\n[{,")


class _TooDeep(Exception):
    """Raised from inside the composer, which then stops (the line is found afterwards)."""


class _Loader(_Base):  # type: ignore[misc]
    """libyaml's safe loader, with the nesting bound and duplicate keys noted.

    Slots, not instance attributes: the depth hooks run on every node, and measured on the
    bench/ clusters, a `__dict__` attribute there cost 4% of the load, a slot nothing.
    """

    __slots__ = ("depth", "duplicates")

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        #: (id of the mapping node, line of the repeated key, the key, line of its first appearance)
        self.duplicates: list[tuple[int, int, object, int]] = []

    # The composer calls these around every node it composes; nothing else uses them for safe
    # loading (no path resolvers), so they can count the depth.
    def descend_resolver(self, current_node: object, current_index: object) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _TooDeep

    def ascend_resolver(self) -> None:
        self.depth -= 1

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        """SafeConstructor's construct_mapping in one pass (it is faster than the original's two),
        noting keys written twice; mappings with merge keys take the general path."""
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]
        mapping: dict[Any, Any] = {}
        construct = self.construct_object
        for key_node, value_node in node.value:
            if key_node.tag in _SPECIAL_KEYS:
                return self._merged(node, deep)
            key = construct(key_node, deep)
            try:
                if key in mapping:
                    self._duplicate(node, key_node, key, node.value)
            except TypeError:
                raise _unhashable(node, key_node) from None
            mapping[key] = construct(value_node, deep)
        return mapping

    def _merged(self, node: yaml.MappingNode, deep: bool) -> dict[Any, Any]:
        """A mapping with merge keys: the keys written in it must still differ from each other."""
        self.duplicates = [d for d in self.duplicates if d[0] != id(node)]  # noted again below
        written = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
        self.flatten_mapping(node)
        merged = len(node.value) - len(written)
        mapping: dict[Any, Any] = {}
        explicit: set[Any] = set()
        for position, (key_node, value_node) in enumerate(node.value):
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise _unhashable(node, key_node) from None
            if position >= merged:
                if key in explicit:
                    self._duplicate(node, key_node, key, written)
                explicit.add(key)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def _duplicate(self, node: yaml.Node, key_node: yaml.Node, key: object, pairs: Any) -> None:
        first = next(
            (other.start_mark.line + 1 for other, _ in pairs if self.construct_object(other) == key), 0
        )
        self.duplicates.append((id(node), key_node.start_mark.line + 1, key, first))


def _unhashable(node: yaml.Node, key_node: yaml.Node) -> yaml.MarkedYAMLError:
    return yaml.constructor.ConstructorError(
        "while constructing a mapping", node.start_mark, "found unhashable key", key_node.start_mark
    )


@dataclass
class Source:
    """The text of one input file (or standard input)."""

    name: str
    text: str
    _nodes: list[yaml.Node | None] | None = field(default=None, repr=False)

    def _document_nodes(self) -> list[yaml.Node | None]:
        if self._nodes is None:
            try:
                self._nodes = list(yaml.compose_all(self.text, Loader=_Loader))
            except (yaml.YAMLError, _TooDeep):
                self._nodes = []
        return self._nodes

    def line_of(self, document: int, path: Sequence[PathItem]) -> int | None:
        """1-based line of the deepest node along `path` in document number `document`."""
        nodes = self._document_nodes()
        if document >= len(nodes) or nodes[document] is None:
            return None
        node = nodes[document]
        assert node is not None
        line: int = node.start_mark.line + 1
        for step in path:
            if isinstance(node, yaml.MappingNode) and isinstance(step, str):
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == step:
                        line, node = key.start_mark.line + 1, value
                        break
                else:
                    return line
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                if step >= len(node.value):
                    return line
                node = node.value[step]
                line = node.start_mark.line + 1
            else:
                return line
        return line


@dataclass
class Document:
    """One Kubernetes object as loaded, with the way back to its text."""

    source: Source
    index: int
    #: Position in a `List`'s `items`, when the object came from one.
    item: int | None
    body: dict[str, Any]
    #: The line the object starts on, noted while parsing: the location of every converted
    #: object, so it must not need the node tree.
    line: int | None = None

    def location(self, path: Sequence[PathItem] = ()) -> Location:
        if not path and self.line is not None:
            return Location(self.source.name, self.line)
        prefix: tuple[PathItem, ...] = ("items", self.item) if self.item is not None else ()
        return Location(self.source.name, self.source.line_of(self.index, prefix + tuple(path)))

    @property
    def kind(self) -> str:
        """The kind, or "" when it is missing or not a string (load.py reports that)."""
        kind = self.body.get("kind", "")
        return kind if isinstance(kind, str) else ""

    @property
    def api_version(self) -> str:
        version = self.body.get("apiVersion", "")
        return version if isinstance(version, str) else ""

    @property
    def label(self) -> str:
        """`Kind namespace/name` (or `Kind name`) for messages; a name or namespace that is not
        short text (hostile input) is cut, as `show` cuts values."""
        meta = self.body.get("metadata")
        name = namespace = None
        if isinstance(meta, dict):
            name, namespace = meta.get("name"), meta.get("namespace")
        ident = _short(name) if name else "(unnamed)"
        if namespace:
            ident = f"{_short(namespace)}/{ident}"
        return f"{_short(self.kind) if self.kind else 'object'} {ident}"


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "..."


def expand_paths(paths: Iterable[str]) -> Iterator[str]:
    """Files named, directories walked recursively (sorted), `-` for standard input."""
    for raw in paths:
        if raw == "-":
            yield raw
            continue
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            yield from (str(p) for p in found)
        else:
            yield raw


def read_source(raw: str) -> Source:
    if raw == "-":
        stream: BinaryIO | None = getattr(sys.stdin, "buffer", None)
        if stream is None:  # replaced by a text stream (tests): already decoded
            return _checked_size("<stdin>", sys.stdin.read(MAX_FILE_BYTES + 1))
        return decode_source("<stdin>", stream.read(MAX_FILE_BYTES + 1))
    path = Path(raw)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(Location(raw), "no such file or directory") from None
    except IsADirectoryError:
        raise InputError(Location(raw), "is a directory") from None
    except OSError as exc:
        raise InputError(Location(raw), f"cannot read: {exc.strerror}") from None
    return decode_source(raw, data)


def decode_source(name: str, data: bytes) -> Source:
    """The text of `data`, which must be UTF-8 (a BOM allowed) and at most MAX_FILE_BYTES."""
    if len(data) > MAX_FILE_BYTES:
        raise too_large(name)
    try:
        return Source(name, data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InputError(Location(name), f"not UTF-8 text (byte {exc.start})") from None


def _checked_size(name: str, text: str) -> Source:
    if len(text) > MAX_FILE_BYTES:
        raise too_large(name)
    return Source(name, text)


def check_size(name: str, size: int) -> None:
    """Refuse a file of `size` bytes, known before reading it, that is over MAX_FILE_BYTES."""
    if size > MAX_FILE_BYTES:
        raise too_large(name)


def too_large(name: str) -> InputError:
    limit = f"{MAX_FILE_BYTES // 2**20} MiB" if MAX_FILE_BYTES % 2**20 == 0 else f"{MAX_FILE_BYTES} bytes"
    return InputError(Location(name), f"more than {limit}; netfence reads at most {limit} per file (split it)")


def parse_source(source: Source, problems: list[InputError]) -> list[Document]:
    """Every Kubernetes object in a source; `*List` kinds are flattened into their items.

    Documents that are not objects, or break a YAML limit, are added to `problems`; a YAML
    syntax error raises (nothing after it can be read).
    """
    try:
        parsed = _parse(source.text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(Location(source.name, line), f"invalid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:
        # libyaml counts the offset in UTF-8 bytes, PyYAML's own reader in characters.
        if _Base is yaml.SafeLoader:
            line = source.text.count("\n", 0, exc.position) + 1
        else:
            line = source.text.encode()[: exc.position].count(b"\n") + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise InputError(
            Location(source.name, line), f"invalid YAML: unacceptable character #x{code:04x}: {exc.reason}"
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(Location(source.name), f"invalid YAML: {' '.join(str(exc).split())}") from None
    except _TooDeep:
        raise InputError(
            Location(source.name, _deep_line(source.text)),
            f"invalid YAML: nested more than {MAX_DEPTH} levels deep",
        ) from None
    documents: list[Document] = []
    for index, (body, line, item_lines, broken) in enumerate(parsed):
        if broken:
            problems.extend(InputError(Location(source.name, at), message) for at, message in broken)
            continue
        if body is None:
            continue
        doc = Document(source, index, None, body, line) if isinstance(body, dict) else None
        if doc is None:
            where = Location(source.name, source.line_of(index, ()))
            problems.append(
                InputError.expected(where, None, "a Kubernetes object (a mapping with apiVersion and kind)", body)
            )
            continue
        if doc.kind.endswith("List") and ("items" in body or doc.kind == "List"):
            documents.extend(_list_items(doc, problems, item_lines))
        else:
            documents.append(doc)
    return documents


#: (document data, its first line, the lines of its `items`, problems that drop it: (line, message))
Parsed = tuple[Any, int, list[int], list[tuple[int, str]]]


def _parse(text: str) -> list[Parsed]:
    """Each document's data, the line it starts on and those of its `items`, in one parse.

    Files without anchors are built straight from the parser's events (`_parse_plain`); the
    others, and any file that path declines, go through the composer and the constructor.
    (Composing the node tree again later for every file's locations doubled the load time, and
    keeping every node of every file alive made the garbage collector walk them over and over.)
    """
    if not _may_have_anchor(text):
        plain = _parse_plain(text)
        if plain is not None:
            return plain
    return _parse_composed(text)


def _parse_composed(text: str) -> list[Parsed]:
    """`_parse` through the composer and the constructor, with every YAML limit checked."""
    loader = _Loader(text)
    check_aliases = _may_have_anchor(text)
    try:
        parsed: list[Parsed] = []
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1
            item_lines: list[int] = []
            if isinstance(node, yaml.MappingNode):
                items = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "items"), None)
                if isinstance(items, yaml.SequenceNode):
                    item_lines = [item.start_mark.line + 1 for item in items.value]
            if check_aliases:
                problem = _alias_problem(node)
                if problem is not None:
                    parsed.append((None, line, [], [(line, problem)]))
                    continue
            loader.duplicates = []
            body = _construct(loader, node)
            broken = [
                (at, f"invalid YAML: key {show(key)} is written twice in one mapping (first at line {first})")
                for _, at, key, first in loader.duplicates
            ]
            parsed.append((body, line, item_lines, broken))
        return parsed
    finally:
        loader.dispose()


class _Declined(Exception):
    """The event path leaves this file to the composer and the constructor."""


_NO_KEY = object()
_MAPPING_START, _SEQUENCE_START = yaml.MappingStartEvent, yaml.SequenceStartEvent
_COLLECTION_END = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _parse_plain(text: str) -> list[Parsed] | None:
    """`_parse` for the common file: plain data, no tags, anchors, merge keys or repeated keys.

    The documents are built from libyaml's events in one loop: no node tree, no constructor
    call per node, and each distinct scalar built once per file (repeated keys and label values
    share one string, which halves the memory of the loaded bodies). Plain scalars resolve with
    the safe loader's own implicit resolvers and constructors, so the data is what `_Loader`
    builds. Anything else (an explicit tag, an anchor or alias, `<<`, a key written twice, a
    collection as a key, nesting near MAX_DEPTH, a value its constructor rejects, a YAML
    error) returns None, and the general path reads the file and reports what is wrong with
    its usual messages; no error is raised from here.
    """
    loader = _Base(text)
    try:
        return _plain_documents(loader)
    except Exception:  # noqa: BLE001 - declined or invalid: the general path says which
        return None
    finally:
        loader.dispose()


def _plain_documents(loader: Any) -> list[Parsed]:
    # One function with the loop inlined: this runs once per event of every input file.
    get_event = loader.get_event
    resolvers = loader.yaml_implicit_resolvers
    constructors = loader.yaml_constructors
    scalar_event, document_start, document_end = yaml.ScalarEvent, yaml.DocumentStartEvent, yaml.DocumentEndEvent
    mapping_start, sequence_start, collection_end = _MAPPING_START, _SEQUENCE_START, _COLLECTION_END
    no_key, special_keys, deepest = _NO_KEY, _SPECIAL_KEYS, MAX_DEPTH - 1
    plain: dict[str, Any] = {}  # plain scalar as written -> its value
    quoted: dict[str, str] = {}
    parsed: list[Parsed] = []
    if None in resolvers:  # resolvers for any first character: not the safe loader's
        raise _Declined
    get_event()  # StreamStartEvent
    while True:
        event = get_event()
        if type(event) is not document_start:
            if type(event) is yaml.StreamEndEvent:
                return parsed
            raise _Declined
        stack: list[Any] = []
        container: Any = None
        key: Any = no_key
        root: Any = None
        line = 0
        items: list[Any] | None = None
        item_lines: list[int] = []
        while True:
            event = get_event()
            kind = type(event)
            if kind is scalar_event:
                if event.anchor is not None or event.tag is not None:
                    raise _Declined
                value = event.value
                if event.implicit[0]:
                    known = plain.get(value, no_key)
                    if known is no_key:
                        known = value
                        for tag, pattern in resolvers.get(value[0] if value else "", ()):
                            if pattern.match(value):
                                if tag in special_keys:
                                    raise _Declined
                                node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark)
                                known = constructors[tag](loader, node)
                                break
                        plain[value] = known
                    value = known
                else:
                    value = quoted.setdefault(value, value)
                if container is None:
                    root, line = value, event.start_mark.line + 1
                elif key is not no_key:
                    container[key] = value
                    key = no_key
                elif type(container) is dict:
                    if value in container:
                        raise _Declined
                    key = value
                else:
                    if container is items:
                        item_lines.append(event.start_mark.line + 1)
                    container.append(value)
            elif kind is mapping_start or kind is sequence_start:
                if event.anchor is not None or event.tag is not None or len(stack) >= deepest:
                    raise _Declined
                new: Any = {} if kind is mapping_start else []
                if container is None:
                    root, line = new, event.start_mark.line + 1
                elif key is not no_key:
                    if container is root and key == "items" and kind is sequence_start:
                        items = new
                    container[key] = new
                elif type(container) is dict:
                    raise _Declined  # a collection as a key
                else:
                    if container is items:
                        item_lines.append(event.start_mark.line + 1)
                    container.append(new)
                stack.append(container)
                container, key = new, no_key
            elif kind in collection_end:
                container, key = stack.pop(), no_key
            elif kind is document_end:
                break
            else:
                raise _Declined  # an alias
        parsed.append((root, line, item_lines, []))


def _may_have_anchor(text: str) -> bool:
    """False when the text certainly has no anchor, so no alias: its alias check is skipped.
    (str.find runs at C speed; a regex scan of every character cost 10% of the load.)"""
    position = text.find("&")
    while position != -1:
        if position == 0 or text[position - 1] in _BEFORE_ANCHOR:
            return True
        position = text.find("&", position + 1)
    return False


def _construct(loader: _Loader, node: yaml.Node) -> Any:
    """The document's data; a value its tag cannot be built from is a YAML error at that value."""
    try:
        return loader.construct_document(node)
    except yaml.YAMLError:
        raise
    except Exception:  # noqa: BLE001 - PyYAML's scalar constructors fail with whatever they meet
        raise _scalar_error(node) from None


def _scalar_error(root: yaml.Node) -> yaml.MarkedYAMLError:
    """Find the scalar whose construction failed, by building each one alone (error path only)."""
    stack = [root]
    seen: set[int] = set()
    probe = _Loader("")
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            try:
                probe.construct_object(node, deep=True)
            except Exception:  # noqa: BLE001 - as above
                value = repr(node.value) if len(node.value) <= 40 else f"{node.value[:20]!r}... ({len(node.value)} characters)"
                tag = node.tag.replace("tag:yaml.org,2002:", "!!")
                return yaml.constructor.ConstructorError(None, None, f"cannot read {value} as {tag}", node.start_mark)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
        elif isinstance(node, yaml.MappingNode):
            for key, value in reversed(node.value):
                stack.extend((value, key))
    return yaml.constructor.ConstructorError(None, None, "cannot read this document", root.start_mark)


def _alias_problem(root: yaml.Node) -> str | None:
    """Why the document, with its aliases expanded, is too big, too deep or infinite; or None.

    One iterative pass over the node graph (aliases are shared nodes), sizes and depths memoized
    per node, so the cost is the number of nodes written, never the number expanded.
    """
    written: set[int] = set()
    sizes: dict[int, tuple[int, int]] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            active.discard(key)
            size, depth = 1, 0
            for child in _children(node):
                child_size, child_depth = sizes[id(child)]
                size += child_size
                depth = max(depth, child_depth)
            sizes[key] = (size, depth + 1)
            continue
        if key in sizes:
            continue
        if key in active:
            return "invalid YAML: an alias refers to a node that contains it (a recursive structure)"
        active.add(key)
        written.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))
    size, depth = sizes[id(root)]
    limit = max(MAX_EXPANDED_NODES, ALIAS_FACTOR * len(written))
    if depth > MAX_DEPTH:
        return f"invalid YAML: aliases nest this document more than {MAX_DEPTH} levels deep"
    if size > limit:
        return (
            f"invalid YAML: aliases expand this document to {size} nodes, more than {limit} "
            f"({len(written)} written)"
        )
    return None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _deep_line(text: str) -> int | None:
    """The line where nesting first goes past MAX_DEPTH, from libyaml's events (which do not
    recurse); only when a file was too deep."""
    loader = _Base(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return event.start_mark.line + 1 if event.start_mark is not None else None
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    return None


def _list_items(doc: Document, problems: list[InputError], lines: Sequence[int] = ()) -> Iterator[Document]:
    items = doc.body.get("items")
    if items is None:
        return  # `items: null`, or a List without items: no objects
    if not isinstance(items, list):
        problems.append(InputError.expected(doc.location(("items",)), "items", "a list", items, obj=doc.kind))
        return
    # API list responses (PodList, ...) leave kind and apiVersion off their items; kubectl's
    # `kind: List` carries them on every item.
    item_kind = doc.kind[: -len("List")] if doc.kind != "List" else None
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            where = doc.location(("items", position))
            problems.append(InputError.expected(where, f"items[{position}]", "a Kubernetes object", item))
            continue
        if item_kind is not None:
            item.setdefault("kind", item_kind)
            item.setdefault("apiVersion", doc.api_version)
        yield Document(doc.source, doc.index, position, item, lines[position] if position < len(lines) else None)


def load_documents(paths: Sequence[str], problems: list[InputError]) -> list[Document]:
    """Read and parse every path; problems of every file are appended to `problems`."""
    documents: list[Document] = []
    for raw in expand_paths(paths):
        try:
            documents.extend(parse_source(read_source(raw), problems))
        except InputError as exc:
            problems.append(exc)
    return documents
