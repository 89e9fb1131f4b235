"""Open a page in headless Chromium and see what it requested, with no library in between.

Chromium speaks the DevTools protocol over `--remote-debugging-pipe`: JSON messages ended by
NUL, read from its fd 3 and written to its fd 4. That is enough to record every request the
page makes (`Network.requestWillBeSent`), every one that failed (`Network.loadingFailed`),
every error it logs (an uncaught exception, `console.error`, a resource the browser could not
load), and to evaluate an expression in the loaded page.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from system import skip_without

# Without a display, with a profile of its own, and nothing that calls home.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    skip_without("chromium")


@dataclass
class PageVisit:
    requested: list[str] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # what the page's console shows as errors
    value: Any = None  # what the expression returned


def visit(url: str, expression: str, profile: Path, timeout: float = 60.0) -> PageVisit:
    """Load `url` until its load event, then evaluate `expression`: a JSON-serialisable value,
    or a promise of one (for pages that render after loading)."""
    return visit_all([url], expression, profile, timeout)[0]


def visit_all(
    urls: list[str], expression: str, profile: Path, timeout: float = 60.0
) -> list[PageVisit]:
    """`visit` each URL in turn, each in a tab of its own, with one Chromium (one start)."""
    to_browser, from_browser = os.pipe(), os.pipe()

    def wire_fds() -> None:  # in the child: its fd 3 reads our writes, its fd 4 writes to us
        read_end, write_end = os.dup(to_browser[0]), os.dup(from_browser[1])
        os.dup2(read_end, 3)
        os.dup2(write_end, 4)

    browser = subprocess.Popen(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe"],
        close_fds=False,
        preexec_fn=wire_fds,  # the test process starts no threads of its own
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(to_browser[0])
    os.close(from_browser[1])
    session = _Session(to_browser[1], from_browser[0], time.monotonic() + timeout * len(urls))
    try:
        return [_open(session, url, expression) for url in urls]
    finally:
        browser.kill()
        browser.wait()
        os.close(to_browser[1])
        os.close(from_browser[0])


def _open(session: _Session, url: str, expression: str) -> PageVisit:
    session.id = None
    target = session.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    attached = session.call("Target.attachToTarget", {"targetId": target, "flatten": True})
    session.id = attached["sessionId"]
    start = len(session.events)
    for domain in ("Network", "Page", "Runtime", "Log"):
        session.call(f"{domain}.enable")
    session.call("Page.navigate", {"url": url})
    session.wait(
        lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session.id
    )
    evaluated = f"Promise.resolve({expression}).then(JSON.stringify)"
    result = session.call(
        "Runtime.evaluate",
        {"expression": evaluated, "awaitPromise": True, "returnByValue": True},
    )
    events = [m for m in session.events[start:] if m.get("sessionId") == session.id]

    def of(method: str) -> list[dict[str, Any]]:
        return [m["params"] for m in events if m.get("method") == method]

    exceptions = [e["exceptionDetails"] for e in of("Runtime.exceptionThrown")]
    return PageVisit(
        requested=[p["request"]["url"] for p in of("Network.requestWillBeSent")],
        failed=of("Network.loadingFailed"),
        errors=[
            *(f"{e['text']} {e.get('exception', {}).get('description', '')}" for e in exceptions),
            *(str(c["args"]) for c in of("Runtime.consoleAPICalled") if c["type"] == "error"),
            *(f"{e['text']} ({e.get('url', '')})" for e in _log_errors(of("Log.entryAdded"))),
        ],
        value=json.loads(result["result"]["value"]),
    )


def _log_errors(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["entry"] for e in entries if e["entry"]["level"] == "error"]


class _Session:
    def __init__(self, writer: int, reader: int, deadline: float) -> None:
        self.writer, self.reader, self.deadline = writer, reader, deadline
        self.id: str | None = None
        self.events: list[dict[str, Any]] = []
        self._buffer = b""
        self._last = 0

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._last += 1
        number = self._last
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if self.id is not None:
            message["sessionId"] = self.id
        os.write(self.writer, json.dumps(message).encode() + b"\0")
        reply = self.wait(lambda m: m.get("id") == number)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def wait(self, wanted: Any) -> dict[str, Any]:
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message: dict[str, Any] = json.loads(raw)
                self.events.append(message)
                if wanted(message):
                    return message
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            if select.select([self.reader], [], [], left)[0]:
                chunk = os.read(self.reader, 1 << 16)
                if not chunk:
                    raise EOFError("chromium closed its DevTools pipe")
                self._buffer += chunk
