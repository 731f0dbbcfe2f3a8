"""Every portal URL, found in the portal's URLconf (so pages other apps mount are covered the day
they are added): anonymous visitors and staff go to the portal login; customer A gets 200 on their
own objects and 404 (never 403) on customer B's.

A URL parameter names its object `<model>_pk` (`message_pk`); OBJECT_FACTORIES says how to make one
for a customer. A new portal page with a parameter not listed here fails the walk until it is."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from messaging.models import Message
from tests.messaging.factories import MessageTemplateFactory
from tests.portal.conftest import portal_login_as

pytestmark = pytest.mark.django_db


def _sent_message(customer):
    from django.utils import timezone

    template = MessageTemplateFactory()
    now = timezone.now()
    return Message.objects.create(
        key=f"matrix-{customer.pk}-{template.pk}",
        purpose="transactional",
        template=template,
        customer=customer,
        to_email=customer.email,
        language="en",
        state=Message.State.SENT,
        created_at=now,
        sent_at=now,
    )


def _referral_reward(customer):
    from tests.referrals.ui_helpers import make_reward

    return make_reward(customer, kind="cash")


# URL parameter -> function(customer) making an object of that customer's.
OBJECT_FACTORIES = {
    "message_pk": _sent_message,
    "reward_pk": _referral_reward,
}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def portal_routes():
    """(route, pattern) of every portal URL that needs a customer, from the resolver."""
    portal = next(p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and p.namespace == "portal")
    routes = []
    for route, pattern in _walk(portal.url_patterns, "portal/"):
        if getattr(pattern.callback, "portal_public", False):
            continue
        routes.append((route, pattern))
    return routes


PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def _path(route, objects):
    return "/" + PARAM.sub(lambda m: str(objects[m.group(2)].pk), route)


def _objects_of(customer, route):
    return {name: OBJECT_FACTORIES[name](customer) for _conv, name in PARAM.findall(route)}


def _request(client, path):
    response = client.get(path)
    return client.post(path) if response.status_code == 405 else response


def test_every_portal_view_needs_a_customer_or_says_it_is_public():
    for route, pattern in portal_routes():
        assert getattr(pattern.callback, "portal_customer_required", False), (
            f"/{route}: wrap the view in portal.access.customer_required, or mark it portal_public"
        )


def test_the_walk_finds_the_portal_pages():
    names = {pattern.name for _route, pattern in portal_routes()}
    assert {"home", "preferences", "message_list", "message_detail"} <= names
    assert reverse("portal:login") not in {"/" + r for r, _p in portal_routes()}


def test_every_url_parameter_has_an_object_factory():
    missing = {name for route, _p in portal_routes() for _c, name in PARAM.findall(route)} - set(OBJECT_FACTORIES)
    assert not missing, f"add factories to OBJECT_FACTORIES for: {sorted(missing)}"


def test_anonymous_visitors_and_staff_go_to_the_portal_login(client, manager, customer_b):
    login = reverse("portal:login")
    for who in ("anonymous", "staff"):
        if who == "staff":
            client.force_login(manager)
        for route, _pattern in portal_routes():
            path = _path(route, _objects_of(customer_b, route))
            response = _request(client, path)
            assert response.status_code == 302 and response["Location"] == login, (who, path)


def test_a_customer_sees_their_own_objects(customer_a, client):
    portal_login_as(client, customer_a)
    for route, _pattern in portal_routes():
        path = _path(route, _objects_of(customer_a, route))
        assert client.get(path).status_code in (200, 405), path


def test_another_customers_object_is_a_404_never_a_403(customer_a, customer_b, client):
    portal_login_as(client, customer_a)
    routes = [(route, pattern) for route, pattern in portal_routes() if PARAM.search(route)]
    assert routes, "no portal URL takes an object id: the matrix tests nothing"
    for route, _pattern in routes:
        path = _path(route, _objects_of(customer_b, route))
        assert client.get(path).status_code == 404, path
        assert client.post(path).status_code in (404, 405), path
        # An id that does not exist at all answers the same.
        missing = "/" + PARAM.sub("999999999", route)
        assert client.get(missing).status_code == 404, missing


def test_the_404_of_a_portal_page_keeps_the_portal_layout(customer_a, customer_b, client, settings):
    settings.DEBUG = False
    portal_login_as(client, customer_a)
    response = client.get(reverse("portal:message_detail", args=[_sent_message(customer_b).pk]))
    page = response.content.decode()
    assert response.status_code == 404
    assert "portal/portal.css" in page and 'href="/portal/"' in page
    assert "Page not found" in page and customer_b.email not in page


@pytest.fixture
def mounted_page():
    """Mount tests/portal/mounted_urls.py under /portal/test-mount/ as an app would, and unmount it."""
    import importlib

    from django.urls import clear_url_caches

    import config.urls
    import portal.urls
    from portal.registry import _urls, register_portal_urls

    def rebuild():
        importlib.reload(portal.urls)
        importlib.reload(config.urls)
        clear_url_caches()

    register_portal_urls(prefix="test-mount/", urlconf="tests.portal.mounted_urls")
    rebuild()
    yield
    _urls.pop("test-mount/")
    rebuild()


def test_a_page_another_app_mounts_joins_the_walk(mounted_page, customer_a, customer_b, client):
    routes = dict(portal_routes())
    assert "portal/test-mount/messages/<int:message_pk>/" in routes
    assert reverse("portal:mounted:mounted_message", args=[1]) == "/portal/test-mount/messages/1/"
    test_another_customers_object_is_a_404_never_a_403(customer_a, customer_b, client)
    own = _sent_message(customer_a)
    assert client.get(f"/portal/test-mount/messages/{own.pk}/").status_code == 200
