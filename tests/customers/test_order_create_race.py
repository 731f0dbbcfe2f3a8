"""Defect 4: twenty identical single-order (or event) POSTs at once. Exactly one may answer 201: the
answer comes from the INSERT itself, not from a lookup made before it."""

import datetime as dt

import pytest
from rest_framework.test import APIClient

from customers.models import ActivityEvent, Order, OrderChange
from tests.races import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
RACERS = 20


def post_from_threads(user, path: str, payload: dict) -> list[int]:
    def post():
        client = APIClient()
        client.force_authenticate(user)
        return client.post(path, payload, format="json").status_code

    results, errors = race(*[post] * RACERS)
    assert errors == []
    return results


def test_twenty_identical_order_posts_answer_created_once(manager):
    payload = {"external_id": "RACE-1", "customer_external_id": "RACE-C", "ordered_at": "2025-05-01T09:00:00Z",
               "amount": "10.00", "status": "paid"}
    codes = post_from_threads(manager, "/api/v1/orders/", payload)
    assert sorted(codes) == [200] * (RACERS - 1) + [201]
    assert Order.objects.filter(external_id="RACE-1").count() == 1
    assert OrderChange.objects.count() == 1  # created once, then nothing changed


def test_twenty_identical_event_posts_answer_created_once(manager):
    payload = {"customer_external_id": "RACE-C", "name": "login", "occurred_at": "2025-05-01T09:00:00Z"}
    codes = post_from_threads(manager, "/api/v1/events/", payload)
    assert sorted(codes) == [200] * (RACERS - 1) + [201]
    assert ActivityEvent.objects.filter(occurred_at=dt.datetime(2025, 5, 1, 9, tzinfo=dt.UTC)).count() == 1
