"""Importing a CSV in a real browser, watching the job's progress bar move and the rejected rows appear.

No Celery worker runs here: the queued task is caught, and the test plays the worker, so the page is
seen while the job is queued, half done and finished."""

import re
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

import customers.tasks
from core.models import Job
from core.services import job_progress, job_start
from customers.models import Customer
from customers.services.imports import import_job_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BAD_ROWS = 103  # more than a page of rejected rows (100)
GOOD_ROWS = 20


def _customers_csv() -> bytes:
    lines = ["customer_id,email,first_name,last_name,country"]
    lines += [f"G{n},good{n}@example.com,Good,Row{n},DE" for n in range(GOOD_ROWS)]
    lines += [f"B{n},bad-address-{n},Bad,Row{n},DE" for n in range(BAD_ROWS)]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def queued_tasks(monkeypatch):
    """Stands in for the broker: import_job_start's task lands here instead of running."""
    queue: list[int] = []
    monkeypatch.setattr(customers.tasks, "import_file", SimpleNamespace(delay=queue.append))
    return queue


def test_import_csv_and_watch_the_job(page, login, manager, queued_tasks, server_lock, screenshot):
    progress_polls = []
    page.on("request", lambda request: "/progress/" in request.url and progress_polls.append(request.url))
    login(manager)
    page.get_by_role("link", name="Import", exact=True).click()
    expect(page.locator("h1")).to_have_text("Import data")
    expect(page.locator("#import-form")).to_contain_text("order_id")
    screenshot("08-import")

    page.check("input[name=kind][value=customers]")
    page.set_input_files("input[name=file]", files=[{"name": "customers.csv", "mimeType": "text/csv", "buffer": _customers_csv()}])
    page.get_by_role("button", name="Start import").click()

    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    job = Job.objects.get()
    assert queued_tasks == [job.pk]
    component = page.locator(f"#job-{job.pk}-progress")
    bar = component.locator("progress")
    expect(component).to_have_attribute("data-job-status", "queued")
    expect(bar).to_have_attribute("value", "0")
    screenshot("09-import-queued")

    # The worker starts and gets half way: the page polls and shows it.
    with server_lock:
        total = Job.objects.get(pk=job.pk).total
        job_start(job_id=job.pk, total=total)
        job_progress(job_id=job.pk, done=total // 2, total=total)
    expect(component).to_have_attribute("data-job-status", "running", timeout=5000)
    expect(bar).to_have_attribute("value", "50")
    expect(component).to_contain_text("50%")
    screenshot("10-import-running")

    # The worker finishes: the bar reaches 100 %, polling stops, the summary and the rejected rows appear.
    with server_lock:
        import_job_run(job_id=job.pk)
    expect(component).to_have_attribute("data-job-status", "succeeded", timeout=5000)
    expect(bar).to_have_attribute("value", "100")
    result = page.locator("#job-result")
    expect(result.locator('[data-count="created"]')).to_have_text(str(GOOD_ROWS))
    expect(result.locator('[data-count="rejected"]')).to_have_text(str(BAD_ROWS))
    rows = result.locator("table.rejected-rows tbody tr")
    expect(rows).to_have_count(100)
    expect(rows.first.locator("td").nth(0)).to_have_text(str(GOOD_ROWS + 2))  # header is line 1
    expect(rows.first).to_contain_text("bad-address-0")
    screenshot("11-import-done")

    polls = len(progress_polls)
    page.wait_for_timeout(2500)
    assert len(progress_polls) == polls, "polling must stop once the job is over"

    # The last rejected rows are on the second page, fetched with htmx.
    result.locator("a[rel=next]").click()
    expect(rows).to_have_count(BAD_ROWS - 100)
    expect(rows.last.locator("td").nth(0)).to_have_text(str(GOOD_ROWS + BAD_ROWS + 1))
    expect(page).to_have_url(re.compile(r"\?page=2$"))
    assert Customer.objects.count() == GOOD_ROWS

    # Back on the import page the job is listed, finished.
    page.get_by_role("link", name="Import", exact=True).first.click()
    expect(page.locator("#recent-imports")).to_contain_text("customers.csv")
    expect(page.locator(f"#recent-imports #job-{job.pk}-progress")).to_have_attribute("data-job-status", "succeeded")
