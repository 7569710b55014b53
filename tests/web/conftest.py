"""The web apps in a real browser: Debian's Chromium driven by Playwright (Python).

Chromium comes from ``./run player-setup`` (Debian's package), never from Playwright's own
download. In CI (CI=true) a missing Chromium fails the run; on a laptop the browser tests skip.

Fixtures:
- ``web`` — the API on a loopback port (uvicorn in a thread, the real app) for the browser;
- ``browser`` — one headless Chromium per test module;
- ``page_for(locale="en", width=1280)`` — a fresh browser context (own storage: one device)
  with that Accept-Language and viewport, its console errors collected and failing the test;
- Wait with Playwright's locators and ``expect`` (the apps' Content-Security-Policy forbids
  eval, so ``wait_for_function`` with a string fails);
- ``screenshot(page, name)`` — writes ``<name>.png`` under ``$POCKETCINEMA_SCREENSHOT_DIR``
  (default ``artifacts/screenshots``; CI prints the folder at the end of its run).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.playback.conftest import LiveServer, running_api

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(
    os.environ.get("POCKETCINEMA_SCREENSHOT_DIR", ROOT / "artifacts" / "screenshots")
)
# The flags Chromium needs on a machine with no route to Google's services and no sandbox
# for root: without the background-networking ones it floods a closed network with retries.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        message = "chromium is missing (run ./run player-setup)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def web(db: None, configure: Any) -> Iterator[LiveServer]:
    with running_api(configure) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield instance
        finally:
            instance.close()


PageFactory = Callable[..., Any]


@pytest.fixture
def page_for(browser: Any) -> Iterator[PageFactory]:
    contexts: list[Any] = []
    errors: list[str] = []

    def make(locale: str = "en", width: int = 1280, height: int = 900) -> Any:
        context = browser.new_context(
            locale=locale,
            extra_http_headers={"Accept-Language": locale},
            viewport={"width": width, "height": height},
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        return page

    yield make
    for context in contexts:
        context.close()
    # A page that throws or logs an error (a failed request included) fails its journey,
    # except for the expected refusals a test names in ``allowed_console_errors``.
    unexpected = [e for e in errors if not any(a in e for a in ALLOWED_CONSOLE_ERRORS)]
    assert not unexpected, unexpected


# Chromium logs every non-2xx fetch as a console error; journeys that provoke a refusal on
# purpose (a wrong password, a 404 asset) see it logged.
ALLOWED_CONSOLE_ERRORS: tuple[str, ...] = ("Failed to load resource",)


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    def take(page: Any, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
