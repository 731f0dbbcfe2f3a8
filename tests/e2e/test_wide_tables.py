"""The runs history and the customer list (with its value columns) fit a 1280 px wide window:
the runs page cut off its last columns there, and the list gained four value columns and health."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from lifecycle.models import ClvRun, CustomerValue
from lifecycle.models_health import CustomerHealth
from tests.factories import CustomerFactory, TagFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OVERFLOW = "selector => { const box = document.querySelector(selector); return box.scrollWidth - box.clientWidth; }"


def test_runs_and_customer_list_fit_1280_px(page, login, manager, screenshot):
    now = timezone.now()
    ClvRun.objects.create(as_of=dt.date(2026, 6, 29), status="succeeded", n_customers=2000, n_purchasers=1400,
                          started_at=now, finished_at=now, created_by=manager)
    run = ClvRun.objects.create(as_of=dt.date(2026, 6, 30), status="not_converged", n_customers=2000, n_purchasers=1400,
                                bgnbd_converged=False, gg_converged=True, started_at=now, finished_at=now, trigger="command")
    tag = TagFactory(name="vip")
    for i in range(8):
        customer = CustomerFactory(email=f"someone.with.a.long.address{i}@mail.example.com", owner=manager)
        customer.tags.add(tag)
        CustomerValue.objects.create(customer=customer, run=run, computed_at=now, historic_value=Decimal("12345.67"),
                                     predicted_clv=Decimal("9999.10"), recency=3.0, T=10.0, rfm_segment="potential_loyalists")
        CustomerHealth.objects.create(customer=customer, score=100, activity_points=40, breadth_points=30, service_points=20,
                                      feedback_points=10, churn_risk=0, changed_at=now)
    login(manager)
    assert page.viewport_size["width"] == 1280
    page.goto("/value/runs/")
    assert page.evaluate(OVERFLOW, "#run-history") <= 1
    screenshot("value-runs-1280")
    page.goto("/customers/")
    assert page.evaluate(OVERFLOW, "#customer-table .table-scroll") <= 1
    screenshot("customer-list-values-1280")
