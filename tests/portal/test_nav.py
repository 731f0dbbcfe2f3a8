"""The portal's navigation marks the right link on every portal page, found by walking the portal's
URLconf (test_access_matrix.portal_routes): a page an app adds without saying which link it belongs
to fails here until NAV_OF says it. A referral reward's page (under /portal/rewards/) used to mark
"Overview", the link whose URL (/portal/) prefixes every portal page."""

import re

import pytest
from django.urls import resolve, reverse

from portal.registry import portal_pages
from tests.portal.conftest import portal_login_as
from tests.portal.test_access_matrix import PARAM, _objects_of, _path, portal_routes

pytestmark = pytest.mark.django_db

# View name -> the key of the navigation link current on that page (None: POST only, no page).
NAV_OF = {
    "portal:home": "home",
    "portal:preferences": "preferences",
    "portal:message_list": "messages",
    "portal:message_detail": "messages",
    "portal:loyalty:points": "points",
    "portal:loyalty:rewards": "rewards",
    "portal:loyalty:reward_redeem": None,
    "portal:referrals:overview": "referrals",
    "portal:referral_rewards:detail": "referrals",
    "portal:referral_rewards:claim": None,
}
CURRENT_LINK = re.compile(r'<a href="([^"]+)" aria-current="page">')


def test_every_portal_page_says_which_link_it_marks():
    view_names = {resolve("/" + PARAM.sub("1", route)).view_name for route, _p in portal_routes()}
    assert view_names == set(NAV_OF), "add the new portal page to NAV_OF (and its link's `current`)"


def test_each_portal_page_marks_its_own_link_and_only_that(customer_a, client):
    portal_login_as(client, customer_a)
    url_of = {page.key: reverse(page.url_name) for page in portal_pages()}
    checked = 0
    for route, _pattern in portal_routes():
        path = _path(route, _objects_of(customer_a, route))
        expected = NAV_OF[resolve(path).view_name]
        response = client.get(path)
        if expected is None:
            assert response.status_code == 405, path
            continue
        assert response.status_code == 200, path
        assert CURRENT_LINK.findall(response.content.decode()) == [url_of[expected]], path
        checked += 1
    assert checked >= 8
