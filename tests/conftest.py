import os
import shutil

import pytest
from celery import Celery
from celery import _state as celery_state
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.test import APIClient

from core.roles import Role
from tests.factories import UserFactory
from tests.mailbox import Mailbox

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# CI has PostgreSQL and chromium: there a missing one is a failure, never a quiet skip.
STRICT = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason: str) -> None:
    if STRICT:
        pytest.fail(f"{reason} (CI must run this test)")
    pytest.skip(reason)


def broker_client(url: str) -> Celery:
    """A Celery app that only sends tasks to the broker at `url`, for tests that feed a real worker.
    Never the current app: @shared_task resolves through the current app, so one made current here
    would take over every later .delay() of the run (sent to this broker instead of run at once),
    and a task module imported after it would be NotRegistered."""
    return Celery(broker=url, set_as_current=False)


def pytest_runtest_setup(item):
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        skip_or_fail("needs PostgreSQL: set DATABASE_URL=postgres://...")
    if item.get_closest_marker("browser") and not shutil.which(CHROMIUM):
        skip_or_fail(f"needs chromium at {CHROMIUM} (apt-get install chromium)")


def _user_with_role(role: Role | None, **kwargs):
    user = UserFactory(**kwargs)
    if role is not None:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def agent(db):
    return _user_with_role(Role.AGENT, username="agent")


@pytest.fixture
def manager(db):
    return _user_with_role(Role.MANAGER, username="manager")


@pytest.fixture
def admin_user(db):
    return _user_with_role(Role.ADMIN, username="admin", is_staff=True)


@pytest.fixture
def no_role_user(db):
    return _user_with_role(None, username="norole")


@pytest.fixture
def api_client():
    return APIClient()


def _client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def agent_api(agent):
    return _client_for(agent)


@pytest.fixture
def manager_api(manager):
    return _client_for(manager)


@pytest.fixture(autouse=True)
def _empty_cache():
    """Every test starts with an empty cache: the dashboard's charts are cached for minutes, and
    the local-memory cache lives as long as the test process."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _default_language():
    """Every test starts and ends in the default language: a request through LocaleMiddleware (or a
    test's own translation.activate) leaves its language active in the thread, so a test that views
    a page in Chinese would otherwise leave Chinese behind for whichever test runs next."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _project_celery_app_stays_current():
    """Fail the test that leaves another Celery app current (see broker_client), and put the
    project's back, so the tests after it are not hit by what it did."""
    from config.celery import app

    yield
    if celery_state.get_current_app() is not app:
        app.set_current()
        pytest.fail("this test left another Celery app current: create it with broker_client()")


@pytest.fixture
def broker_down(settings, monkeypatch):
    """Tasks go to a Celery broker that is down: a Redis URL on a port nobody listens on."""
    import socket

    from config.celery import app

    with socket.socket() as probe:  # a port that was free a moment ago, so nothing answers on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.TASK_RUNNER = "celery"
    monkeypatch.setattr(app.conf, "task_always_eager", False)
    monkeypatch.setattr(app.conf, "broker_url", f"redis://127.0.0.1:{port}/0")
    # Connection pools made for the test broker (memory://) must not be reused, nor these kept.
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    yield
    if app._pool is not None:
        app._pool.force_close_all()


@pytest.fixture
def mailbox():
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it accepts: tests/mailbox.py."""
    box = Mailbox().start()
    yield box
    box.stop()
