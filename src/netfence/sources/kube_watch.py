"""List and watch one kind, as an informer does, keeping a local cache of its objects.

List (paginated with limit/continue), then watch from the list's resourceVersion with
bookmarks. A watch that ends is started again from the last resourceVersion seen (an event or
a bookmark); `410 Gone` (an HTTP status, or an ERROR event with code 410) means that version is
too old, so the kind is listed again: at once the first time, after an exponential backoff when
the server keeps answering 410 (until a watch delivers an event again). Any other failure (an
error status, a timeout, a connection cut, a body that is not the JSON expected) reconnects after
an exponential backoff with jitter, keeping what the cache holds (a lost API server never empties
it). Every request has a connect and a read timeout: a server that accepts a connection and then
says nothing (or stops halfway through a list page or a watch chunk) costs `read_timeout` or
`list_timeout` and a reconnect, never a thread stuck for good. A kind the server does not serve
(404) counts as empty and is looked for again later.

Requests go through the `kubernetes` client's API classes (its configuration, authentication and
TLS) with `_preload_content=False`: the raw JSON is kept, as the YAML loader would read it.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import urllib3
from kubernetes import client as _client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch import watch as _watch

# The client's modules, used untyped: its generated signatures and return types differ between
# releases (and describe parsed models, where netfence asks for the raw response).
k8s_client: Any = _client
iter_resp_lines: Any = _watch.iter_resp_lines

log = logging.getLogger("netfence.sources.kube_watch")

#: Fields of no use to netfence that can be large; dropped as objects arrive.
_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


@dataclass(frozen=True, slots=True)
class Resource:
    """One kind as the API serves it."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def path(self) -> str:
        """The collection across all namespaces: /api/v1/pods, /apis/GROUP/VERSION/PLURAL."""
        base = f"/apis/{self.api_version}" if self.group else f"/api/{self.version}"
        return f"{base}/{self.plural}"

    def object_path(self, namespace: str | None, name: str) -> str:
        base = f"/apis/{self.api_version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}/{name}"
        return f"{base}/{self.plural}/{name}"

    def __str__(self) -> str:
        return f"{self.kind} ({self.api_version})"


def plural(kind: str) -> str:
    """The resource name of a kind, as the API server spells it (`NetworkPolicy` -> `networkpolicies`)."""
    lower = kind.lower()
    return lower[:-1] + "ies" if lower.endswith("y") else lower + "s"


class Gone(Exception):
    """410: the resourceVersion is older than what the server still has; list again."""


@dataclass
class Backoff:
    """Exponential backoff with jitter: each delay is drawn from [d/2, d], d doubling from
    `base` up to `cap`; `reset()` after a success."""

    base: float = 0.5
    cap: float = 30.0
    attempts: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next(self) -> float:
        ceiling = min(self.cap, self.base * float(1 << min(self.attempts, 30)))
        self.attempts += 1
        return ceiling / 2 + self.rng.random() * ceiling / 2

    def reset(self) -> None:
        self.attempts = 0


@dataclass(frozen=True)
class WatchSettings:
    #: Items per list page.
    page: int = 500
    #: The server ends a watch after a random time in this range (seconds), as client-go asks.
    timeout: tuple[int, int] = (300, 600)
    #: Connect timeout, and read timeout on a watch (no event or bookmark for this long:
    #: reconnect; API servers send bookmarks about once a minute).
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    #: Read timeout of a list page.
    list_timeout: float = 60.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    #: How long a kind the server does not serve stays unlooked-for.
    absent_retry: float = 60.0


#: (kind, reason) -> called on every reconnect: reason is "closed" (the watch ended), "error"
#: (it failed), "gone" (410: listed again) or "absent" (the server does not serve the kind).
ReconnectHook = Callable[[Resource, str], None]


class Informer:
    """The local cache of one kind, kept by list + watch in a thread of its own."""

    def __init__(
        self,
        api: Any,
        resource: Resource,
        changed: Callable[[], None],
        settings: WatchSettings = WatchSettings(),
        on_reconnect: ReconnectHook | None = None,
    ) -> None:
        self.api, self.resource, self.settings = api, resource, settings
        self._changed = changed
        self._on_reconnect = on_reconnect
        self._lock = threading.Lock()
        self._store: dict[tuple[str, str], dict[str, Any]] = {}
        self._stop = threading.Event()
        self._response: Any = None
        self._thread: threading.Thread | None = None
        self.resource_version: str | None = None
        #: The first list completed: the cache stands for the cluster (maybe late).
        self.synced = threading.Event()
        #: False when the server does not serve the kind (404 on list).
        self.served = True
        #: monotonic time of the last successful response (list, event or bookmark).
        self.last_contact: float | None = None
        self.connected = False
        #: monotonic time since when the kind cannot be listed or watched (None: it can). A watch
        #: that connects but then fails before it delivers anything (an error event, bytes that
        #: are not JSON, a connection cut) does not end an outage: a list, an event, a bookmark
        #: or a watch the server ends normally does.
        self.down_since: float | None = None
        self.last_error: str | None = None
        self._backoff = Backoff(settings.backoff_base, settings.backoff_cap)
        #: 410s in a row (no watch event between them), and the backoff of the relists they cause.
        self._gones = 0
        self._gone_backoff = Backoff(settings.backoff_base, settings.backoff_cap)

    # life

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"netfence-watch-{self.resource.plural}", daemon=True)
        self._thread.start()

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            _shutdown(response)
        if wait:
            self.join(5.0)

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def objects(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._store.values())

    # list + watch

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.resource_version is None:
                    self._list()
                started = time.monotonic()
                if self._watch() == 0 and time.monotonic() - started < 1.0:
                    # A watch the server ends at once, without an event: do not spin.
                    self._reconnected("closed")
                    self._stop.wait(self._backoff.next())
                else:
                    self.down_since = None
                    self._reconnected("closed")
            except Gone:
                self._relist()
            except ApiException as exc:
                if self._stop.is_set():
                    break
                if exc.status == 410:  # the watch (or list) request itself refused: too old
                    self._relist()
                    continue
                if exc.status == 404 and self.resource_version is None:
                    self._absent()
                    continue
                self._failed(f"HTTP {exc.status} {exc.reason or ''}".strip())
            except (urllib3.exceptions.HTTPError, OSError, ValueError, KeyError, TypeError) as exc:
                if self._stop.is_set():
                    break
                self._failed(f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # a bug: the cache would stop following the cluster for good
                if self._stop.is_set():
                    break
                log.exception("internal error in the watch; reconnecting", extra={"fields": {"kind": str(self.resource)}})
                self._failed(f"internal error: {type(exc).__name__}: {exc}")

    def _relist(self) -> None:
        """410 Gone: list again, at once the first time, after a backoff when it keeps happening."""
        self.resource_version = None
        self.connected = False
        if self.down_since is None:
            self.down_since = time.monotonic()
        self.last_error = "410 Gone: listing again"
        self._gones += 1
        delay = self._gone_backoff.next() if self._gones > 1 else 0.0
        log.info(
            "resourceVersion expired; listing again",
            extra={"fields": {"kind": str(self.resource), "in_a_row": self._gones, "retry_in_s": round(delay, 2)}},
        )
        self._reconnected("gone")
        if delay:
            self._stop.wait(delay)

    def _reconnected(self, reason: str) -> None:
        if self._on_reconnect is not None and not self._stop.is_set():
            self._on_reconnect(self.resource, reason)

    def _failed(self, message: str) -> None:
        self.connected = False
        if self.down_since is None:
            self.down_since = time.monotonic()
        self.last_error = message
        delay = self._backoff.next()
        log.warning(
            "watch failed; reconnecting",
            extra={"fields": {"kind": str(self.resource), "error": message, "retry_in_s": round(delay, 2)}},
        )
        self._reconnected("error")
        self._stop.wait(delay)

    def _absent(self) -> None:
        """The server does not serve this kind (its CRD is not installed): nothing of it exists."""
        first = self.served
        self.served = False
        self.connected = True
        self.down_since = None
        self.last_contact = time.monotonic()
        with self._lock:
            had = bool(self._store)
            self._store = {}
        if first:
            log.info("kind not served by the API server; treated as empty", extra={"fields": {"kind": str(self.resource)}})
        synced_now = not self.synced.is_set()
        self.synced.set()
        if had or synced_now:  # the last kind to be listed may be one that does not exist
            self._changed()
        self._reconnected("absent")
        self._stop.wait(self.settings.absent_retry)

    def _call(self, **params: Any) -> Any:
        """One GET of the collection through the client's API classes, unparsed (a urllib3 response)."""
        resource = self.resource
        options = {"_preload_content": False}
        if not resource.group:
            core = k8s_client.CoreV1Api(self.api)
            method = getattr(core, f"list_{_snake(resource.kind)}" + ("_for_all_namespaces" if resource.namespaced else ""))
            return method(**params, **options)
        custom = k8s_client.CustomObjectsApi(self.api)
        return custom.list_cluster_custom_object(resource.group, resource.version, resource.plural, **params, **options)

    def _list(self) -> None:
        items: dict[tuple[str, str], dict[str, Any]] = {}
        token: str | None = None
        while True:
            params: dict[str, Any] = {"limit": self.settings.page, "_request_timeout": self._timeouts(self.settings.list_timeout)}
            if token:
                params["_continue"] = token
            # 410 (the continue token expired, or the server refuses the list): _run lists again,
            # from the start, with a backoff when it keeps happening.
            response = self._call(**params)
            try:
                body = json.loads(response.data)
            finally:
                response.release_conn()
            if not isinstance(body, dict) or not isinstance(body.get("items") or [], list):
                raise ValueError(f"the list of {self.resource} is not a {self.resource.kind}List object")
            for item in body.get("items") or ():
                if not isinstance(item, dict):
                    raise ValueError(f"the list of {self.resource} holds an item that is not an object: {item!r:.80}")
                # List items carry neither kind nor apiVersion; watch events do.
                item.setdefault("kind", self.resource.kind)
                item.setdefault("apiVersion", self.resource.api_version)
                items[_key(item)] = _trimmed(item)
            metadata = body.get("metadata") or {}
            if not isinstance(metadata, dict):
                raise ValueError(f"the list of {self.resource} has metadata that is not an object")
            token = metadata.get("continue") or None
            if token is None:
                version = metadata.get("resourceVersion")
                break
        with self._lock:
            changed = items != self._store
            self._store = items
        self.resource_version = str(version) if version else "0"
        self.served = True
        self.connected = True
        self.down_since = None
        self.last_error = None
        self.last_contact = time.monotonic()
        self._backoff.reset()
        first = not self.synced.is_set()
        self.synced.set()
        log.info(
            "listed",
            extra={"fields": {"kind": str(self.resource), "objects": len(items), "resource_version": self.resource_version}},
        )
        if changed or first:
            self._changed()

    def _watch(self) -> int:
        """Follow the watch until it ends; return how many events it delivered."""
        low, high = self.settings.timeout
        response = self._call(
            watch=True,
            resource_version=self.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=random.randint(low, high),
            _request_timeout=self._timeouts(self.settings.read_timeout),
        )
        self._response = response
        events = 0
        try:
            if self._stop.is_set():  # stopped while connecting: `stop` found no response to shut
                return 0
            self.connected = True
            self.last_contact = time.monotonic()
            for line in _lines(response):
                if self._stop.is_set():
                    break
                if line.strip():
                    self._event(json.loads(line))
                    events += 1
            return events
        finally:
            self._response = None
            response.release_conn()

    def _event(self, event: Any) -> None:
        if not isinstance(event, dict) or not isinstance(event.get("object") or {}, dict):
            raise ValueError(f"a watch event of {self.resource} that is not an event object: {event!r:.80}")
        kind, obj = event.get("type"), event.get("object") or {}
        meta = obj.get("metadata")
        if kind != "ERROR" and meta is not None and not isinstance(meta, dict):
            raise ValueError(f"a watch event of {self.resource} whose object has metadata that is not an object")
        self.last_contact = time.monotonic()
        if kind == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise Gone(obj.get("message", ""))
            raise ApiException(status=code or 500, reason=f"watch error: {obj.get('reason')}: {obj.get('message')}")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        self._gones = 0  # the watch works: the next 410 lists again at once
        self._gone_backoff.reset()
        self.connected = True
        self.down_since = None
        if kind == "BOOKMARK":
            if version:
                self.resource_version = str(version)
            return
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            raise ValueError(f"unknown watch event type {kind!r}")
        obj.setdefault("kind", self.resource.kind)
        obj.setdefault("apiVersion", self.resource.api_version)
        key = _key(obj)
        with self._lock:
            if kind == "DELETED":
                self._store.pop(key, None)
            else:
                self._store[key] = _trimmed(obj)
        if version:
            self.resource_version = str(version)
        self._backoff.reset()
        self._changed()

    def _timeouts(self, read: float) -> tuple[float, float]:
        return (self.settings.connect_timeout, read)


def _lines(response: Any) -> Iterator[str]:
    """The watch stream's JSON lines, as the chunks arrive."""
    yield from iter_resp_lines(response)


def _shutdown(response: Any) -> None:
    """Unblock a thread reading `response` (used to stop a watch): shut the socket down."""
    connection = getattr(response, "_connection", None) or getattr(response, "connection", None)
    sock = getattr(connection, "sock", None)
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        elif hasattr(response, "shutdown"):
            response.shutdown()
    except (OSError, ValueError, RuntimeError):
        pass  # already closed or handed back to the pool: nothing is blocked on it


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _trimmed(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without what netfence never reads and can be large."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            for name in _DROPPED_ANNOTATIONS:
                annotations.pop(name, None)
    return obj


def _snake(kind: str) -> str:
    out = "".join(f"_{c.lower()}" if c.isupper() else c for c in kind).lstrip("_")
    return out
