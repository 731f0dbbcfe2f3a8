import os
import shutil

import pytest
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


@pytest.fixture
def mailbox():
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it accepts: tests/mailbox.py."""
    box = Mailbox().start()
    yield box
    box.stop()
