"""An in-process Kubernetes API server for tests: the HTTP wire protocol of list and watch, no more.

- GET of a collection (`/api/v1/pods`, `/apis/GROUP/VERSION/PLURAL`, and per namespace): a
  `<Kind>List` with `metadata.resourceVersion`, items without kind/apiVersion, paginated with
  `limit` and `continue`.
- `?watch=1`: a chunked stream of JSON lines, `{"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|
  "ERROR", "object": ...}`, from `resourceVersion` on; without one (or "0"), every object first
  as ADDED. A version older than the last `compact()` gets an ERROR event with a 410 Status (as
  the API server does), or an HTTP 410 when `gone_as_http` is set. `timeoutSeconds` ends the
  stream; bookmarks go out when asked for with `allowWatchBookmarks=true` (`bookmark()`, or every
  `bookmark_interval` seconds).
- `drop_watches()` cuts every open watch connection without ending the chunked body.
- `fail_next(status, count)` answers the next requests with an error Status.
- `inject(fault, ...)`: the next requests of a collection (lists, watches or both) answered
  with a fault: an error status, 410 Gone (an ERROR event on a watch), no answer at all, a body
  stalled or cut off halfway (a list page, a watch chunk), bytes that are not JSON, JSON of the
  wrong shape. `clear_faults()` ends them and releases connections held open by them.
- Discovery: `/apis/GROUP/VERSION` for the groups served. Groups not served (`absent`) answer 404.

Every request is recorded in `requests` (method, path, query) for assertions. Extra listening
sockets (e.g. made inside a lab network namespace) can be served with `serve_socket`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CORE = {"Namespace": ("namespaces", False), "Pod": ("pods", True), "Service": ("services", True),
        "ServiceAccount": ("serviceaccounts", True), "Node": ("nodes", False)}  # fmt: skip
GROUPED = {
    "networking.k8s.io/v1": {"NetworkPolicy": ("networkpolicies", True)},
    "policy.networking.k8s.io/v1alpha1": {
        "AdminNetworkPolicy": ("adminnetworkpolicies", False),
        "BaselineAdminNetworkPolicy": ("baselineadminnetworkpolicies", False),
    },
    "policy.networking.k8s.io/v1alpha2": {"ClusterNetworkPolicy": ("clusternetworkpolicies", False)},
    "netfence.dev/v1alpha1": {"ExternalWorkload": ("externalworkloads", False)},
    **{
        version: {
            "NetworkPolicy": ("networkpolicies", True),
            "GlobalNetworkPolicy": ("globalnetworkpolicies", False),
            "NetworkSet": ("networksets", True),
            "GlobalNetworkSet": ("globalnetworksets", False),
            "HostEndpoint": ("hostendpoints", False),
            "Tier": ("tiers", False),
        }
        for version in ("projectcalico.org/v3", "crd.projectcalico.org/v1")
    },
}


@dataclass
class _Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool
    objects: dict[tuple[str, str], dict[str, Any]]
    #: (resourceVersion, type, object) since the last compaction.
    history: list[tuple[int, str, dict[str, Any]]]


#: What `inject` can do to a request.
FAULTS = ("status", "gone", "hang", "stall", "drop", "garbage", "shape")


@dataclass
class Fault:
    """`kind` (FAULTS) for the next `count` requests (None: until cleared) that are lists
    (`watch` False), watches (True) or either (None), of collections whose path contains `path`."""

    kind: str
    count: int | None = None
    watch: bool | None = None
    path: str | None = None
    status: int = 500
    #: How many requests it answered.
    hits: int = 0

    def matches(self, path: str, watch: bool) -> bool:
        return (self.watch is None or self.watch == watch) and (self.path is None or self.path in path)


@dataclass
class _Watch:
    kind: _Kind
    connection: socket.socket
    bookmarks: bool
    closed: bool = False


class FakeApiServer:
    def __init__(self, absent: Iterable[str] = (), bookmark_interval: float | None = None) -> None:
        """`absent`: apiVersions (groups) the server does not serve."""
        self.absent = set(absent)
        self.bookmark_interval = bookmark_interval
        self.gone_as_http = False
        #: http://127.0.0.1:PORT once started.
        self.url = ""
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Condition()
        self._version = 1000
        self._compacted = 0
        self._kinds: dict[str, _Kind] = {}
        self._watches: list[_Watch] = []
        self._failures: list[int] = []
        self._faults: list[Fault] = []
        #: Set to release the connections held open by "hang" and "stall" faults.
        self._release = threading.Event()
        self._servers: list[ThreadingHTTPServer] = []
        for kind, (plural, namespaced) in CORE.items():
            self._kinds[f"/api/v1/{plural}"] = _Kind("v1", kind, plural, namespaced, {}, [])
        for version, kinds in GROUPED.items():
            for kind, (plural, namespaced) in kinds.items():
                self._kinds[f"/apis/{version}/{plural}"] = _Kind(version, kind, plural, namespaced, {}, [])

    # --- serving -------------------------------------------------------------------------

    def start(self) -> str:
        """Listen on 127.0.0.1 (a free port); return the URL."""
        server = self._server(("127.0.0.1", 0))
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def serve_socket(self, sock: socket.socket) -> None:
        """Also serve on an already bound socket (it keeps the network namespace it was made in)."""
        server = self._server(sock.getsockname(), bind=False, start=False)
        server.socket.close()
        server.socket = sock
        sock.listen(128)
        self._start(server)

    def _server(self, address: Any, bind: bool = True, start: bool = True) -> ThreadingHTTPServer:
        owner = self

        class Handler(_Handler):
            api = owner

        server = _Server(address, Handler, bind_and_activate=bind)
        server.daemon_threads = True
        if start:
            self._start(server)
        return server

    def _start(self, server: ThreadingHTTPServer) -> None:
        self._servers.append(server)
        threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-apiserver", daemon=True).start()
        if self.bookmark_interval and len(self._servers) == 1:
            threading.Thread(target=self._bookmarks_forever, daemon=True).start()

    def stop(self) -> None:
        self._release.set()
        self.drop_watches()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    # --- objects -------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._version

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self._write("ADDED", obj)

    def update(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self._write("MODIFIED", obj)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or update."""
        kind = self._kind_of(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        exists = (meta.get("namespace", "") if kind.namespaced else "", meta["name"]) in kind.objects
        return self._write("MODIFIED" if exists else "ADDED", obj)

    def delete(self, api_version: str, kind_name: str, name: str, namespace: str | None = None) -> None:
        kind = self._kind_of(api_version, kind_name)
        with self._lock:
            obj = kind.objects.pop((namespace or "", name))
            self._version += 1
            gone = json.loads(json.dumps(obj))
            gone["metadata"]["resourceVersion"] = str(self._version)
            kind.history.append((self._version, "DELETED", gone))
            self._lock.notify_all()

    def _write(self, event: str, obj: dict[str, Any]) -> dict[str, Any]:
        kind = self._kind_of(obj["apiVersion"], obj["kind"])
        stored = json.loads(json.dumps(obj))
        meta = stored.setdefault("metadata", {})
        key = (meta.get("namespace", "") if kind.namespaced else "", meta["name"])
        with self._lock:
            if event == "ADDED" and key in kind.objects:
                raise KeyError(f"{kind.kind} {key} exists")
            if event == "MODIFIED" and key not in kind.objects:
                raise KeyError(f"{kind.kind} {key} does not exist")
            self._version += 1
            meta["resourceVersion"] = str(self._version)
            meta.setdefault("uid", f"uid-{self._version}")
            meta.setdefault("creationTimestamp", "2024-01-01T00:00:00Z")
            meta["managedFields"] = [{"manager": "fake", "operation": "Update"}]
            kind.objects[key] = stored
            kind.history.append((self._version, event, stored))
            self._lock.notify_all()
        return stored

    def _kind_of(self, api_version: str, kind_name: str) -> _Kind:
        for kind in self._kinds.values():
            if kind.api_version == api_version and kind.kind == kind_name:
                return kind
        raise KeyError(f"no kind {kind_name} in {api_version}")

    # --- faults --------------------------------------------------------------------------

    def compact(self) -> None:
        """Forget history: watches from any version seen so far get 410 Gone."""
        with self._lock:
            self._compacted = self._version
            for kind in self._kinds.values():
                kind.history.clear()

    def expire(self) -> None:
        """Every version handed out so far too old (writes, then a compaction): each watch that
        resumes gets 410 Gone, whatever bookmarks it had."""
        with self._lock:
            self._version += 1
        self.compact()

    def drop_watches(self) -> None:
        """Cut every open watch connection (no final chunk): a network failure, as the client sees it."""
        with self._lock:
            watches, self._watches = self._watches, []
            for watch in watches:
                watch.closed = True
            self._lock.notify_all()
        for watch in watches:
            try:
                watch.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def fail_next(self, status: int, count: int = 1) -> None:
        with self._lock:
            self._failures += [status] * count

    def inject(self, kind: str, count: int | None = None, watch: bool | None = None, path: str | None = None,
               status: int = 500) -> Fault:  # fmt: skip
        """Answer the next `count` matching collection requests with fault `kind` (see Fault)."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}")
        fault = Fault(kind, count, watch, path, status)
        with self._lock:
            self._release.clear()
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """No more injected faults; connections they hold open are closed."""
        with self._lock:
            self._faults.clear()
            self._failures.clear()
        self._release.set()

    def _take_fault(self, path: str, watch: bool) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(path, watch):
                    fault.hits += 1
                    if fault.count is not None:
                        fault.count -= 1
                        if fault.count <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def bookmark(self) -> None:
        """A BOOKMARK on every watch that asked for them, at the current resourceVersion."""
        with self._lock:
            watches = [w for w in self._watches if w.bookmarks and not w.closed]
            version = self._version
        for watch in watches:
            line = {"type": "BOOKMARK", "object": {"kind": watch.kind.kind, "apiVersion": watch.kind.api_version,
                                                   "metadata": {"resourceVersion": str(version)}}}  # fmt: skip
            try:
                _chunk(watch.connection, json.dumps(line).encode() + b"\n")
            except OSError:
                pass

    def _bookmarks_forever(self) -> None:
        assert self.bookmark_interval
        while self._servers:
            time.sleep(self.bookmark_interval)
            self.bookmark()

    def watch_count(self, path: str | None = None) -> int:
        with self._lock:
            return len([w for w in self._watches if not w.closed and (path is None or w.kind.plural in path)])

    def wait_for_watches(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.watch_count() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.watch_count()} watches open, expected {count}")
            time.sleep(0.01)

    # --- request handling ----------------------------------------------------------------

    def _resolve(self, path: str) -> tuple[_Kind | None, str | None, bool]:
        """(kind, namespace, known group) for a collection path."""
        parts = [p for p in path.split("/") if p]
        namespace = None
        if len(parts) >= 5 and parts[-3] == "namespaces":
            namespace = parts[-2]
            parts = parts[:-3] + parts[-1:]
        key = "/" + "/".join(parts)
        return self._kinds.get(key), namespace, True

    def _list(self, kind: _Kind, namespace: str | None, query: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            objects = [o for (ns, _), o in sorted(kind.objects.items()) if namespace is None or ns == namespace]
            version = self._version
        start = int(query.get("continue") or 0)
        limit = int(query.get("limit") or 0) or len(objects) or 1
        page = objects[start : start + limit]
        metadata: dict[str, Any] = {"resourceVersion": str(version)}
        if start + limit < len(objects):
            metadata["continue"] = str(start + limit)
        items = []
        for obj in page:
            item = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
            items.append(item)
        return {"kind": f"{kind.kind}List", "apiVersion": kind.api_version, "metadata": metadata, "items": items}


class _Server(ThreadingHTTPServer):
    #: Every informer connects at once; a short backlog drops SYNs (retried after 1 s).
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away (the informer stopping, a dropped watch): not a test failure


def _chunk(connection: socket.socket, data: bytes) -> None:
    connection.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    api: FakeApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def setup(self) -> None:
        super().setup()
        # As Go's net/http does: without it, headers and body in two writes meet delayed ACKs (40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        api = self.api
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with api._lock:
            api.requests.append(("GET", url.path, query))
            failure = api._failures.pop(0) if api._failures else None
        if failure is not None:
            return self._json(failure, _status(failure, "InternalError", "injected failure"))
        parts = [p for p in url.path.split("/") if p]
        if url.path in ("/api", "/apis") or (parts[:1] == ["apis"] and len(parts) in (2, 3)):
            return self._discovery(parts)
        kind, namespace, _ = api._resolve(url.path)
        if kind is None or kind.api_version in api.absent:
            return self._json(404, _status(404, "NotFound", f"the server could not find the requested resource"))
        watching = query.get("watch") in ("1", "true")
        fault = api._take_fault(url.path, watching)
        if fault is not None:
            return self._fault(fault, kind, namespace, query, watching)
        if watching:
            return self._watch(kind, namespace, query)
        return self._json(200, api._list(kind, namespace, query))

    def _fault(self, fault: Fault, kind: _Kind, namespace: str | None, query: dict[str, str], watching: bool) -> None:
        api = self.api
        self.close_connection = True
        if fault.kind == "status":
            return self._json(fault.status, _status(fault.status, "InternalError", "injected failure"))
        if fault.kind == "gone" and not watching:
            return self._json(410, _status(410, "Expired", "injected: the resourceVersion is too old"))
        if fault.kind == "hang":  # the connection accepted, the request read, no answer
            api._release.wait(60)
            return
        if watching:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            event = {"type": "ADDED", "object": {"kind": kind.kind, "apiVersion": kind.api_version,
                                                 "metadata": {"name": "half", "namespace": "x", "resourceVersion": "1"}}}  # fmt: skip
            line = json.dumps(event).encode() + b"\n"
            body = {
                "gone": json.dumps({"type": "ERROR", "object": _status(410, "Expired", "injected: too old")}).encode() + b"\n",
                "garbage": b"\x00not json at all {\n",
                "shape": b'[1, 2]\n{"type": "ADDED", "object": "not an object"}\n',
            }.get(fault.kind)
            try:
                if body is not None:
                    _chunk(self.connection, body)
                    _chunk(self.connection, b"")
                    return
                # stall or drop: a chunk announced whole and sent halfway
                self.connection.sendall(f"{len(line):x}\r\n".encode() + line[: len(line) // 2])
                if fault.kind == "stall":
                    api._release.wait(60)
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        page = json.dumps(api._list(kind, namespace, query)).encode()
        if fault.kind == "garbage":
            return self._raw(200, b"<html>502 Bad Gateway</html>" + page[: len(page) // 2])
        if fault.kind == "shape":
            return self._raw(200, json.dumps({"kind": f"{kind.kind}List", "metadata": {"resourceVersion": "5"},
                                              "items": [1, "two", None]}).encode())  # fmt: skip
        # stall or drop: a page announced whole and sent halfway
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        try:
            self.wfile.write(page[: len(page) // 2])
            self.wfile.flush()
            if fault.kind == "stall":
                api._release.wait(60)
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _raw(self, code: int, data: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _discovery(self, parts: list[str]) -> None:
        api = self.api
        if len(parts) == 3:
            version = f"{parts[1]}/{parts[2]}"
            kinds = [k for k in api._kinds.values() if k.api_version == version]
            if not kinds or version in api.absent:
                return self._json(404, _status(404, "NotFound", "the server could not find the requested resource"))
            resources = [{"name": k.plural, "kind": k.kind, "namespaced": k.namespaced, "verbs": ["get", "list", "watch"]}
                         for k in kinds]  # fmt: skip
            return self._json(200, {"kind": "APIResourceList", "groupVersion": version, "resources": resources})
        return self._json(200, {"kind": "APIGroupList", "groups": []})

    def _json(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _watch(self, kind: _Kind, namespace: str | None, query: dict[str, str]) -> None:
        api = self.api
        raw = query.get("resourceVersion")
        since = int(raw) if raw not in (None, "", "0") else None
        with api._lock:
            too_old = since is not None and since < api._compacted
            if too_old and api.gone_as_http:
                gone = True
            else:
                gone = False
        if gone:
            return self._json(410, _status(410, "Expired", f"too old resource version: {since} ({api._compacted})"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        connection = self.connection
        watch = _Watch(kind, connection, query.get("allowWatchBookmarks") in ("1", "true"))
        timeout = float(query.get("timeoutSeconds") or 3600)
        deadline = time.monotonic() + timeout
        if too_old:
            error = {"type": "ERROR", "object": _status(410, "Expired", f"too old resource version: {since}")}
            _chunk(connection, json.dumps(error).encode() + b"\n")
            _chunk(connection, b"")
            return
        with api._lock:
            if since is None:
                pending = [(api._version, "ADDED", o) for o in kind.objects.values()]
                since = api._version
            else:
                pending = []
            api._watches.append(watch)
        try:
            while True:
                for version, event, obj in pending:
                    if namespace is not None and obj["metadata"].get("namespace") != namespace:
                        continue
                    _chunk(connection, json.dumps({"type": event, "object": obj}).encode() + b"\n")
                    since = max(since, version)
                with api._lock:
                    while True:
                        if watch.closed:
                            return
                        pending = [h for h in kind.history if h[0] > since]
                        if pending or time.monotonic() >= deadline:
                            break
                        api._lock.wait(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
                if not pending and time.monotonic() >= deadline:
                    _chunk(connection, b"")  # the end of a chunked body: the watch timed out
                    return
        except OSError:
            return
        finally:
            with api._lock:
                if watch in api._watches:
                    api._watches.remove(watch)
            if watch.closed:
                self.close_connection = True
