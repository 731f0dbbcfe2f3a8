import datetime as dt
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from lifecycle.services.clv_runs import clv_run_create, clv_run_execute
from tests.factories import ChannelSpendFactory, CustomerFactory
from tests.lifecycle.clv_orders import AS_OF, seed_histories

pytestmark = pytest.mark.django_db

VALUE_FIELDS = {
    "customer_id", "run_id", "orders_count", "aov", "purchase_frequency", "lifespan_years", "formula_clv",
    "historic_value", "revenue", "refunds", "frequency", "recency", "T", "time_unit", "monetary_value", "p_alive",
    "expected_purchases", "expected_order_value", "predicted_clv", "rfm", "computed_at",
}


@pytest.fixture
def computed():
    customers = seed_histories(120)
    ChannelSpendFactory(channel=customers[0].channel, month=dt.date(2025, 1, 1), amount=Decimal("5000.00"))
    run = clv_run_execute(run_id=clv_run_create(as_of=AS_OF).pk)
    return run, customers


def test_customer_value(agent_api, computed):
    run, customers = computed
    customer = next(c for c in customers if c.orders.count() > 2)
    response = agent_api.get(f"/api/v1/customers/{customer.pk}/value/")
    assert response.status_code == 200
    data = response.json()
    assert set(data) == VALUE_FIELDS
    assert data["expected_purchases"]["horizon_months"] == 12 and data["expected_purchases"]["count"] > 0
    assert set(data["rfm"]) == {"r", "f", "m", "segment", "segment_label"}
    assert 1 <= data["rfm"]["r"] <= 5
    assert Decimal(data["historic_value"]) == sum(o.amount for o in customer.orders.all())
    assert data["time_unit"] == "week" and data["run_id"] == run.pk
    assert 0 <= data["p_alive"] <= 1 and Decimal(data["predicted_clv"]) > 0


def test_customer_value_is_404_before_a_run(agent_api):
    assert agent_api.get(f"/api/v1/customers/{CustomerFactory().pk}/value/").status_code == 404


def test_model(agent_api, computed):
    run, _ = computed
    data = agent_api.get("/api/v1/clv/model/").json()
    assert data["as_of"] == AS_OF.isoformat() and data["time_unit"] == "week"
    assert data["n_customers"] == 120 and data["converged"] is True
    assert data["bgnbd"] == {"r": run.bgnbd_r, "alpha": run.bgnbd_alpha, "a": run.bgnbd_a, "b": run.bgnbd_b, "converged": True}
    assert set(data["gamma_gamma"]) == {"p", "q", "v", "converged"}
    assert data["log_likelihood"]["bgnbd"] < 0 and data["finished_at"]


def test_model_is_404_without_a_finished_run(agent_api):
    clv_run_create(as_of=AS_OF)
    assert agent_api.get("/api/v1/clv/model/").status_code == 404


def test_channels(agent_api, computed):
    data = agent_api.get("/api/v1/clv/channels/").json()
    assert data["ltv_basis"] == "formula_clv"
    search = next(c for c in data["channels"] if c["code"] == "search")
    january = next(m for m in search["monthly"] if m["month"] == "2025-01-01")
    assert Decimal(search["cac"]) == Decimal(january["cac"]) == (Decimal("5000.00") / january["acquired"]).quantize(Decimal("0.01"))
    assert search["flagged"] == (Decimal(search["ltv_cac"]) < 3)
    assert {"cac", "ltv", "ltv_cac", "flagged", "avg_predicted_clv", "monthly"} <= set(search)
    split = data["budget_split"]
    total = Decimal(split["reserve"]) + sum(Decimal(c["amount"]) for c in split["channels"])
    assert total == Decimal(split["total"]) == Decimal("5000.00")


@pytest.mark.parametrize("url", ["/api/v1/clv/model/", "/api/v1/clv/channels/", "/api/v1/customers/1/value/"])
def test_anonymous_and_role_less_users_are_refused(url, no_role_user):
    assert APIClient().get(url).status_code in (401, 403)
    client = APIClient()
    client.force_authenticate(no_role_user)
    assert client.get(url).status_code == 403


def test_read_only(agent_api, manager_api):
    assert agent_api.post("/api/v1/clv/model/", {}).status_code == 403
    assert manager_api.post("/api/v1/clv/model/", {}).status_code == 405


def test_admin_lists_runs_and_values_read_only(client, computed):
    from tests.factories import UserFactory

    run, _customers = computed
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    assert client.get("/admin/lifecycle/clvrun/").status_code == 200
    assert client.get(f"/admin/lifecycle/clvrun/{run.pk}/change/").status_code == 200
    assert client.get("/admin/lifecycle/customervalue/?rfm_segment=champions").status_code == 200
    assert client.get("/admin/lifecycle/clvrun/add/").status_code == 403
