"""The loyalty API: summary, ledger with cursor pages, adjustments (Manager), redemptions with
idempotency keys and 409s, permissions."""

import pytest
from django.db import connection
from django.urls import reverse

from loyalty.models import LedgerEntry, Reward, Voucher
from tests.factories import CustomerFactory
from tests.loyalty.helpers import earn_spendable

pytestmark = pytest.mark.django_db


# Queries of one points redemption through the API (see the test below): the savepoint, the
# account locked by its customer, the key check and the spendable lots in one query, then on
# PostgreSQL the entry, the lot, the allocation and the balance in one statement (a statement each
# on SQLite, which has no data-modifying CTEs), and the savepoint's release.
def redeem_queries() -> int:
    return 5 if connection.vendor == "postgresql" else 8


def url(name, customer):
    return reverse(f"api-loyalty-{name}", kwargs={"customer_id": customer.pk})


def test_account_before_and_after_enrolment(agent_api):
    customer = CustomerFactory()
    body = agent_api.get(url("account", customer)).json()
    assert body["enrolled"] is False and body["balance"] == 0
    earn_spendable(customer, 70, expires_in_days=30)
    body = agent_api.get(url("account", customer)).json()
    assert (body["enrolled"], body["balance"], body["pending"], body["spendable"]) == (True, 70, 0, 70)
    assert body["next_expiry"] is not None and body["next_expiry_points"] == 70
    assert agent_api.get("/api/v1/loyalty/accounts/999999999/").status_code == 404


def test_transactions_are_signed_and_cursor_paginated(agent_api, manager_api):
    customer = CustomerFactory()
    earn_spendable(customer, 50)
    manager_api.post(url("redeem", customer), {"points": 20, "idempotency_key": "r"}, format="json")
    page = agent_api.get(url("transactions", customer), {"page_size": 1}).json()
    assert [e["points"] for e in page["results"]] == [-20]
    following = agent_api.get(page["next"]).json()
    assert [e["points"] for e in following["results"]] == [50]
    assert agent_api.get(url("transactions", customer), {"kind": "earn"}).json()["results"][0]["points"] == 50


def test_adjust_needs_manager_and_replays_by_key(agent_api, manager_api):
    customer = CustomerFactory()
    body = {"points": 25, "reason": "Goodwill", "idempotency_key": "adj-1"}
    assert agent_api.post(url("adjust", customer), body, format="json").status_code == 403
    first = manager_api.post(url("adjust", customer), body, format="json")
    assert first.status_code == 201 and first.json()["balance"] == 25
    again = manager_api.post(url("adjust", customer), body, format="json")
    assert again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert LedgerEntry.objects.count() == 1
    short = manager_api.post(url("adjust", customer), {**body, "points": -26, "idempotency_key": "adj-2"}, format="json")
    assert short.status_code == 409 and short.json()["code"] == "insufficient_points"


@pytest.mark.parametrize(
    "body",
    [
        {"points": 0, "reason": "x", "idempotency_key": "k"},
        {"points": "ten", "reason": "x", "idempotency_key": "k"},
        {"points": 5, "reason": "", "idempotency_key": "k"},
        {"points": 5, "reason": "x"},
        {"points": 10**12, "reason": "x", "idempotency_key": "k"},
    ],
)
def test_adjust_bad_input_is_400_with_field_errors(manager_api, body):
    response = manager_api.post(url("adjust", CustomerFactory()), body, format="json")
    assert response.status_code == 400
    assert set(response.json()) <= {"points", "reason", "idempotency_key"}


def test_redeem_points_201_409_and_replay(agent_api):
    customer = CustomerFactory()
    earn_spendable(customer, 30)
    first = agent_api.post(url("redeem", customer), {"points": 20, "idempotency_key": "once"}, format="json")
    assert first.status_code == 201 and first.json()["balance"] == 10
    replay = agent_api.post(url("redeem", customer), {"points": 20, "idempotency_key": "once"}, format="json")
    assert replay.status_code == 201 and replay.json() == first.json()
    short = agent_api.post(url("redeem", customer), {"points": 20, "idempotency_key": "twice"}, format="json")
    assert short.status_code == 409
    assert short.json() == {"code": "insufficient_points", "available": 10,
                            "detail": "Not enough points: 10 available, 20 needed."}
    assert LedgerEntry.objects.filter(kind="redeem").count() == 1


def test_redeem_reward_gives_voucher_and_checks_input(agent_api):
    customer = CustomerFactory()
    earn_spendable(customer, 30)
    reward = Reward.objects.create(name="Tote bag", cost=25, stock=1)
    response = agent_api.post(url("redeem", customer), {"reward": reward.pk, "idempotency_key": "bag"}, format="json")
    assert response.status_code == 201
    assert response.json()["voucher"]["code"] == Voucher.objects.get().code
    both = agent_api.post(url("redeem", customer), {"reward": reward.pk, "points": 3, "idempotency_key": "z"}, format="json")
    assert both.status_code == 400
    gone = agent_api.post(url("redeem", customer), {"reward": 10**15, "idempotency_key": "y"}, format="json")
    assert gone.status_code == 400 and "reward" in gone.json()


def test_anonymous_and_no_role_refused(api_client, no_role_user):
    customer = CustomerFactory()
    assert api_client.get(url("account", customer)).status_code == 401
    api_client.force_authenticate(no_role_user)
    assert api_client.get(url("account", customer)).status_code == 403


def test_redeem_points_runs_a_fixed_number_of_queries(agent_api, django_assert_num_queries):
    # The request path of the busiest write (the programme is not read by a debit). Fixed whatever
    # the ledger's size. The user's role is cached on the forced user by the warm-up request.
    customer = CustomerFactory()
    earn_spendable(customer, 30)
    agent_api.post(url("redeem", customer), {"points": 1, "idempotency_key": "warm"}, format="json")
    with django_assert_num_queries(redeem_queries()):
        response = agent_api.post(url("redeem", customer), {"points": 5, "idempotency_key": "counted"}, format="json")
    assert response.status_code == 201 and response.json()["balance"] == 24
    missing = reverse("api-loyalty-redeem", kwargs={"customer_id": 10**12})
    assert agent_api.post(missing, {"points": 5, "idempotency_key": "k"}, format="json").status_code == 404
