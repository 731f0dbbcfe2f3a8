"""The stage screens: roles, the dashboard's numbers and links, the manual change by htmx, the tasks inbox."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from core.models import Job
from customers.models import Note
from lifecycle.models_stages import CustomerStage, StageTransition
from lifecycle.services.stages import lifecycle_evaluate
from tests.factories import CustomerFactory, EventFactory, OrderFactory, TaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def evaluated():
    customers = [CustomerFactory(signed_up_at=timezone.now() - dt.timedelta(days=200)) for _ in range(3)]
    OrderFactory(customer=customers[0], ordered_at=timezone.now() - dt.timedelta(days=2))
    OrderFactory(customer=customers[1], ordered_at=timezone.now() - dt.timedelta(days=150))
    EventFactory(customer=customers[0], name="login", occurred_at=timezone.now() - dt.timedelta(days=1))
    lifecycle_evaluate()
    return customers


def test_pages_need_a_login(client):
    for name in ("lifecycle:stages", "lifecycle:stage_customers", "lifecycle:tasks"):
        assert client.get(reverse(name)).status_code == 302


def test_dashboard_shows_counts_linking_to_the_customers(client, agent, evaluated):
    client.force_login(agent)
    response = client.get(reverse("lifecycle:stages"))
    assert response.status_code == 200
    body = response.content.decode()
    assert f'{reverse("lifecycle:stage_customers")}?stage=churned">1<' in body
    assert "?risk=3" in body and "?band=red" in body
    assert "not a churn signal for one-time buyers" in body
    assert b"Evaluate now" not in response.content  # an Agent may not start it
    listing = client.get(reverse("lifecycle:stage_customers"), {"stage": "churned"})
    assert list(listing.context["page"].object_list) == [evaluated[1]]


def test_dashboard_query_count_does_not_grow_with_customers(client, agent, evaluated, django_assert_max_num_queries):
    client.force_login(agent)
    with django_assert_max_num_queries(25):
        client.get(reverse("lifecycle:stages"))


def test_manager_starts_an_evaluation_job(client, manager, django_capture_on_commit_callbacks):
    client.force_login(manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("lifecycle:stages_evaluate"))
    job = Job.objects.get(kind="lifecycle_evaluate")
    assert response["Location"] == reverse("job-detail", args=[job.pk])
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED


def test_agent_may_not_start_an_evaluation(client, agent):
    client.force_login(agent)
    assert client.post(reverse("lifecycle:stages_evaluate")).status_code == 403


def test_manual_change_by_htmx_returns_the_panel(client, manager, evaluated):
    client.force_login(manager)
    customer = evaluated[1]
    url = reverse("lifecycle:customer_stage_change", args=[customer.pk])
    response = client.post(url, {"stage": "loyal", "reason": "Signed a contract"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'id="lifecycle-panel"' in response.content.decode() and "Signed a contract" in response.content.decode()
    assert CustomerStage.objects.get(customer=customer).stage == "loyal"
    missing = client.post(url, {"stage": "new", "reason": ""}, HTTP_HX_REQUEST="true")
    assert "This field is required" in missing.content.decode()
    assert StageTransition.objects.filter(customer=customer, manual=True).count() == 1


def test_agent_may_not_change_a_stage(client, agent, evaluated):
    client.force_login(agent)
    url = reverse("lifecycle:customer_stage_change", args=[evaluated[0].pk])
    assert client.post(url, {"stage": "loyal", "reason": "x"}).status_code == 403


def test_customer_page_has_the_panel(client, manager, evaluated):
    client.force_login(manager)
    response = client.get(reverse("customers:detail", args=[evaluated[0].pk]))
    body = response.content.decode()
    assert 'id="lifecycle-panel"' in body and "Change stage" in body


def test_tasks_inbox_overdue_first_and_done_with_a_note(client, agent, manager):
    customer = CustomerFactory()
    later = TaskFactory(customer=customer, assignee=agent, title="Later", due_at=timezone.now() + dt.timedelta(days=2))
    overdue = TaskFactory(customer=customer, assignee=agent, title="Overdue one", due_at=timezone.now() - dt.timedelta(days=1))
    TaskFactory(customer=customer, assignee=manager, title="Not mine", due_at=timezone.now())
    client.force_login(agent)
    response = client.get(reverse("lifecycle:tasks"))
    assert [t.title for t in response.context["page"].object_list] == ["Overdue one", "Later"]
    assert "Overdue</span>" in response.content.decode()
    assert client.get(reverse("lifecycle:tasks"), {"who": "all"}).context["everyone"] is False
    client.post(reverse("lifecycle:task_done", args=[overdue.pk]), {"note": "Called, will order next week"})
    overdue.refresh_from_db()
    assert overdue.done_at is not None
    assert Note.objects.filter(customer=customer, body__contains="Called, will order next week").exists()
    not_mine = client.post(reverse("lifecycle:task_done", args=[TaskFactory(customer=customer, assignee=manager).pk]), {"note": "x"})
    assert not_mine.status_code == 403
    assert client.post(reverse("lifecycle:task_done", args=[later.pk]), {"note": " "}).status_code == 302
    later.refresh_from_db()
    assert later.done_at is None


def test_manager_sees_everyones_tasks(client, agent, manager):
    TaskFactory(customer=CustomerFactory(), assignee=agent, title="Agent's")
    client.force_login(manager)
    response = client.get(reverse("lifecycle:tasks"), {"who": "all"})
    assert [t.title for t in response.context["page"].object_list] == ["Agent's"]
