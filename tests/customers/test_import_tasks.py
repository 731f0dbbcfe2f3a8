"""Imports started from the UI: import_job_start stores the upload and queues customers.tasks.import_file."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError

from core.exceptions import DomainError
from core.models import Job, JobRejectedRow
from customers import tasks
from customers.models import Order
from customers.services import imports
from customers.services.imports import import_job_run, import_job_start

pytestmark = pytest.mark.django_db

ORDERS = (
    "customer_id,order_id,ordered_at,amount,currency,status\n"
    "C1,O1,2024-03-05,10.00,,\n"
    "C1,O2,2024-03-05,-3,,\n"
    "C2,O3,2024-03-06T12:00:00Z,5.50,EUR,refunded\n"
    "C2,O4,2024-03-07,1.00,,shipped\n"
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def upload(content: str = ORDERS, name: str = "orders.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode("utf-8"), content_type="text/csv")


def test_job_runs_after_commit_and_records_result_and_rejected_rows(manager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = import_job_start(kind="orders", uploaded_file=upload(), user=manager)
        # Nothing runs before the transaction commits.
        assert Job.objects.get(pk=job.pk).status == Job.Status.QUEUED
        assert default_storage.exists(job.params["path"])

    assert len(callbacks) == 1
    job.refresh_from_db()
    assert job.kind == "import_orders"
    assert job.created_by == manager
    assert job.params["kind"] == "orders"
    assert job.params["filename"] == "orders.csv"
    assert job.params["path"].startswith("imports/") and job.params["path"].endswith(".csv")
    assert job.status == Job.Status.SUCCEEDED
    assert job.started_at is not None and job.finished_at is not None
    assert job.result["rows"] == 4
    assert (job.result["created"], job.result["updated"], job.result["rejected"]) == (2, 0, 2)
    assert job.done == job.total == len(ORDERS.encode())
    assert job.percent == 100
    rejected = list(JobRejectedRow.objects.filter(job=job).values_list("line", "reason", "raw"))
    assert rejected == [
        (3, "amount: -3 is negative.", "C1,O2,2024-03-05,-3,,"),
        (5, "status: 'shipped' is not one of paid, refunded, cancelled.", "C2,O4,2024-03-07,1.00,,shipped"),
    ]
    assert Order.objects.get(external_id="O3").amount == Decimal("5.50")
    # The upload is removed once imported.
    assert not default_storage.exists(job.params["path"])


def test_unknown_kind_is_refused(manager):
    with pytest.raises(DomainError, match="Unknown import kind"):
        import_job_start(kind="invoices", uploaded_file=upload(), user=manager)
    assert not Job.objects.exists()


def test_unusable_file_is_refused_at_once(manager, media, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(DomainError) as error:
        import_job_start(kind="orders", uploaded_file=upload("customer_id;order_id\nC1;O1\n"), user=manager)
    assert error.value.message == "The file seems to use ';' as delimiter; expected ','."
    assert not Job.objects.exists()
    assert callbacks == []
    assert not (media / "imports").exists() or not any((media / "imports").iterdir())


def test_finished_job_is_skipped(manager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = import_job_start(kind="orders", uploaded_file=upload(), user=manager)
    job.refresh_from_db()
    finished_at = job.finished_at

    tasks.import_file(job.pk)  # a re-delivered message

    job.refresh_from_db()
    assert job.finished_at == finished_at
    assert JobRejectedRow.objects.filter(job=job).count() == 2


def test_rerun_of_an_interrupted_job_creates_no_duplicates(manager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = import_job_start(kind="orders", uploaded_file=upload(), user=manager)
    assert len(callbacks) == 1
    import_job_run(job_id=job.pk)
    # The worker died after the work but before the job was marked finished: it runs again.
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, finished_at=None)
    path = job.params["path"]
    default_storage.save(path, upload())

    tasks.import_file(job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert (job.result["created"], job.result["unchanged"], job.result["rejected"]) == (0, 2, 2)
    assert Order.objects.count() == 2
    assert JobRejectedRow.objects.filter(job=job).count() == 2


def test_missing_upload_fails_the_job(manager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        job = import_job_start(kind="orders", uploaded_file=upload(), user=manager)
    default_storage.delete(job.params["path"])

    tasks.import_file(job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "no longer available" in job.error


def test_unexpected_error_fails_the_job_with_its_text(manager, monkeypatch, django_capture_on_commit_callbacks):
    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(imports.jobs, "import_csv", broken)
    with django_capture_on_commit_callbacks(execute=True):
        job = import_job_start(kind="customers", uploaded_file=upload("customer_id,email\nC1,a@example.com\n"), user=manager)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "disk on fire" in job.error
    assert job.finished_at is not None
    # The job has ended: its upload goes (README, "Imports"); a retry uploads the file again.
    assert not default_storage.exists(job.params["path"])


def test_job_progress_is_written_while_importing(manager, monkeypatch, django_capture_on_commit_callbacks):
    seen = []
    real_import = imports.jobs.import_csv

    def spying_import(**kwargs):
        progress = kwargs["progress"]

        def spy(done, total):
            progress(done, total)
            seen.append(Job.objects.values_list("done", "total", "status").get())

        return real_import(**{**kwargs, "progress": spy, "chunk_size": 1})

    monkeypatch.setattr(imports.jobs, "import_csv", spying_import)
    with django_capture_on_commit_callbacks(execute=True):
        job = import_job_start(kind="orders", uploaded_file=upload(), user=manager)

    size = len(ORDERS.encode())
    assert seen[-1] == (size, size, Job.Status.RUNNING)
    assert len(seen) >= 3
    job.refresh_from_db()
    assert job.started_at <= job.finished_at
    assert job.finished_at - job.started_at < dt.timedelta(minutes=1)


# --- Every job ends (issue 9, defect 1) -----------------------------------------------------------


def test_a_row_with_a_nul_byte_is_rejected_stored_and_the_job_ends(manager, django_capture_on_commit_callbacks):
    """A NUL in a row once made the save of the rejected rows fail on PostgreSQL, after the good rows
    were committed: the job stayed "Running 100%" for ever. Now the row is stored as text PostgreSQL
    can hold and the job ends with its summary."""
    content = ORDERS.replace("C2,O4,", "C2,O4\x00,")
    with django_capture_on_commit_callbacks(execute=True):
        job = import_job_start(kind="orders", uploaded_file=upload(content), user=manager)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["rejected"] == 2
    nul_row = JobRejectedRow.objects.get(job=job, line=5)
    assert nul_row.reason == "The row contains a NUL character."
    assert "\x00" not in nul_row.raw and nul_row.raw.startswith("C2,O4\u2400,")
    assert not default_storage.exists(job.params["path"])  # the job ended: its upload is gone


def test_a_failure_while_storing_the_rejected_rows_fails_the_job(manager, monkeypatch, django_capture_on_commit_callbacks):
    def refuse(*args, **kwargs):
        raise DatabaseError("invalid byte sequence")

    monkeypatch.setattr(JobRejectedRow.objects, "bulk_create", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        job = import_job_start(kind="orders", uploaded_file=upload(), user=manager)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.finished_at is not None
    assert job.error == "The import stopped with an unexpected error: invalid byte sequence"
    assert Order.objects.count() == 2  # the good rows were committed before; they stay
    assert not default_storage.exists(job.params["path"])


def test_a_job_failing_late_keeps_the_rejected_rows_of_its_committed_chunks(manager, monkeypatch, django_capture_on_commit_callbacks):
    real_import = imports.jobs.import_csv

    def failing_after_the_first_chunk(**kwargs):
        calls = []

        def progress(done, total):
            calls.append(done)
            if len(calls) == 2:  # after the second chunk: line 3 (rejected) and line 4
                raise RuntimeError("connection lost")

        return real_import(**{**kwargs, "progress": progress, "chunk_size": 1})

    monkeypatch.setattr(imports.jobs, "import_csv", failing_after_the_first_chunk)
    with django_capture_on_commit_callbacks(execute=True):
        job = import_job_start(kind="orders", uploaded_file=upload(), user=manager)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == "The import stopped with an unexpected error: connection lost"
    # The chunks before the failure were committed; their rejected row is kept.
    assert list(JobRejectedRow.objects.filter(job=job).values_list("line", "reason")) == [(3, "amount: -3 is negative.")]
    assert Order.objects.count() == 2
