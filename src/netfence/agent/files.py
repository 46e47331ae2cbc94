"""The file source: `-f DIR|FILE`, watched by polling.

Every `interval` the paths are listed again (as `-f` reads them: directories recursively,
`*.yaml`, `*.yml`, `*.json`) and each file's (mtime, size, inode) noted; any difference, a new
or a removed file included, is a change. A change is reported only once the listing has stayed
the same for one more interval, so a file caught halfway through being written is not loaded.
Polling costs one stat per file per interval and works on every filesystem (bind mounts,
ConfigMap volumes that swap a symlink, NFS) where inotify would need per-directory watches.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence

from netfence.errors import InputError
from netfence.sources.documents import expand_paths, load_documents
from netfence.sources.snapshot import Snapshot

log = logging.getLogger("netfence.agent.files")

Fingerprint = tuple[tuple[str, int, int, int], ...]


class FileSource:
    def __init__(self, paths: Sequence[str], interval: float = 0.2) -> None:
        self.paths = list(paths)
        self.interval = interval
        self.name = "files " + ", ".join(self.paths)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._notify: Callable[[], None] = lambda: None
        self._seen: Fingerprint | None = None

    def fingerprint(self) -> Fingerprint:
        found = []
        for path in expand_paths(self.paths):
            try:
                st = os.stat(path)
            except OSError:
                continue
            found.append((path, st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(found)

    def start(self, notify: Callable[[], None]) -> None:
        self._notify = notify
        self._seen = self.fingerprint()
        self._thread = threading.Thread(target=self._poll, name="netfence-files", daemon=True)
        self._thread.start()
        notify()

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            now = self.fingerprint()
            if now == self._seen:
                continue
            # Settle: a file being written changes again within an interval.
            while not self._stop.wait(self.interval):
                later = self.fingerprint()
                if later == now:
                    break
                now = later
            self._seen = now
            log.info("files changed", extra={"fields": {"files": len(now)}})
            self._notify()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def synced(self) -> bool:
        return True

    def problems(self) -> list[str]:
        return []

    def outage(self) -> float:
        return 0.0

    def snapshot(self) -> Snapshot:
        problems: list[InputError] = []
        documents = load_documents(self.paths, problems)
        order = ["<stdin>" if p == "-" else p for p in expand_paths(self.paths)]
        return Snapshot(documents, problems, order)
