"""A real server on a loopback port and a real Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from sqlalchemy.orm import Session, sessionmaker
from tests.conftest import test_settings
from tests.databases import pristine_sqlite_url

from microlend.api.app import create_app
from microlend.core.db import make_engine, make_session_factory
from microlend.core.uow import UnitOfWork

CHROMIUM = os.environ.get("MICROLEND_CHROMIUM", "/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    session_factory: sessionmaker[Session]

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The whole app on a fresh SQLite file (a copy of the Alembic-migrated template), served by uvicorn in a
    thread."""
    url = pristine_sqlite_url(tmp_path_factory.mktemp("e2e") / "e2e.db")
    engine = make_engine(url)
    # the whole browser session signs in from one address: the per-address limit is the throttle tests' subject
    app = create_app(test_settings(url).model_copy(update={"login_client_max_failures": 1_000_000}), engine=engine)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", make_session_factory(engine))
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        if os.environ.get("MICROLEND_REQUIRE_BROWSER"):
            pytest.fail(f"Chromium is required but not found at {CHROMIUM}")
        pytest.skip("Chromium is not installed (install Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
        ])
        yield b
        b.close()


def csp_violations(context: Any) -> list[str]:
    """What the browser refuses under the pages' Content-Security-Policy, as it reports it on the console:
    a page whose script, style or frame the policy blocks is a broken page."""
    seen: list[str] = []
    context.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    return seen


@pytest.fixture
def phone_page(browser: Any) -> Iterator[Any]:
    """A phone-sized page (375 x 740, touch), in Chinese by default like most of our users."""
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True,
                                  locale="zh-CN")
    refused = csp_violations(context)
    page = context.new_page()
    yield page
    context.close()
    assert not refused
