import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import Job, JobRejectedRow
from core.selectors import REJECTED_ROWS_PER_PAGE

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
POLL = 'hx-trigger="every 1s"'


def _job(**fields) -> Job:
    defaults = {"kind": "test", "status": Job.Status.RUNNING, "total": 200, "done": 50}
    defaults.update(fields)
    return Job.objects.create(**defaults)


def _finished(**fields) -> Job:
    return _job(status=Job.Status.SUCCEEDED, done=200, **fields)


@pytest.mark.parametrize("name", ["job-detail", "job-progress"])
def test_anonymous_is_sent_to_login(client, name):
    job = _job()
    response = client.get(reverse(name, args=[job.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", ["job-detail", "job-progress"])
def test_user_without_role_is_refused(client, no_role_user, name):
    client.force_login(no_role_user)
    assert client.get(reverse(name, args=[_job().pk])).status_code == 403


def test_agent_sees_any_job_also_one_a_manager_started(client, agent, manager):
    job = _job(created_by=manager)
    client.force_login(agent)
    response = client.get(reverse("job-detail", args=[job.pk]))
    assert response.status_code == 200
    assert f'id="job-{job.pk}-progress"' in response.text


def test_unknown_job_is_404(client, agent):
    client.force_login(agent)
    assert client.get(reverse("job-detail", args=[999999])).status_code == 404
    assert client.get(reverse("job-progress", args=[999999])).status_code == 404


def test_running_job_polls_itself_and_shows_progress(client, agent):
    job = _job(done=50, total=200, message="Reading rows")
    client.force_login(agent)
    response = client.get(reverse("job-progress", args=[job.pk]), **HTMX)
    assert response.status_code == 200
    html = response.text
    assert "<html" not in html  # the fragment, not the page
    assert POLL in html
    assert f'hx-get="{reverse("job-progress", args=[job.pk])}"' in html
    assert 'hx-swap="outerHTML"' in html
    assert '<progress class="job-progress__bar" max="100" value="25"' in html
    assert "Reading rows" in html
    assert "HX-Trigger" not in response.headers


def test_queued_job_without_total_shows_an_indeterminate_bar(client, agent):
    job = _job(status=Job.Status.QUEUED, total=0, done=0)
    client.force_login(agent)
    html = client.get(reverse("job-progress", args=[job.pk]), **HTMX).text
    assert POLL in html
    assert '<progress class="job-progress__bar" max="100" aria-label' in html  # no value: indeterminate


def test_finished_job_stops_polling_and_announces_it(client, agent):
    job = _finished()
    client.force_login(agent)
    response = client.get(reverse("job-progress", args=[job.pk]), **HTMX)
    assert POLL not in response.text
    assert "hx-get" not in response.text
    assert 'value="100"' in response.text
    trigger = json.loads(response.headers["HX-Trigger"])
    assert trigger["job-finished"] == {"id": job.pk, "status": "succeeded"}
    assert f"job-finished-{job.pk}" in trigger


def test_failed_job_shows_its_error_and_stops_polling(client, agent):
    job = _job(status=Job.Status.FAILED, error="The header misses the required column(s) email.")
    client.force_login(agent)
    html = client.get(reverse("job-progress", args=[job.pk]), **HTMX).text
    assert POLL not in html
    assert "Failed" in html
    assert "The header misses the required column(s) email." in html


def test_running_job_page_waits_for_the_finish_event(client, agent):
    job = _job()
    JobRejectedRow.objects.create(job=job, line=3, reason="email is missing.")
    client.force_login(agent)
    html = client.get(reverse("job-detail", args=[job.pk])).text
    assert f'hx-trigger="job-finished-{job.pk} from:body"' in html
    assert "email is missing." not in html  # rows are listed once the job is over


def test_finished_job_page_shows_summary_and_rejected_rows(client, agent):
    job = _finished(result={"created": 7, "updated": 2, "rejected": 2})
    JobRejectedRow.objects.create(job=job, line=5, reason="email: 'x' is not a valid e-mail address.", raw="C1,x")
    JobRejectedRow.objects.create(job=job, line=3, reason="customer_id is missing.", raw=",a@example.com")
    client.force_login(agent)
    response = client.get(reverse("job-detail", args=[job.pk]))
    html = response.text
    assert 'data-count="created">7<' in html
    assert 'data-count="updated">2<' in html
    assert 'data-count="rejected">2<' in html
    assert "job-finished" not in html
    assert html.index("customer_id is missing.") < html.index("is not a valid e-mail address.")  # by line
    assert "<td class=\"num\">3</td>" in html and "<td class=\"num\">5</td>" in html
    assert "2 rows were rejected." in html


def test_finished_job_without_rejections_says_so(client, agent):
    client.force_login(agent)
    html = client.get(reverse("job-detail", args=[_finished(result={"created": 1}).pk])).text
    assert "No row was rejected." in html


def test_rejected_rows_are_paginated_and_htmx_gets_the_fragment(client, agent):
    job = _finished(result={"rejected": REJECTED_ROWS_PER_PAGE + 5})
    JobRejectedRow.objects.bulk_create(
        JobRejectedRow(job=job, line=line, reason=f"reason {line}") for line in range(2, REJECTED_ROWS_PER_PAGE + 7)
    )
    client.force_login(agent)
    url = reverse("job-detail", args=[job.pk])
    first = client.get(url).text
    assert first.count('<td class="num">') == REJECTED_ROWS_PER_PAGE
    assert "reason 101<" in first and "reason 102<" not in first
    assert "Page 1 of 2" in first

    second = client.get(url, {"page": 2}, **HTMX)
    assert "<html" not in second.text
    assert second.text.lstrip().startswith('<section id="job-result"')
    assert second.text.count('<td class="num">') == 5
    assert "reason 102<" in second.text and "reason 106<" in second.text


def test_job_page_queries_do_not_grow_with_rejected_rows(client, agent, django_assert_max_num_queries):
    small = _finished()
    JobRejectedRow.objects.create(job=small, line=2, reason="r")
    big = _finished()
    JobRejectedRow.objects.bulk_create(JobRejectedRow(job=big, line=n, reason="r") for n in range(2, 90))
    client.force_login(agent)
    client.get(reverse("job-detail", args=[small.pk]))  # warm up the session and role caches
    with CaptureQueriesContext(connection) as small_queries:
        client.get(reverse("job-detail", args=[small.pk]))
    with django_assert_max_num_queries(len(small_queries)):
        response = client.get(reverse("job-detail", args=[big.pk]))
    assert response.text.count('<td class="num">') == 88
