"""Stage API: the customer resource's stage/health/risk without N+1, transitions, the manual change, the tasks inbox."""

import datetime as dt

import pytest
from django.utils import timezone

from customers.models import Note
from lifecycle.models_stages import CustomerStage
from lifecycle.services.stages import lifecycle_evaluate
from tests.factories import CustomerFactory, OrderFactory, TaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def customers():
    rows = [CustomerFactory() for _ in range(4)]
    OrderFactory(customer=rows[0], ordered_at=timezone.now() - dt.timedelta(days=1))
    lifecycle_evaluate()
    return rows


def test_customer_list_and_detail_carry_stage_health_and_risk(agent_api, customers, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        listing = agent_api.get("/api/v1/customers/").json()["results"]
    by_id = {row["id"]: row for row in listing}
    assert by_id[customers[0].pk]["stage"] == "new"
    assert 0 <= by_id[customers[0].pk]["health_score"] <= 100 and by_id[customers[0].pk]["churn_risk"] in (0, 1, 2, 3)
    assert by_id[customers[1].pk]["stage"] == "lead" and by_id[customers[1].pk]["churn_risk"] == 0
    fresh = CustomerFactory()
    detail = agent_api.get(f"/api/v1/customers/{fresh.pk}/").json()
    assert (detail["stage"], detail["health_score"], detail["churn_risk"]) == (None, None, None)


def test_list_query_count_does_not_grow(agent_api, customers, django_assert_num_queries):
    agent_api.get("/api/v1/customers/")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        agent_api.get("/api/v1/customers/")
    for _ in range(10):
        CustomerFactory()
    lifecycle_evaluate()
    with django_assert_num_queries(len(few.captured_queries)):
        agent_api.get("/api/v1/customers/")


def test_manual_stage_change_needs_a_manager_and_a_reason(agent_api, manager_api, customers):
    url = f"/api/v1/customers/{customers[1].pk}/stage/"
    assert agent_api.post(url, {"stage": "loyal", "reason": "VIP"}, format="json").status_code == 403
    missing = manager_api.post(url, {"stage": "loyal"}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()
    blank = manager_api.post(url, {"stage": "loyal", "reason": "   "}, format="json")
    assert blank.status_code == 400
    bad = manager_api.post(url, {"stage": "gold", "reason": "x"}, format="json")
    assert bad.status_code == 400 and "stage" in bad.json()
    done = manager_api.post(url, {"stage": "loyal", "reason": "Key account"}, format="json")
    assert done.status_code == 201 and done.json()["manual"] is True and done.json()["changed_by"] == "manager"
    same = manager_api.post(url, {"stage": "loyal", "reason": "again"}, format="json")
    assert same.status_code == 400
    assert CustomerStage.objects.get(customer=customers[1]).stage == "loyal"
    assert manager_api.post("/api/v1/customers/999999/stage/", {"stage": "loyal", "reason": "x"}, format="json").status_code == 404


def test_transitions_list(agent_api, manager_api, customers):
    manager_api.post(f"/api/v1/customers/{customers[0].pk}/stage/", {"stage": "loyal", "reason": "Key account"}, format="json")
    rows = agent_api.get(f"/api/v1/customers/{customers[0].pk}/transitions/").json()["results"]
    assert [(r["from_stage"], r["to_stage"], r["rule"]) for r in rows] == [("new", "loyal", "manual"), (None, "new", "first_evaluation")]
    assert agent_api.get("/api/v1/customers/999999/transitions/").status_code == 404


def test_tasks_list_and_update(agent, agent_api, manager_api):
    customer = CustomerFactory()
    overdue = TaskFactory(customer=customer, assignee=agent, due_at=timezone.now() - dt.timedelta(days=1))
    TaskFactory(customer=customer, assignee=agent, due_at=timezone.now() + dt.timedelta(days=1))
    other = TaskFactory(customer=customer)
    mine = agent_api.get("/api/v1/tasks/").json()["results"]
    assert {t["id"] for t in mine} == {overdue.pk, overdue.pk + 1}
    assert [t["id"] for t in agent_api.get("/api/v1/tasks/", {"overdue": "true"}).json()["results"]] == [overdue.pk]
    assert other.pk in {t["id"] for t in manager_api.get("/api/v1/tasks/", {"who": "all"}).json()["results"]}
    assert agent_api.get("/api/v1/tasks/", {"who": "all"}).json()["results"] == mine  # an Agent sees only theirs
    assert agent_api.patch(f"/api/v1/tasks/{overdue.pk}/", {"done": True}, format="json").status_code == 400
    assert agent_api.patch(f"/api/v1/tasks/{other.pk}/", {"done": True, "note": "x"}, format="json").status_code == 403
    response = agent_api.patch(f"/api/v1/tasks/{overdue.pk}/", {"done": True, "note": "Called back"}, format="json")
    assert response.status_code == 200 and response.json()["done_at"]
    assert Note.objects.filter(customer=customer, body__contains="Called back").exists()
    assert agent_api.patch(f"/api/v1/tasks/{overdue.pk}/", {"done": True, "note": "again"}, format="json").status_code == 400
    assert agent_api.patch("/api/v1/tasks/999999/", {"done": True, "note": "x"}, format="json").status_code == 404


def test_customer_list_filters_by_stage_risk_and_health(agent_api, customers):
    ids = lambda params: {row["id"] for row in agent_api.get("/api/v1/customers/", params).json()["results"]}  # noqa: E731
    assert ids({"stage": "new"}) == {customers[0].pk}
    assert ids({"stage": "lead"}) == {c.pk for c in customers[1:]}
    assert ids({"churn_risk": 0}) >= {c.pk for c in customers[1:]}
    assert ids({"health_min": 101}) == set()
    assert agent_api.get("/api/v1/customers/", {"stage": "gold"}).status_code == 400
