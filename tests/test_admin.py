"""The admin site: every registered model's changelist and add page load for a superuser."""

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from core.models import Job, JobRejectedRow
from tests.factories import CustomerFactory, NoteFactory, OrderFactory, TaskFactory, UserFactory

pytestmark = pytest.mark.django_db

MODELS = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def some_rows(db):
    customer = CustomerFactory()
    OrderFactory(customer=customer)
    NoteFactory(customer=customer)
    TaskFactory(customer=customer)
    job = Job.objects.create(kind="import_customers")
    JobRejectedRow.objects.create(job=job, line=2, reason="bad e-mail", raw="x")


def test_every_project_model_is_registered():
    from django.apps import apps

    for app_label in ("core", "customers"):
        for model in apps.get_app_config(app_label).get_models():
            assert admin.site.is_registered(model), model


@pytest.mark.parametrize("model,model_admin", MODELS, ids=[m._meta.label for m, _ in MODELS])
def test_changelist_and_add_page_load(client, superuser, some_rows, model, model_admin):
    client.force_login(superuser)
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert client.get(changelist).status_code == 200
    assert client.get(changelist, {"q": "example"}).status_code == 200
    request = RequestFactory().get("/")
    request.user = superuser
    add_status = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code
    assert add_status == (200 if model_admin.has_add_permission(request) else 403)


def test_customer_admin_search_uses_the_ui_search(client, superuser):
    CustomerFactory(first_name="Ada", last_name="Lovelace")
    CustomerFactory(first_name="Alan", last_name="Turing")
    client.force_login(superuser)
    response = client.get(reverse("admin:customers_customer_changelist"), {"q": "ada love"})
    assert [c.last_name for c in response.context["cl"].result_list] == ["Lovelace"]


def test_jobs_are_read_only(client, superuser):
    job = Job.objects.create(kind="import_orders")
    client.force_login(superuser)
    url = reverse("admin:core_job_change", args=[job.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"kind": "changed"}).status_code == 403
