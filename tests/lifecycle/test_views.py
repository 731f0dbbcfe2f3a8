"""The value screens: dashboard (charts, heat map, channel table and budget), runs page with
the recompute button, the customer value panel; roles, CSRF, fragments and query counts."""

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.models import Job
from customers.models import AcquisitionChannel
from lifecycle.models import ClvRun, CustomerValue, RfmSegment
from tests.factories import ChannelFactory, ChannelSpendFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("lifecycle:dashboard")
RUNS = reverse("lifecycle:runs")
RECOMPUTE = reverse("lifecycle:recompute")
HTMX = {"HTTP_HX_REQUEST": "true"}
MONTH = dt.date(2026, 5, 1)


def _login(client, user):
    client.force_login(user)
    return client


def _run(**fields) -> ClvRun:
    defaults = {
        "as_of": dt.date(2026, 6, 30),
        "status": ClvRun.Status.SUCCEEDED,
        "started_at": timezone.now() - dt.timedelta(seconds=12),
        "finished_at": timezone.now(),
        "n_customers": 0,
        "n_purchasers": 0,
        "bgnbd_r": 0.243,
        "bgnbd_alpha": 4.414,
        "bgnbd_a": 0.793,
        "bgnbd_b": 2.426,
        "bgnbd_log_likelihood": -9582.4,
        "bgnbd_converged": True,
        "gg_p": 6.25,
        "gg_q": 3.74,
        "gg_v": 15.44,
        "gg_log_likelihood": -4055.9,
        "gg_converged": True,
    }
    defaults.update(fields)
    return ClvRun.objects.create(**defaults)


def _value(customer, run, **fields) -> CustomerValue:
    defaults = {
        "run": run,
        "computed_at": timezone.now(),
        "orders_count": 3,
        "historic_value": Decimal("120.00"),
        "aov": Decimal("40.00"),
        "purchase_frequency": 2.5,
        "lifespan_years": 3.0,
        "formula_clv": Decimal("300.00"),
        "frequency": 2,
        "recency": 20.0,
        "T": 40.0,
        "p_alive": 0.8,
        "expected_purchases": 1.2,
        "expected_order_value": Decimal("38.50"),
        "predicted_clv": Decimal("46.20"),
        "r_score": 4,
        "f_score": 3,
        "m_score": 5,
        "rfm_segment": RfmSegment.LOYAL,
    }
    defaults.update(fields)
    return CustomerValue.objects.create(customer=customer, **defaults)


def _signed_up(month: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(month + dt.timedelta(days=9), dt.time(12)))


@pytest.fixture
def valued():
    """Two channels with a month of spend: one above LTV/CAC 3, one under; values for their customers."""
    run = _run(n_customers=6, n_purchasers=5)
    good = ChannelFactory(code="search", name="Search", status=AcquisitionChannel.Status.PROVEN)
    weak = ChannelFactory(code="social", name="Social", status=AcquisitionChannel.Status.TESTING)
    ChannelSpendFactory(channel=good, month=MONTH, amount=Decimal("300.00"))  # 3 customers -> CAC 100
    ChannelSpendFactory(channel=weak, month=MONTH, amount=Decimal("600.00"))  # 3 customers -> CAC 200
    customers = []
    for channel, clv in ((good, "400.00"), (weak, "300.00")):
        for i in range(3):
            customer = CustomerFactory(channel=channel, signed_up_at=_signed_up(MONTH))
            _value(customer, run, formula_clv=Decimal(clv), predicted_clv=Decimal(str(20 + 10 * i)), p_alive=0.15 + 0.3 * i)
            customers.append(customer)
    return {"run": run, "good": good, "weak": weak, "customers": customers}


def _chart(response, element_id: str) -> dict:
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', response.content.decode(), re.S)
    assert match, f"no chart data {element_id}"
    return json.loads(match.group(1))


# --- Access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [DASHBOARD, RUNS])
def test_pages_need_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


@pytest.mark.parametrize("url", [DASHBOARD, RUNS])
def test_pages_need_a_staff_role(client, no_role_user, url):
    assert _login(client, no_role_user).get(url).status_code == 403


def test_agent_sees_both_pages_but_no_recompute_button(client, agent, valued):
    _login(client, agent)
    assert client.get(DASHBOARD).status_code == 200
    response = client.get(RUNS)
    assert response.status_code == 200
    assert RECOMPUTE.encode() not in response.content


def test_agent_cannot_recompute(client, agent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _login(client, agent).post(RECOMPUTE)
    assert response.status_code == 403
    assert not ClvRun.objects.exists() and not callbacks


# --- Dashboard ------------------------------------------------------------------------------------


def test_dashboard_without_any_run_says_so(client, agent):
    response = _login(client, agent).get(DASHBOARD)
    assert response.status_code == 200
    assert b"No value computed yet" in response.content
    assert b'data-chart="' not in response.content


def test_dashboard_shows_model_charts_heatmap_and_budget(client, agent, valued):
    response = _login(client, agent).get(DASHBOARD)
    body = response.content.decode()
    assert response.status_code == 200
    # the model of the latest run
    assert "0.243" in body and "4.414" in body and "6.250" in body
    # chart data for charts.js, not inline script
    histogram = _chart(response, "chart-histogram")
    assert sum(histogram["datasets"][0]["data"]) == 6
    ltv_cac = _chart(response, "chart-ltv-cac")
    assert ltv_cac["labels"] == ["Search", "Social"]
    assert ltv_cac["datasets"][0]["data"] == [4.0, 1.5]  # 400/100 and 300/200
    assert ltv_cac["datasets"][0]["flags"] == [False, True]
    assert ltv_cac["threshold"]["value"] == 3.0
    segments = _chart(response, "chart-segments")
    assert segments["labels"][: len(RfmSegment)] == [str(s.label) for s in RfmSegment]
    assert segments["datasets"][0]["data"][segments["labels"].index(str(RfmSegment.LOYAL.label))] == 6
    # the heat map: frequency 2 row, recency 20/40 -> the 50-60% column; mean of 0.15, 0.45, 0.75 twice
    assert 'class="heat heat--5"' in body and "45%" in body
    assert body.count("heat heat--empty") == 7 * 10 + 9  # one filled cell out of 8 x 10
    # the channel table with the flag and the 60/30/10 split of the latest month's 900.00
    assert re.search(r'<tr class="is-flagged">\s*<th scope="row">Social</th>', body)
    assert "60.0%" in body and "30.0%" in body and "10.0%" in body
    assert "540.00" in body and "270.00" in body and "90.00" in body
    # averages by segment and by signup cohort
    by_segment = body[body.index('id="by-segment-heading"') : body.index('id="by-cohort-heading"')]
    assert re.search(r"Loyal</th>\s*<td class=\"num\">6</td>\s*<td class=\"num\">USD\xa030.00</td>\s*<td class=\"num\">45%</td>", by_segment)
    by_cohort = body[body.index('id="by-cohort-heading"') : body.index('id="channels-heading"')]
    assert re.search(r"2026-05</th>\s*<td class=\"num\">6</td>", by_cohort)
    # no inline script or style (CSP)
    assert "<script>" not in body and " style=" not in body and "onclick" not in body
    assert "vendor/chartjs/chart.umd.min.js" in body and "js/charts.js" in body


def test_dashboard_warns_when_the_model_was_not_fitted(client, agent):
    _run(status=ClvRun.Status.NOT_CONVERGED, bgnbd_converged=False, message="BG/NBD: the data do not identify the model")
    body = _login(client, agent).get(DASHBOARD).content.decode()
    assert "predictive model was not fitted" in body
    assert "do not identify the model" not in body  # the optimiser's words: the runs page says why in plain ones
    assert RUNS in body


def _count_dashboard_queries(client, django_assert_max_num_queries, limit):
    with django_assert_max_num_queries(limit) as captured:
        assert client.get(DASHBOARD).status_code == 200
    return len(captured.captured_queries)


def test_dashboard_query_count_does_not_grow_with_data(client, agent, valued, django_assert_max_num_queries):
    _login(client, agent)
    client.get(DASHBOARD)  # warm the session and permission caches
    small = _count_dashboard_queries(client, django_assert_max_num_queries, 20)
    extra = ChannelFactory(code="email", name="E-mail", status=AcquisitionChannel.Status.PAUSED)
    ChannelSpendFactory(channel=extra, month=MONTH, amount=Decimal("50.00"))
    for _ in range(15):
        _value(CustomerFactory(channel=extra, signed_up_at=_signed_up(MONTH)), valued["run"], frequency=9, recency=35.0)
    assert _count_dashboard_queries(client, django_assert_max_num_queries, 20) == small


# --- Runs -----------------------------------------------------------------------------------------


def test_runs_page_shows_progress_and_history(client, manager):
    older = _run(as_of=dt.date(2026, 6, 29), status=ClvRun.Status.NOT_CONVERGED, bgnbd_converged=False, gg_converged=None)
    job = Job.objects.create(kind="clv_recompute", status=Job.Status.RUNNING, total=100, done=40)
    latest = _run(status=ClvRun.Status.RUNNING, finished_at=None, job=job, created_by=manager)
    response = _login(client, manager).get(RUNS)
    body = response.content.decode()
    assert response.status_code == 200
    # the live progress component of the running job, polling the job-progress URL
    assert f'id="job-{job.pk}-progress"' in body
    assert reverse("job-progress", args=[job.pk]) in body and 'hx-trigger="every 1s"' in body
    # the latest run and the history reload when that job finishes
    assert f'<div id="runs-body" hx-get="{RUNS}" hx-trigger="job-finished-{job.pk} from:body"' in body
    assert body.index(f"<td>{latest.pk}</td>") < body.index(f"<td>{older.pk}</td>")
    assert "Partly computed" in body and "not converged" not in body
    assert manager.get_username() in body  # the factory's users have no full name
    assert RECOMPUTE in body and 'name="csrfmiddlewaretoken"' in body


def test_runs_fragment_for_htmx_stops_reloading_once_finished(client, agent):
    job = Job.objects.create(kind="clv_recompute", status=Job.Status.SUCCEEDED, total=10, done=10)
    run = _run(job=job)
    response = _login(client, agent).get(RUNS, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="runs-body">')  # finished: no trigger left
    assert f'id="job-{job.pk}-progress"' not in body and 'hx-trigger="every 1s"' not in body
    assert "Computed historic value, formula CLV, RFM segment and predicted CLV" in body
    assert f"<td>{run.pk}</td>" in body and "<html" not in body


def test_runs_page_query_count(client, agent, django_assert_max_num_queries):
    _login(client, agent)
    for day in range(5):
        _run(as_of=dt.date(2026, 6, 1 + day), created_by=UserFactory(), job=Job.objects.create(kind="clv_recompute"))
    client.get(RUNS)
    with django_assert_max_num_queries(6) as few:
        client.get(RUNS)
    for day in range(10):
        _run(as_of=dt.date(2026, 5, 1 + day), created_by=UserFactory(), job=Job.objects.create(kind="clv_recompute"))
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(RUNS)


def test_runs_page_says_once_in_plain_words_what_a_partial_run_computed(client, agent):
    """A run whose model was not fitted read "Model not fitted" next to the job's "Succeeded",
    gave the optimiser's message twice ("parameter(s) b ran off towards 0 or infinity") and had
    eleven columns (cut off at 1280 px)."""
    job = Job.objects.create(
        kind="clv_recompute", status=Job.Status.SUCCEEDED, total=2000, done=2000,
        message="Done; the model was not fitted: BG/NBD: parameter(s) b ran off towards 0 or infinity",
    )
    run = _run(
        status=ClvRun.Status.NOT_CONVERGED, job=job, n_customers=2000, n_purchasers=3, bgnbd_converged=False, gg_converged=True,
        message="BG/NBD: parameter(s) b ran off towards 0 or infinity: the data do not identify the model",
    )
    customers = CustomerFactory.create_batch(3)
    for customer, frequency in zip(customers, (0, 0, 1), strict=True):
        _value(customer, run, frequency=frequency, recency=0.0)
    body = _login(client, agent).get(RUNS).content.decode()
    assert "ran off" not in body and "identify" not in body
    assert "Succeeded" not in body
    assert body.count("Partly computed") == 2  # the latest run's badge and its row in the history
    assert body.count("Predicted CLV and the chance that a customer is still active were not computed") == 1
    assert "for all 2,000 customers" in body
    assert "(1 of 3 buyers)" in body
    assert body.count('<th scope="col"') <= 8


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"n_purchasers": 0, "bgnbd_converged": None, "gg_converged": None}, "no customer has a paid order yet"),
        ({"n_purchasers": 5, "bgnbd_converged": True, "gg_converged": None}, "no customer has bought more than once yet"),
        ({"n_purchasers": 5, "bgnbd_converged": False, "gg_converged": False}, "too few customers have come back"),
    ],
)
def test_runs_page_names_why_the_model_was_not_fitted(client, agent, fields, reason):
    _run(status=ClvRun.Status.NOT_CONVERGED, n_customers=10, **fields)
    assert reason in _login(client, agent).get(RUNS).content.decode()


def test_runs_page_says_who_or_what_started_each_run(client, agent):
    named = UserFactory(username="maya", first_name="Maya", last_name="Manager")
    _run(as_of=dt.date(2026, 6, 1), trigger=ClvRun.Trigger.COMMAND)
    _run(as_of=dt.date(2026, 6, 2), trigger=ClvRun.Trigger.SCHEDULE)
    _run(as_of=dt.date(2026, 6, 3), trigger=ClvRun.Trigger.USER, created_by=named)
    body = _login(client, agent).get(RUNS).content.decode()
    assert "Command line" in body and "Schedule" in body
    assert "Maya Manager" in body and ">maya<" not in body


def test_failed_run_says_nothing_was_computed_and_keeps_the_error_out_of_the_way(client, agent):
    _run(status=ClvRun.Status.FAILED, error="ValueError: boom")
    body = _login(client, agent).get(RUNS).content.decode()
    assert "Nothing was computed" in body
    assert body.count("ValueError: boom") == 1 and "<details" in body


def test_manager_recompute_queues_a_run_after_commit(client, manager, django_capture_on_commit_callbacks, monkeypatch):
    enqueued = []
    monkeypatch.setattr("lifecycle.tasks.clv_recompute.delay", lambda run_id: enqueued.append(run_id))
    with django_capture_on_commit_callbacks(execute=True):
        response = _login(client, manager).post(RECOMPUTE)
    assert response.status_code == 302 and response["Location"] == RUNS
    run = ClvRun.objects.get()
    assert run.created_by == manager and run.job is not None
    assert enqueued == [run.pk]
    assert "queued" in client.get(RUNS).content.decode()


def test_a_second_recompute_is_refused_while_one_is_queued(client, manager, monkeypatch):
    monkeypatch.setattr("lifecycle.tasks.clv_recompute.delay", lambda run_id: None)
    _login(client, manager)
    client.post(RECOMPUTE)
    response = client.post(RECOMPUTE, follow=True)
    assert ClvRun.objects.count() == 1
    assert "already queued or running" in response.content.decode()


def test_recompute_needs_post_and_csrf(manager):
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    assert client.get(RECOMPUTE).status_code == 405
    assert client.post(RECOMPUTE).status_code == 403
    assert not ClvRun.objects.exists()


# --- Customer value panel -------------------------------------------------------------------------


def test_customer_detail_shows_the_value_panel(client, agent, valued):
    customer = valued["customers"][2]
    body = _login(client, agent).get(reverse("customers:detail", args=[customer.pk])).content.decode()
    panel = body[body.index('aria-labelledby="value-heading"') :]
    assert "40.00" in panel  # predicted CLV of the third customer (20 + 10 * 2)
    assert "75%" in panel  # p_alive 0.75
    assert "38.50" in panel and "400.00" in panel and "120.00" in panel
    assert "435" in panel and str(RfmSegment.LOYAL.label) in panel
    assert reverse("lifecycle:dashboard") in panel


def test_customer_detail_without_value(client, agent):
    customer = CustomerFactory()
    body = _login(client, agent).get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert "Not computed yet" in body


def test_value_panel_costs_one_query(client, agent, valued, django_assert_max_num_queries):
    customer = valued["customers"][0]
    _login(client, agent)
    url = reverse("customers:detail", args=[customer.pk])
    client.get(url)
    with django_assert_max_num_queries(100) as with_value:
        client.get(url)
    CustomerValue.objects.filter(customer=customer).delete()
    with django_assert_max_num_queries(100) as without_value:
        client.get(url)
    # the panel reads the value (with its run) in one query either way
    assert len(with_value.captured_queries) == len(without_value.captured_queries)
    value_queries = [q["sql"] for q in with_value.captured_queries if "lifecycle_customervalue" in q["sql"]]
    assert len(value_queries) == 1 and "lifecycle_clvrun" in value_queries[0]
