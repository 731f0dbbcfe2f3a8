"""The production path: a real Celery worker process, fed through Redis, works on PostgreSQL.

Everything else in the suite runs tasks eagerly; this test proves the wiring (config/celery.py,
task discovery, the broker settings, acks_late) with real processes."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

from core.models import Job
from core.services import job_create
from customers.models import Customer
from tests.conftest import broker_client, skip_or_fail

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[2]


def _redis_is_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.exceptions.ConnectionError:
        return False


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_takes_an_import_job_from_redis(tmp_path, settings):
    if not _redis_is_up():
        skip_or_fail(f"needs Redis at {REDIS_URL}")
    settings.MEDIA_ROOT = tmp_path
    path = default_storage.save("imports/worker.csv", ContentFile(b"customer_id,email\nW1,w1@example.com\nW2,bad\n"))
    job = job_create(kind="import_customers", params={"kind": "customers", "path": path, "filename": "worker.csv"})

    queue = f"test-{uuid.uuid4().hex}"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": REDIS_URL,
        "MEDIA_ROOT": str(tmp_path),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "--pool", "solo", "-l", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        broker_client(REDIS_URL).send_task("customers.tasks.import_file", args=[job.pk], queue=queue)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.is_finished:
                break
            time.sleep(0.25)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0].decode(errors="replace")

    assert job.status == Job.Status.SUCCEEDED, output
    assert job.result["created"] == 1 and job.result["rejected"] == 1
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["W1"]
    assert job.rejected_rows.get().line == 3
