"""A headless Chromium driven over the DevTools protocol on a pipe, for the HTML report's tests.

`--remote-debugging-pipe` makes the browser read protocol commands from its file descriptor 3 and
write replies and events to descriptor 4, each message one JSON object followed by a NUL byte.
That needs no TCP port (nothing listens, nothing to collide with in parallel runs), no network and
no client library: the protocol is the same JSON a websocket client would carry.

    with Browser.start() as browser:
        page = browser.open("file:///tmp/report.html")
        page.errors      # uncaught exceptions, console errors and warnings, error log entries (CSP)
        page.requests    # every URL the page asked for, the page itself first
        page.evaluate("document.title")
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Debian ships the browser as chromium-headless-shell (headless only, no GTK: the smaller
#: install) and chromium; NETFENCE_BROWSER names another binary.
CANDIDATES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
)


def find_browser() -> str | None:
    named = os.environ.get("NETFENCE_BROWSER")
    if named:
        return shutil.which(named)
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(Exception):
    pass


@dataclass
class Page:
    browser: Browser
    session: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited if a promise), as JSON would carry it."""
        result = self.browser.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            self.session,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {_exception_text(result['exceptionDetails'])}")
        return result["result"].get("value")

    def close(self) -> None:
        self.browser.close_page(self)

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.exceptionThrown":
            self.errors.append("uncaught: " + _exception_text(params["exceptionDetails"]))
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert", "warning"):
            text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params["args"])
            self.errors.append(f"console.{params['type']}: {text}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(f"log ({params['entry']['source']}): {params['entry']['text']}")
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            self.errors.append(f"load failed: {params.get('errorText')}")


class Browser:
    """One browser process; `open` makes a new page (tab) for each document."""

    def __init__(self, executable: str, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="netfence-browser-")
        self._log = open(Path(self._profile) / "stderr.log", "w+b")  # noqa: SIM115 (closed in close())
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()

        def on_descriptors_3_and_4() -> None:
            # In the child: move the pipe ends to 3 and 4 by way of descriptors above both, so
            # that neither dup2 overwrites the other's source.
            high_read = fcntl.fcntl(commands_read, fcntl.F_DUPFD, 10)
            high_write = fcntl.fcntl(replies_write, fcntl.F_DUPFD, 10)
            os.dup2(high_read, 3)
            os.dup2(high_write, 4)

        self.process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            # Python opens descriptors non-inheritable, so only 0-2 and the dup2'ed 3 and 4 reach
            # the browser; close_fds would close 3 and 4 after preexec_fn.
            close_fds=False,
            preexec_fn=on_descriptors_3_and_4,
        )
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = bytearray()
        self._next_id = 0
        self._pages: dict[str, Page] = {}
        #: Every event read, in order, so that a wait can look back at what arrived while it
        #: waited for something else.
        self._events: list[dict[str, Any]] = []
        self.version = self.call("Browser.getVersion")["product"]

    @classmethod
    def start(cls, timeout: float = 30.0) -> Browser:
        executable = find_browser()
        if executable is None:
            raise BrowserError("no Chromium found: " + ", ".join(CANDIDATES))
        return cls(executable, timeout)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, url: str) -> Page:
        """A new page showing `url`, once its load event fired; it records errors and requests
        from before the navigation on."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        self._pages[session] = page
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable", {}, session)
        start = len(self._events)
        navigation = self.call("Page.navigate", {"url": url}, session)
        if navigation.get("errorText"):
            raise BrowserError(f"cannot open {url}: {navigation['errorText']}")
        # The load event that follows this navigation's commit, not a late one of about:blank.
        committed = self._wait_event(
            lambda m: m["method"] == "Page.frameNavigated" and m["params"]["frame"].get("loaderId") == navigation.get("loaderId"),
            session,
            start,
        )
        self._wait_event(lambda m: m["method"] == "Page.loadEventFired", session, committed + 1)
        return page

    def close_page(self, page: Page) -> None:
        target = self.call("Target.getTargetInfo", {}, page.session)["targetInfo"]["targetId"]
        self.call("Target.closeTarget", {"targetId": target})
        self._pages.pop(page.session, None)

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        wanted = self._next_id
        reply = self._wait(lambda m: m.get("id") == wanted)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.call("Browser.close")
            except (BrowserError, OSError):
                pass
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for fd in (self._commands, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def _wait(self, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._read(deadline)
            if "method" in message:
                self._events.append(message)
                page = self._pages.get(message.get("sessionId", ""))
                if page is not None:
                    page._event(message["method"], message.get("params", {}))
            if wanted(message):
                return message

    def _wait_event(self, wanted: Callable[[dict[str, Any]], bool], session: str, since: int) -> int:
        """The index of the first event of `session` from `since` on that is `wanted`."""

        def match(message: dict[str, Any]) -> bool:
            return "method" in message and message.get("sessionId") == session and wanted(message)

        for index in range(since, len(self._events)):
            if match(self._events[index]):
                return index
        self._wait(match)
        return len(self._events) - 1

    def _read(self, deadline: float) -> dict[str, Any]:
        searched = 0
        while True:
            end = self._buffer.find(b"\0", searched)
            if end >= 0:
                raw = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                parsed: dict[str, Any] = json.loads(raw)
                return parsed
            searched = len(self._buffer)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"no answer from the browser within {self.timeout:g} s")
            ready, _, _ = select.select([self._replies], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise BrowserError(f"the browser exited ({self.process.poll()}): {self._stderr_tail()}")
            self._buffer += chunk

    def _stderr_tail(self) -> str:
        self._log.flush()
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").splitlines()
        return " | ".join(line for line in lines[-5:] if "dbus" not in line)


def _exception_text(details: dict[str, Any]) -> str:
    exception = details.get("exception") or {}
    text = exception.get("description") or details.get("text", "")
    return f"{text} ({details.get('url', '')}:{details.get('lineNumber', 0) + 1})"
