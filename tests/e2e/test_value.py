"""The value screens in a real browser: the charts draw from our own static files under the strict
CSP (the page fixture fails on any CSP violation or JavaScript error), the heat map and the
channel table render, and a manager recomputes from the runs page."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from core.models import Job
from core.services import job_progress, job_start, job_succeed
from lifecycle.models import ClvRun, CustomerValue
from tests.lifecycle.clv_orders import AS_OF, seed_histories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def computed():
    """Customers with order histories and one finished recompute over them."""
    from lifecycle.services.clv_runs import clv_run_create, clv_run_execute

    seed_histories(300, prefix="E")
    return clv_run_execute(run_id=clv_run_create(as_of=AS_OF).pk)


def _chart_drawn(page, element_id: str) -> bool:
    return page.evaluate(
        """(id) => {
            const canvas = document.querySelector(`canvas[data-chart="${id}"]`);
            const chart = canvas && window.Chart.getChart(canvas);
            return Boolean(chart && chart.data.datasets[0].data.length && canvas.width > 0);
        }""",
        element_id,
    )


def test_value_dashboard_draws_its_charts(page, login, agent, computed, screenshot):
    assert computed.status == ClvRun.Status.SUCCEEDED, computed.message + computed.error
    login(agent)
    page.goto("/value/")
    expect(page.locator("h1")).to_have_text("Customer value")
    for element_id in ("chart-histogram", "chart-segments"):
        page.wait_for_function("() => window.Chart !== undefined")
        assert _chart_drawn(page, element_id), element_id
    expect(page.locator("table.heatmap td.heat:not(.heat--empty)").first).to_be_visible()
    expect(page.locator("#channels-heading")).to_be_visible()
    screenshot("value-dashboard")


def test_manager_recomputes_from_the_runs_page(page, login, manager, computed, screenshot):
    login(manager)
    page.goto("/value/runs/")
    expect(page.locator("#run-history tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Recompute now").click()
    page.wait_for_load_state()
    expect(page).to_have_url(re.compile(r"/value/runs/$"))
    expect(page.locator("#run-history tbody tr")).to_have_count(2)
    screenshot("value-runs")


def test_customer_page_shows_the_value_panel(page, login, agent, computed):
    login(agent)
    value = CustomerValue.objects.filter(predicted_clv__isnull=False).select_related("customer").first()
    page.goto(f"/customers/{value.customer_id}/")
    panel = page.locator(".value-panel")
    expect(panel).to_contain_text("Probability alive")
    expect(panel).to_contain_text(f"{value.predicted_clv:,.2f}")


def test_runs_page_follows_a_running_recompute_live(page, login, agent, server_lock):
    """The progress bar polls while the job runs; when it ends, the latest run and the history
    reload by themselves (no page reload)."""
    job = Job.objects.create(kind="clv_recompute")
    job_start(job_id=job.pk, total=100)
    job_progress(job_id=job.pk, done=40)
    run = ClvRun.objects.create(as_of=dt.date(2026, 6, 30), status=ClvRun.Status.RUNNING, started_at=timezone.now(), job=job)
    login(agent)
    page.goto("/value/runs/")
    expect(page.locator(".job-progress__percent")).to_have_text("40%")
    with server_lock:
        job_progress(job_id=job.pk, done=70)
    expect(page.locator(".job-progress__percent")).to_have_text("70%")
    with server_lock:
        ClvRun.objects.filter(pk=run.pk).update(status=ClvRun.Status.SUCCEEDED, finished_at=timezone.now(), n_customers=5)
        job_succeed(job_id=job.pk)
    expect(page.locator("#latest-heading + p .badge")).to_have_text("Succeeded")
    expect(page.locator("#run-history tbody tr").first).to_contain_text("Succeeded")
    expect(page).to_have_url(re.compile(r"/value/runs/$"))
