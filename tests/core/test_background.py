"""Jobs without a broker (TASK_RUNNER "thread", the default of `make run`): the request that starts
one answers at once and the job runs in a background thread of the server, on its own connection;
the messages tell the job's state as it is."""

import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core.background import background_submit, background_wait, job_guard
from core.models import Job
from customers.models import Order
from customers.services import imports
from lifecycle.models import ClvRun
from tests.factories import CustomerFactory, OrderFactory

ORDERS = b"customer_id,order_id,ordered_at,amount\nC1,O1,2024-03-05,10.00\nC2,O2,2024-03-06,5.00\n"


@pytest.fixture
def thread_runner(settings, tmp_path):
    settings.TASK_RUNNER = "thread"
    settings.MEDIA_ROOT = tmp_path / "media"
    yield
    assert background_wait(timeout=30), "a background job did not finish"


@pytest.fixture
def held_import(monkeypatch):
    """The import waits (in its background thread) until the test releases it."""
    release, started = threading.Event(), threading.Event()
    real_import = imports.jobs.import_csv

    def held(**kwargs):
        started.set()
        release.wait(timeout=20)
        return real_import(**kwargs)

    monkeypatch.setattr(imports.jobs, "import_csv", held)
    return started, release


@pytest.mark.django_db(transaction=True)
def test_the_upload_returns_before_the_import_ends_and_the_job_page_shows_it_done(client, manager, thread_runner, held_import):
    started, release = held_import
    client.force_login(manager)
    response = client.post(
        reverse("customers:import"), {"kind": "orders", "file": SimpleUploadedFile("orders.csv", ORDERS, content_type="text/csv")}
    )
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("job-detail", args=[job.pk])
    # The request has answered; the import is still held in its thread.
    assert job.status in (Job.Status.QUEUED, Job.Status.RUNNING)
    assert not Order.objects.exists()
    # The job page is read once the thread holds the import: on SQLite's shared-cache test database
    # a read here while the thread marks the job running failed the thread's write ("table is locked").
    assert started.wait(timeout=20)
    page = client.get(response["Location"]).text
    assert "Import started; this page shows its progress." in page
    assert 'hx-trigger="every 1s"' in page  # the page polls for progress

    release.set()
    assert background_wait(timeout=30)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    page = client.get(response["Location"]).text
    assert 'data-count="created">2<' in page
    assert 'hx-trigger="every 1s"' not in page
    assert Order.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_recompute_message_says_started_while_the_run_runs(client, manager, thread_runner, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr("lifecycle.services.clv_runs.clv_run_dispatch", lambda **kwargs: release.wait(timeout=20))
    client.force_login(manager)
    page = client.post(reverse("lifecycle:recompute"), follow=True).text
    run = ClvRun.objects.get()
    assert f"Recompute #{run.pk} for {run.as_of} started; this page shows its progress." in page
    release.set()


@pytest.mark.django_db(transaction=True)
def test_a_recompute_run_at_once_is_said_to_be_finished(client, manager):
    """Eager (what the request-blocking default used to do): the run is over when the page loads, and
    the message says so instead of "queued"."""
    OrderFactory(customer=CustomerFactory(), amount="10.00")
    client.force_login(manager)
    page = client.post(reverse("lifecycle:recompute"), follow=True).text
    run = ClvRun.objects.get()
    assert run.is_finished
    assert f"Recompute #{run.pk} for {run.as_of} finished" in page or f"Recompute #{run.pk} for {run.as_of} failed" in page
    assert f"Recompute #{run.pk} queued" not in page


@pytest.mark.django_db(transaction=True)
def test_a_background_job_that_raises_ends_failed_with_a_reason(thread_runner):
    job = Job.objects.create(kind="test")

    def boom():
        with job_guard(job_id=job.pk):
            raise RuntimeError("boom\x00")

    background_submit(boom)
    assert background_wait(timeout=30)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == "The job stopped with an unexpected error: boom\u2400"
