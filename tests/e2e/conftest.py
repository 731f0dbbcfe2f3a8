"""Browser tests: Playwright's sync API drives Debian's chromium against pytest-django's live server.

Playwright's sync API runs an asyncio event loop in this thread, and Django refuses ORM calls from a
thread with a running loop unless told this is safe (it is: the loop only waits for the browser).

Test modules mark themselves `browser` and `django_db(transaction=True)`: the live server needs
committed data. The flush after each such test emits post_migrate, which puts the role groups back
(core.apps.ensure_staff_roles).

Each test gets a fresh browser context; every console message is collected, and the test fails if
the page reported a Content-Security-Policy violation or a JavaScript error. Screenshots go to
test-artifacts/screenshots/ (kept by CI as artefacts, ignored by git)."""

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.connections import close_thread_connections
from tests.conftest import CHROMIUM

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "correct-horse-battery"  # tests/factories.py UserFactory's password
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# How chromium words a CSP violation on the console ("Refused to load ...", "Refused to apply inline style ...").
CSP_VIOLATION = re.compile(r"Content Security Policy|Refused to (load|apply|execute|connect|frame)", re.IGNORECASE)
TIMEOUT_MS = 10_000


@contextmanager
def playwright_session() -> Iterator:
    """Playwright's sync API, started in this thread until the block ends.

    While it runs, the thread's code runs in another context (contextvars), so Django's connection
    handler (asgiref Local, context-local) gives it a DatabaseWrapper of its own, not the one
    pytest-django made the test database with. That one is closed here, before the API stops and
    the thread is back in its first context: left open, it was still there when pytest-django
    dropped the test database at the end of the run ("1 other session using the database")."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        yield playwright
    finally:
        close_thread_connections()
        playwright.stop()


@pytest.fixture(scope="session")
def browser():
    with playwright_session() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class ConsoleLog:
    """The browser's console messages and page errors of one test."""

    def __init__(self):
        self.messages: list[str] = []
        self.page_errors: list[str] = []

    def on_console(self, message) -> None:
        self.messages.append(f"{message.type}: {message.text} [{message.location}]")

    def on_page_error(self, error) -> None:
        self.page_errors.append(str(error))

    @property
    def csp_violations(self) -> list[str]:
        return [m for m in self.messages if CSP_VIOLATION.search(m)]


@pytest.fixture
def console():
    return ConsoleLog()


@pytest.fixture
def page(browser, live_server, console, settings, tmp_path):
    # Uploaded import files go to a temporary media root, not the working tree.
    settings.MEDIA_ROOT = tmp_path / "media"
    context = browser.new_context(base_url=live_server.url, locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    yield page
    context.close()
    assert not console.csp_violations, "CSP violations:\n" + "\n".join(console.csp_violations)
    assert not console.page_errors, "JavaScript errors:\n" + "\n".join(console.page_errors)


@pytest.fixture
def smtp(mailbox, settings, live_server):
    """The test mailbox (a real SMTP server on loopback) as the outbox's server, and links in the
    e-mails pointing at the live server."""
    mailbox.settings(settings)
    settings.SITE_URL = live_server.url
    return mailbox


@pytest.fixture
def screenshot(page):
    """screenshot("name") saves test-artifacts/screenshots/<name>.png of the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        # caret="initial": hiding the caret leaves empty style="" attributes on inputs, which htmx then
        # copies while settling a swap, and the CSP (rightly) blocks that as an inline style.
        page.screenshot(path=str(path), full_page=True, caret="initial")
        return path

    return take


@pytest.fixture
def login(page):
    """login(user) signs in through the login form and waits for the first page after it, and for
    what that page loads after itself (the dashboard's charts, by htmx): on SQLite in-memory the live
    server shares the test's one connection, so a request still running when the test next queries
    the database would use it from two threads at once (it hung)."""

    def sign_in(user, password: str = PASSWORD):
        page.goto("/accounts/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", password)
        page.click("main form [type=submit]")
        page.wait_for_load_state("networkidle")
        assert "/accounts/login/" not in page.url, "login failed"
        return page

    return sign_in


_REQUEST_LOCK = threading.Lock()


@pytest.fixture
def server_lock(live_server):
    """A lock the live server holds while it handles a request.

    Hold it while the test itself writes to the database as a background worker would: on SQLite
    in-memory the server threads share the test's one connection, which must not be used by two
    threads at once (on PostgreSQL it only serialises, which is harmless)."""
    httpd = live_server.thread.httpd
    app = httpd.get_app()
    if not getattr(app, "crm_locked", False):

        def locked_app(environ, start_response):
            with _REQUEST_LOCK:
                response = app(environ, start_response)
                try:
                    body = list(response)
                finally:
                    if hasattr(response, "close"):
                        response.close()
            return body

        locked_app.crm_locked = True
        httpd.set_app(locked_app)
    return _REQUEST_LOCK

