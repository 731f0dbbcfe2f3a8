"""The Celery path (eager in tests), the nightly schedule and the recompute_clv command."""

import logging
import re

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from config.celery import app
from core.models import Job
from lifecycle import tasks
from lifecycle.models import ClvRun, ClvRunChunk, CustomerValue
from lifecycle.services import clv_runs as clv_service
from lifecycle.services.clv_runs import clv_run_create, clv_run_execute, clv_run_start
from tests.lifecycle.clv_orders import AS_OF, seed_histories

pytestmark = pytest.mark.django_db

N = 300
FIELDS = ["customer_id", "orders_count", "historic_value", "formula_clv", "frequency", "p_alive", "predicted_clv", "rfm_segment"]


def snapshot():
    return list(CustomerValue.objects.order_by("customer_id").values_list(*FIELDS))


@pytest.fixture
def population():
    return seed_histories(N)


def test_start_enqueues_on_commit_and_chunk_tasks_finish_the_run(population, settings, django_capture_on_commit_callbacks, manager):
    settings.CLV_CHUNK_SIZE = 100
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = clv_run_start(as_of=AS_OF, created_by=manager)
    assert len(callbacks) == 1 and ClvRun.objects.get(pk=run.pk).status == ClvRun.Status.QUEUED
    with django_capture_on_commit_callbacks(execute=True):
        callbacks[0]()
    run.refresh_from_db()
    assert run.status == ClvRun.Status.SUCCEEDED, run.message
    assert run.created_by == manager and run.job.created_by == manager
    assert ClvRunChunk.objects.filter(run=run).count() == 3
    assert run.job.status == Job.Status.SUCCEEDED and run.job.done == N
    distributed = snapshot()
    # The same numbers as computing everything in one process.
    clv_run_execute(run_id=clv_run_create(as_of=AS_OF).pk)
    assert snapshot() == distributed


def test_a_chunk_delivered_twice_changes_nothing(population, settings, django_capture_on_commit_callbacks):
    settings.CLV_CHUNK_SIZE = 100
    with django_capture_on_commit_callbacks(execute=True):
        run = clv_run_start(as_of=AS_OF)
    before = list(CustomerValue.objects.order_by("customer_id").values_list("customer_id", "computed_at"))
    chunk = ClvRunChunk.objects.filter(run=run).first()
    tasks.clv_score_range.delay(run.pk, chunk.lo, chunk.hi)
    tasks.clv_recompute.delay(run.pk)
    assert list(CustomerValue.objects.order_by("customer_id").values_list("customer_id", "computed_at")) == before
    assert ClvRun.objects.get(pk=run.pk).status == ClvRun.Status.SUCCEEDED


def test_a_failing_chunk_fails_the_run(population, monkeypatch, django_capture_on_commit_callbacks):
    def broken(*args, **kwargs):
        raise RuntimeError("worker lost its disk")

    monkeypatch.setattr(clv_service, "values_generation_write", broken)
    with pytest.raises(RuntimeError), django_capture_on_commit_callbacks(execute=True):
        run = clv_run_start(as_of=AS_OF)
    run = ClvRun.objects.get()
    assert run.status == ClvRun.Status.FAILED and "worker lost its disk" in run.error
    assert run.job.status == Job.Status.FAILED


def test_nightly_schedule_is_in_beat():
    entry = PeriodicTask.objects.get(name="Nightly CLV recompute")
    assert entry.enabled and entry.task == "lifecycle.tasks.clv_nightly"
    assert (entry.crontab.minute, entry.crontab.hour) == ("30", "2")
    assert entry.task in app.tasks


def test_nightly_task_starts_a_run(population, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        tasks.clv_nightly.delay()
    run = ClvRun.objects.get()
    assert run.as_of == timezone.localdate()
    assert run.status in (ClvRun.Status.SUCCEEDED, ClvRun.Status.NOT_CONVERGED) and run.finished_at
    assert CustomerValue.objects.count() == N


def test_nightly_task_skips_while_a_run_is_active(caplog):
    clv_run_create(as_of=AS_OF)
    with caplog.at_level(logging.WARNING, logger="lifecycle.tasks"):
        tasks.clv_nightly.delay()
    assert ClvRun.objects.count() == 1
    assert "skipped" in caplog.text


def test_command_sync(population, capsys):
    call_command("recompute_clv", "--as-of", "2026-06-30", "--sync")
    run = ClvRun.objects.get()
    assert run.as_of == AS_OF and run.status == ClvRun.Status.SUCCEEDED
    out = capsys.readouterr()
    assert f"CLV run #{run.pk}" in out.out and f"{N} customers" in out.out
    assert CustomerValue.objects.count() == N
    # `make run` runs this: the runs page must not say "Started by: schedule".
    assert run.trigger == ClvRun.Trigger.COMMAND
    # One progress bar that knows its total, not a stray "0 customers [00:00, ?]" first.
    assert not re.search(r"(^|\r)0 customers \[", out.err) and f"{N}/{N}" in out.err


def test_command_sync_on_no_customers_prints_no_empty_bar(capsys):
    call_command("recompute_clv", "--as-of", "2026-06-30", "--sync")
    assert "customers [" not in capsys.readouterr().err


def test_command_enqueues(population, django_capture_on_commit_callbacks, capsys):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        call_command("recompute_clv", "--as-of", "2026-06-30")
    assert len(callbacks) == 1
    assert "Queued" in capsys.readouterr().out
    assert ClvRun.objects.get().status == ClvRun.Status.SUCCEEDED
    assert ClvRun.objects.get().trigger == ClvRun.Trigger.COMMAND


def test_command_rejects_a_bad_date_and_a_busy_job():
    with pytest.raises(CommandError):
        call_command("recompute_clv", "--as-of", "30/06/2026")
    clv_run_create(as_of=AS_OF)
    with pytest.raises(CommandError, match="already"):
        call_command("recompute_clv", "--sync")
