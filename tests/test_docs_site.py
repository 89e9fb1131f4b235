"""The default project's docs site, as its README says: `make docs` builds it strictly, then
`make docs-serve` serves it on loopback and headless Chromium opens every page it built
(`tests/browser.py`): no failed request, none leaving loopback, no console error, a heading on
each page, and the search index served by the site itself.

The project holds every part, so its site has every page; the generated suite builds each
matrix row's own set (`tests/test_docs.py`, `docs_site` in its conftest) and checks the
reference pages and the alerts' runbook anchors there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from browser import visit_all
from projects import PROJECT_ENV, Demo, free_port, sh

pytestmark = pytest.mark.slow

# Each page's title and the number of documents in the search index, fetched from the site.
PAGE = (
    "fetch('/search/search_index.json').then(r => r.json())"
    ".then(index => [document.querySelector('article h1')?.textContent, index.docs.length])"
)


def _served(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def test_every_page_opens_offline_from_make_docs_serve(demo: Demo, tmp_path: Path) -> None:
    project = demo.project
    sh(["make", "docs"], project)
    site = project / "site"
    pages = sorted(path.parent.relative_to(site) for path in site.rglob("index.html"))
    assert len(pages) >= 12, pages

    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            ["make", "docs-serve", f"DOCS_PORT={port}"],
            cwd=project,
            env=PROJECT_ENV,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make and properdocs get the signal together
        )
        try:
            deadline = time.monotonic() + 120
            while not _served(base):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"make docs-serve did not serve:\n{(tmp_path / 'serve.log').read_text()}"
                    )
                time.sleep(0.3)
            urls = [base + ("" if page == Path() else f"{page}/") for page in pages]
            seen = visit_all(urls, PAGE, tmp_path / "profile")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(20)

    for url, page in zip(urls, seen, strict=True):
        assert page.failed == [], url
        assert page.errors == [], url
        assert [r for r in page.requested if not r.startswith((base, "data:"))] == [], url
        title, documents = page.value
        assert title, f"{url} has no heading"
        assert documents > len(pages), url
