"""The browser tests' Playwright session closes the database connection its thread opened while it
ran (tests/e2e/conftest.py, playwright_session): one left open kept the test database from being
dropped at the end of a full run on PostgreSQL."""

import threading
import time

import pytest
from django.db import connection

from core.connections import close_thread_connections
from tests.e2e.conftest import playwright_session

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _backend_is_open(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0] > 0


def test_a_connection_opened_under_playwright_is_closed_when_the_session_ends():
    opened: list[int] = []
    errors: list[BaseException] = []

    def run():
        # A thread of its own: the session's browser may already run Playwright in this one.
        try:
            with playwright_session(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                opened.append(cursor.fetchone()[0])
        except BaseException as exc:  # handed to the test
            errors.append(exc)
        finally:
            close_thread_connections()  # what any thread of ours does; it cannot reach Playwright's

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive() and not errors, errors
    [pid] = opened
    deadline = time.monotonic() + 5  # the server ends a closed session's backend a moment later
    while _backend_is_open(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _backend_is_open(pid), "the connection opened under Playwright is still open"
