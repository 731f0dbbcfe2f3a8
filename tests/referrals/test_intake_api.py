"""The intake API: answers and their shapes, the share link, constant query counts, and the
attribution race (real threads, PostgreSQL)."""

import pytest
from django.db import connection

from referrals.models import Referral, ReferralEvent
from referrals.services.codes import referral_code_for
from referrals.services.intake import ReferralRefused, referral_intake
from tests.conftest import skip_or_fail
from tests.factories import CustomerFactory, OrderFactory
from tests.races import race

pytestmark = pytest.mark.django_db
URL = "/api/v1/referrals/"


def _pair():
    referrer = CustomerFactory(first_name="Ann", last_name="Archer", email="ann@example.org")
    referee = CustomerFactory(first_name="Zed", last_name="Quinn", email="zq@mailbox.net")
    return referrer, referee, referral_code_for(customer_id=referrer.pk)


def test_create_answers_201_with_the_verdict(manager_api):
    _referrer, referee, code = _pair()
    response = manager_api.post(URL, {"code": code.code.lower(), "referee": referee.pk, "ip": "10.1.2.3",
                                      "user_agent": "UA", "device_id": "d"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "pending" and body["fraud"] == {"verdict": "ok", "risk_score": 0, "signals": []}
    assert Referral.objects.get(pk=body["id"]).ip == "10.1.2.3"


def test_auto_reject_is_422_with_the_reason_and_the_stored_referral(manager_api):
    _referrer, referee, code = _pair()
    OrderFactory(customer=referee, status="paid")
    response = manager_api.post(URL, {"code": code.code, "referee": referee.pk}, format="json")
    assert response.status_code == 422
    body = response.json()
    assert body["state"] == "rejected" and body["referee"] and body["fraud"]["verdict"] == "rejected"
    assert body["fraud"]["signals"][0]["code"] == "existing_customer"
    assert Referral.objects.get(pk=body["id"]).state == "rejected"
    assert ReferralEvent.objects.get(referral_id=body["id"]).to_state == "rejected"


def test_self_referral_is_422_without_an_id(manager_api):
    referrer, _referee, code = _pair()
    response = manager_api.post(URL, {"code": code.code, "referee": referrer.pk}, format="json")
    assert response.status_code == 422 and response.json()["id"] is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"referee": 1}, "code"),
        ({"code": "X"}, "referee"),
        ({"code": "NOPE", "referee": "abc"}, "referee"),
        ({"code": "NOPE", "referee": 1, "ip": "not-an-ip"}, "ip"),
        ({"code": "NOPE", "referee": 10**30}, "referee"),
    ],
)
def test_bad_input_is_400_field_errors(manager_api, payload, field):
    response = manager_api.post(URL, payload, format="json")
    assert response.status_code == 400 and field in response.json()


def test_unknown_code_and_unknown_referee_are_400(manager_api):
    _referrer, referee, code = _pair()
    assert "code" in manager_api.post(URL, {"code": "ZZZZZZZZZZZZ", "referee": referee.pk}, format="json").json()
    response = manager_api.post(URL, {"code": code.code, "referee": 999999}, format="json")
    assert response.status_code == 400 and "referee" in response.json()


def test_writes_need_a_manager(agent_api):
    _referrer, referee, code = _pair()
    assert agent_api.post(URL, {"code": code.code, "referee": referee.pk}, format="json").status_code == 403


def test_referral_code_endpoint_creates_on_first_use_with_an_absolute_link(agent_api):
    customer = CustomerFactory()
    first = agent_api.get(f"/api/v1/customers/{customer.pk}/referral-code/").json()
    again = agent_api.get(f"/api/v1/customers/{customer.pk}/referral-code/").json()
    assert first == again and first["link"] == f"http://testserver/r/{first['code']}/"
    assert agent_api.get("/api/v1/customers/999999/referral-code/").status_code == 404


def test_the_create_path_runs_a_constant_number_of_queries(django_assert_max_num_queries):
    referrer = CustomerFactory(first_name="Ann", last_name="Archer", email="ann@example.org", phone="123")
    code = referral_code_for(customer_id=referrer.pk)

    referees = [CustomerFactory(first_name=f"N{i}", last_name=f"M{i}", email=f"x{i}q@d{i}.example") for i in range(31)]

    def one(i):
        return referral_intake(code=code.code, referee_id=referees[i].pk, source="api", actor="api", ip="10.0.0.1",
                               user_agent="UA", device_id="dev", phone="555", payment_fingerprint="p", address="a")

    with django_assert_max_num_queries(15) as first:
        one(0)
    for i in range(1, 30):
        one(i)
    with django_assert_max_num_queries(len(first.captured_queries)):
        one(30)


@pytest.mark.django_db(transaction=True)
def test_two_referrers_at_once_one_wins_the_other_is_already_referred():
    if connection.vendor != "postgresql":
        skip_or_fail("the attribution race needs PostgreSQL's concurrent transactions")
    referee = CustomerFactory(first_name="Zed", last_name="Quinn", email="zq@mailbox.net")
    codes = [
        referral_code_for(customer_id=CustomerFactory(first_name=f"R{i}", last_name="S", email=f"r{i}@e{i}.example").pk).code
        for i in range(6)
    ]

    def attempt(code):
        def run():
            try:
                return referral_intake(code=code, referee_id=referee.pk, source="api", actor="api").referral.state
            except ReferralRefused as refused:
                return ("refused", refused.assessment.rejecting[0].code, refused.referral.state)
        return run

    results, errors = race(*[attempt(code) for code in codes])
    assert not errors
    assert sum(result == "pending" for result in results) == 1
    assert sorted(r for r in results if r != "pending") == [("refused", "already_referred", "rejected")] * 5
    assert Referral.objects.filter(referee=referee).exclude(state="rejected").count() == 1
    assert Referral.objects.filter(referee=referee, state="rejected").count() == 5
