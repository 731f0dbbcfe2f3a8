"""Every staff page: login required, a role required; the dashboard; login lockout; languages."""

import re
import uuid

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from core.models import Job
from tests.factories import CustomerFactory, NoteFactory, OrderFactory, TaskFactory, UserFactory

pytestmark = pytest.mark.django_db

# Not the staff UI: admin has its own login, the API its own auth, accounts/ is the login itself, the
# customer portal its own login (tests/portal/test_access_matrix.py walks it).
SKIPPED_PREFIXES = ("admin/", "api/", "accounts/", "i18n/", "static/", "media/", "portal/", settings.STATIC_URL)


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def _is_public(pattern: URLPattern) -> bool:
    callback = pattern.callback
    view_class = getattr(callback, "view_class", None)
    return getattr(callback, "crm_public", False) or getattr(view_class, "crm_public", False)


def staff_routes():
    """(route, pattern) of every staff page of the project, found in the URL resolver, so pages
    that later apps add are covered without touching this test."""
    routes = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if route.startswith(SKIPPED_PREFIXES) or route.startswith("^") or _is_public(pattern):
            continue
        routes.append((route, pattern))
    return routes


@pytest.fixture
def objects(db):
    customer = CustomerFactory()
    return {
        "customer": customer,
        "task": TaskFactory(customer=customer),
        "note": NoteFactory(customer=customer),
        "order": OrderFactory(customer=customer),
        "job": Job.objects.create(kind="test"),
    }


def _fill(route: str, objects: dict) -> tuple[str, bool]:
    """A concrete path for a route, path parameters filled with a real object's pk: `task_pk` or
    `task_id` takes the task; a bare `pk` the object named by the segment before it ("jobs/<pk>"
    takes the job). Returns the path and whether every parameter found its object."""
    known = True

    def value(match):
        nonlocal known
        converter, name = match.group(1) or "str", match.group(2)
        if converter == "int":
            stem = name.removesuffix("_pk").removesuffix("_id")
            if stem == "pk":
                segments = [s for s in route[: match.start()].split("/") if s and "<" not in s]
                stem = segments[-1].removesuffix("s") if segments else "customer"
            if stem not in objects:
                known = False
            return str(objects.get(stem, objects["customer"]).pk)
        if converter == "uuid":
            return str(uuid.uuid4())
        known = False
        return "x"

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", value, route), known


def test_the_walk_finds_the_staff_pages():
    names = {p.name for _r, p in staff_routes()}
    assert {"home", "list", "detail", "edit", "export", "note_create", "task_create", "task_complete"} <= names


def _request(client, path):
    """GET, or POST where the view takes no GET (a form action)."""
    response = client.get(path)
    return client.post(path) if response.status_code == 405 else response


def test_every_staff_page_redirects_anonymous_visitors_to_login(client, objects):
    login = reverse(settings.LOGIN_URL)
    for route, _pattern in staff_routes():
        path, _known = _fill(route, objects)
        response = _request(client, path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(f"{login}?next="), path


def test_every_staff_page_is_forbidden_without_a_role(client, objects, no_role_user):
    client.force_login(no_role_user)
    for route, _pattern in staff_routes():
        path, _known = _fill(route, objects)
        response = _request(client, path)
        assert response.status_code == 403, path
        assert "Access denied" in response.content.decode(), path
        # A POST is refused as well (405 where a page takes no POST at all).
        assert client.post(path).status_code in (403, 405), path


def test_no_staff_page_fails_for_a_manager(client, objects, manager):
    client.force_login(manager)
    for route, _pattern in staff_routes():
        path, known = _fill(route, objects)
        # 405: a form action that takes only POST; 404 only where the test has no such object.
        assert client.get(path).status_code in ((200, 405) if known else (200, 404, 405)), path


def test_anonymous_htmx_request_reloads_the_page_to_log_in(client):
    response = client.get(reverse("customers:list"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(reverse("login"))


def test_dashboard_shows_key_figures_and_my_open_tasks(client, agent):
    customer = CustomerFactory(first_name="Grace", last_name="Hopper")
    TaskFactory(customer=customer, assignee=agent, title="Send the renewal offer")
    TaskFactory(customer=customer, title="Someone else's task")
    client.force_login(agent)
    response = client.get(reverse("home"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Send the renewal offer" in html and "Someone else&#x27;s task" not in html
    assert 'id="section-charts"' in html
    figures = next(section["panel"]["figures"] for section in response.context["sections"] if section["key"] == "figures")
    assert figures.customers == 1


def test_dashboard_queries_do_not_grow_with_data(client, agent):
    client.force_login(agent)

    def count():
        cache.clear()  # the charts' data are cached: count the queries that compute them each time
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("home")).status_code == 200
        return len(ctx.captured_queries)

    TaskFactory.create_batch(2, assignee=agent)
    few = count()
    TaskFactory.create_batch(8, assignee=agent)
    OrderFactory.create_batch(5)
    assert count() == few


def test_layout_has_nav_user_menu_role_logout_form_and_language_switch(client, manager):
    client.force_login(manager)
    html = client.get(reverse("home")).content.decode()
    assert 'id="main-nav"' in html and reverse("customers:list") in html
    assert "Manager" in html  # the role in the user menu
    assert re.search(rf'<form action="{re.escape(reverse("logout"))}" method="post">', html)
    assert f'action="{reverse("set_language")}"' in html and 'value="zh-hans"' in html
    assert "X-CSRFToken" in html and "htmx" in html
    assert "style=" not in html and "onclick" not in html and "<script>" not in html


def test_language_switch_changes_the_page_language(client, agent):
    client.force_login(agent)
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": reverse("home")})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    html = client.get(reverse("home")).content.decode()
    assert '<html lang="zh-hans">' in html


def test_browser_language_is_honoured(client, agent):
    client.force_login(agent)
    html = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    assert '<html lang="zh-hans">' in html


def test_logout_is_a_post(client, agent):
    client.force_login(agent)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_login_page_and_login(client, agent):
    html = client.get(reverse("login")).content.decode()
    assert 'name="username"' in html and reverse("password_reset") in html
    response = client.post(reverse("login"), {"username": "agent", "password": "correct-horse-battery"})
    assert response.status_code == 302 and response["Location"] == settings.LOGIN_REDIRECT_URL


def test_login_is_locked_after_five_failures(client, agent):
    url = reverse("login")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post(url, {"username": "agent", "password": "wrong"})
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()
    response = client.post(url, {"username": "agent", "password": "wrong"})
    assert response.status_code == 429
    # Locked: even the right password is refused now.
    response = client.post(url, {"username": "agent", "password": "correct-horse-battery"})
    html = response.content.decode()
    assert response.status_code == 429
    assert "Too many failed log-in attempts" in html and "1 hour" in html
    assert "_auth_user_id" not in client.session
    # Another user from the same address is not locked (lock is per username and IP).
    UserFactory(username="other")
    response = client.post(url, {"username": "other", "password": "correct-horse-battery"})
    assert response.status_code == 302


def _fail_logins(client, *, username, times, **headers):
    return [
        client.post(reverse("login"), {"username": username, "password": "wrong"}, **headers).status_code
        for _ in range(times)
    ]


PROXY = {"REMOTE_ADDR": "10.0.0.2"}  # every request arrives from our proxy's address


@override_settings(CLIENT_IP_PROXY_COUNT=1)
def test_behind_a_proxy_the_lockout_keys_on_the_forwarded_client_address(client, agent):
    attacker = {**PROXY, "HTTP_X_FORWARDED_FOR": "forged, 203.0.113.5"}  # the proxy appended the last entry
    assert _fail_logins(client, username="agent", times=settings.AXES_FAILURE_LIMIT, **attacker)[-1] == 429
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == ["203.0.113.5"]
    # The same client cannot dodge it with another forged entry ...
    again = {**PROXY, "HTTP_X_FORWARDED_FOR": "other, 203.0.113.5"}
    assert client.post(reverse("login"), {"username": "agent", "password": "correct-horse-battery"}, **again).status_code == 429
    # ... and the agent, from another address behind the same proxy, still logs in.
    colleague = {**PROXY, "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    response = client.post(reverse("login"), {"username": "agent", "password": "correct-horse-battery"}, **colleague)
    assert response.status_code == 302


@override_settings(CLIENT_IP_PROXY_COUNT=0)
def test_without_a_proxy_the_lockout_keys_on_the_connection_and_ignores_the_header(client, agent):
    statuses = [
        client.post(
            reverse("login"), {"username": "agent", "password": "wrong"}, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=f"10.9.0.{i}"
        ).status_code
        for i in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses[-1] == 429  # a new X-Forwarded-For each time did not spread the failures
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.9"}
    response = client.post(reverse("login"), {"username": "agent", "password": "correct-horse-battery"}, REMOTE_ADDR="203.0.113.10")
    assert response.status_code == 302


def test_password_reset_sends_a_templated_email(client, agent, mailoutbox):
    response = client.post(reverse("password_reset"), {"email": agent.email})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert "Reset your password" in message.subject and "\n" not in message.subject
    assert "/accounts/reset/" in message.body
    assert client.get(response["Location"]).status_code == 200


def test_password_reset_confirm_page_renders(client, agent, mailoutbox):
    client.post(reverse("password_reset"), {"email": agent.email})
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+)", mailoutbox[0].body).group(1)
    response = client.get(link, follow=True)
    assert response.status_code == 200 and 'name="new_password1"' in response.content.decode()


def test_friendly_404(client, agent):
    client.force_login(agent)
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and "Page not found" in response.content.decode()
