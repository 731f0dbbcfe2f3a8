"""The CLV recompute job: aggregation conventions, edge cases, idempotency, query count, failures."""

import datetime as dt
import threading
import zoneinfo
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.exceptions import DomainError
from core.models import Job
from customers.models import Order
from lifecycle.clv.base import FitResult
from lifecycle.clv.bgnbd import BgNbdParams
from lifecycle.models import ClvRun, ClvRunChunk, CustomerValue, RfmSegment
from lifecycle.services import clv_runs as clv_service
from lifecycle.services import scoring as scoring_service
from lifecycle.services.clv_runs import clv_run_create, clv_run_execute
from lifecycle.services.formula import MAX_LIFESPAN_YEARS, lifespans_by_channel
from tests.factories import CustomerFactory, OrderFactory
from tests.lifecycle.clv_orders import AS_OF, local_noon, seed_histories

pytestmark = pytest.mark.django_db

VALUE_FIELDS = [
    f.name for f in CustomerValue._meta.concrete_fields if f.name not in ("customer", "run", "computed_at")
]


def order(customer, when, amount="10.00", status=Order.Status.PAID):
    return OrderFactory(customer=customer, ordered_at=when, amount=Decimal(amount), status=status)


def run_now(as_of=AS_OF) -> ClvRun:
    return clv_run_execute(run_id=clv_run_create(as_of=as_of).pk)


def value(customer) -> CustomerValue:
    return CustomerValue.objects.get(customer=customer)


@pytest.fixture
def population():
    """Enough customers for both models to fit."""
    return seed_histories(300)


def test_population_fits_and_scores_every_customer(population):
    run = run_now()
    assert run.status == ClvRun.Status.SUCCEEDED, run.message
    assert run.bgnbd_converged and run.gg_converged
    assert run.n_customers == CustomerValue.objects.count() == 300
    assert 0 < run.n_triples <= run.n_purchasers
    assert not CustomerValue.objects.filter(orders_count__gt=0, predicted_clv__isnull=True).exists()
    assert run.job.status == Job.Status.SUCCEEDED and run.job.done == run.job.total == 300
    assert run.finished_at and run.timings["aggregate_s"] >= 0


def test_same_day_orders_are_one_transaction_with_their_sum(population):
    customer = CustomerFactory()
    first = AS_OF - dt.timedelta(days=28)
    order(customer, local_noon(first, 9), "20.00")
    order(customer, local_noon(first, 18), "30.00")
    order(customer, local_noon(first + dt.timedelta(days=7)), "10.00")
    order(customer, local_noon(first + dt.timedelta(days=14), 8), "15.00")
    order(customer, local_noon(first + dt.timedelta(days=14), 20), "25.00")
    run_now()
    v = value(customer)
    assert v.orders_count == 5
    assert v.historic_value == Decimal("100.00")
    assert v.aov == Decimal("20.00")
    assert v.frequency == 2  # three purchase days
    assert v.recency == pytest.approx(2.0)  # 14 days in weeks
    assert pytest.approx(4.0) == v.T
    assert v.monetary_value == Decimal("25.00")  # mean of 10 and 15 + 25, first day excluded
    assert 0 <= v.p_alive <= 1 and v.expected_order_value > 0 and v.predicted_clv > 0


def test_days_are_counted_in_the_shop_time_zone(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    customer = CustomerFactory()
    utc = dt.UTC
    # 22:30 and 23:30 UTC on 10 March are 23:30 on the 10th and 00:30 on the 11th in Berlin.
    order(customer, dt.datetime(2026, 3, 10, 22, 30, tzinfo=utc))
    order(customer, dt.datetime(2026, 3, 10, 23, 30, tzinfo=utc))
    run_now(as_of=dt.date(2026, 3, 20))
    assert value(customer).frequency == 1

    settings.TIME_ZONE = "UTC"
    run_now(as_of=dt.date(2026, 3, 20))
    assert value(customer).frequency == 0


def test_only_orders_up_to_the_end_of_the_as_of_day_count(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    tz = zoneinfo.ZoneInfo("Asia/Shanghai")
    customer = CustomerFactory()
    order(customer, dt.datetime(2026, 6, 1, 12, tzinfo=tz), "10.00")
    order(customer, dt.datetime(2026, 6, 30, 23, 59, tzinfo=tz), "20.00")
    order(customer, dt.datetime(2026, 7, 1, 0, 1, tzinfo=tz), "40.00")
    run_now(as_of=dt.date(2026, 6, 30))
    v = value(customer)
    assert (v.orders_count, v.historic_value, v.frequency) == (2, Decimal("30.00"), 1)
    assert pytest.approx(29 / 7) == v.T


def test_refunded_and_cancelled_orders(population):
    customer = CustomerFactory()
    day = AS_OF - dt.timedelta(days=10)
    order(customer, local_noon(day), "50.00")
    order(customer, local_noon(day - dt.timedelta(days=3)), "20.00", Order.Status.REFUNDED)
    order(customer, local_noon(day - dt.timedelta(days=5)), "100.00", Order.Status.CANCELLED)
    run_now()
    v = value(customer)
    assert (v.orders_count, v.revenue, v.refunds, v.historic_value) == (1, Decimal("70.00"), Decimal("20.00"), Decimal("50.00"))
    assert v.frequency == 0 and pytest.approx(10 / 7) == v.T  # the refunded day is no purchase day


def test_edge_customers(population):
    one_order, only_refunds, zero_amounts, no_orders = CustomerFactory.create_batch(4)
    order(one_order, local_noon(AS_OF - dt.timedelta(days=70)), "42.00")
    order(only_refunds, local_noon(AS_OF - dt.timedelta(days=20)), "20.00", Order.Status.REFUNDED)
    order(zero_amounts, local_noon(AS_OF - dt.timedelta(days=30)), "0.00")
    order(zero_amounts, local_noon(AS_OF - dt.timedelta(days=10)), "0.00")
    run = run_now()
    assert run.status == ClvRun.Status.SUCCEEDED

    v = value(one_order)
    assert (v.frequency, v.recency, v.monetary_value) == (0, 0.0, Decimal("0.00"))
    assert v.p_alive == 1.0  # BG/NBD: no repeat purchase, no chance to have dropped out yet
    assert v.expected_order_value == Decimal(str(round(run.gg_p * run.gg_v / (run.gg_q - 1), 2)))
    assert v.purchase_frequency == pytest.approx(1.0)  # tenure floored at one year
    assert v.formula_clv == (Decimal("42.00") * Decimal(str(v.lifespan_years))).quantize(Decimal("0.01"))

    v = value(only_refunds)
    assert (v.orders_count, v.historic_value, v.refunds, v.aov, v.formula_clv) == (
        0, Decimal("0.00"), Decimal("20.00"), Decimal("0.00"), Decimal("0.00")
    )
    assert v.frequency is None and v.p_alive is None and v.predicted_clv is None and v.r_score is None
    assert v.rfm_segment == RfmSegment.NO_PURCHASES

    v = value(zero_amounts)
    assert (v.orders_count, v.historic_value, v.frequency, v.monetary_value) == (2, Decimal("0.00"), 1, Decimal("0.00"))
    assert v.predicted_clv is not None and v.predicted_clv >= 0

    v = value(no_orders)
    assert (v.orders_count, v.historic_value, v.formula_clv) == (0, Decimal("0.00"), Decimal("0.00"))
    assert v.predicted_clv is None and v.rfm_segment == RfmSegment.NO_PURCHASES


def test_a_single_customer_gives_a_clear_outcome():
    customer = CustomerFactory()
    order(customer, local_noon(AS_OF - dt.timedelta(days=40)), "30.00")
    order(customer, local_noon(AS_OF - dt.timedelta(days=20)), "30.00")
    run = run_now()
    assert run.status == ClvRun.Status.NOT_CONVERGED
    assert run.message
    v = value(customer)
    assert v.historic_value == Decimal("60.00") and v.formula_clv > 0
    assert v.predicted_clv is None  # an unidentified fit is never used
    assert run.job.status == Job.Status.SUCCEEDED


def test_no_orders_at_all():
    CustomerFactory.create_batch(3)
    run = run_now()
    assert run.status == ClvRun.Status.NOT_CONVERGED
    assert "cannot be fitted" in run.message
    assert run.bgnbd_converged is None
    assert CustomerValue.objects.filter(rfm_segment=RfmSegment.NO_PURCHASES, historic_value=0).count() == 3


def test_no_customers_at_all():
    run = run_now()
    assert run.status == ClvRun.Status.NOT_CONVERGED
    assert run.n_customers == 0 and not ClvRunChunk.objects.filter(run=run).exists()
    assert run.job.status == Job.Status.SUCCEEDED


def _snapshot():
    return list(CustomerValue.objects.order_by("customer_id").values_list("customer_id", *VALUE_FIELDS))


def test_a_rerun_on_the_same_data_gives_the_same_numbers(population):
    first = run_now()
    before = _snapshot()
    second = run_now()
    assert _snapshot() == before
    params = ("bgnbd_r", "bgnbd_alpha", "bgnbd_a", "bgnbd_b", "gg_p", "gg_q", "gg_v", "bgnbd_log_likelihood")
    assert [getattr(first, p) for p in params] == [getattr(second, p) for p in params]
    assert set(CustomerValue.objects.values_list("run_id", flat=True)) == {second.pk}


def test_chunks_give_the_same_numbers_as_one_pass(population, settings):
    run_now()
    one_pass = _snapshot()
    settings.CLV_CHUNK_SIZE = 70
    run = run_now()
    assert ClvRunChunk.objects.filter(run=run).count() == 5
    assert not ClvRunChunk.objects.filter(run=run, done_at=None).exists()
    assert _snapshot() == one_pass


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_side_by_side_connections_and_chunks_give_the_same_numbers_as_one(settings):
    # Outside a test transaction, so the run really reads on two connections and scores its five
    # chunks on two threads, each writing to the generation table; then one publish.
    seed_histories(300)
    settings.CLV_AGGREGATE_CONNECTIONS, settings.CLV_CHUNK_SIZE = 1, 10_000
    run_now()
    one_pass = _snapshot()
    settings.CLV_AGGREGATE_CONNECTIONS, settings.CLV_CHUNK_SIZE = 2, 70
    run = run_now()
    assert run.status == ClvRun.Status.SUCCEEDED and "publish_s" in run.timings
    assert ClvRunChunk.objects.filter(run=run, done_at=None).count() == 0 and run.chunks.count() == 5
    assert _snapshot() == one_pass
    assert set(CustomerValue.objects.values_list("run_id", flat=True)) == {run.pk}


def _count_queries(n_customers: int, prefix: str) -> int:
    seed_histories(n_customers, seed=n_customers, prefix=prefix)
    run = clv_run_create(as_of=AS_OF)
    with CaptureQueriesContext(connection) as queries:
        clv_run_execute(run_id=run.pk)
    ClvRun.objects.filter(pk=run.pk).update(status=ClvRun.Status.SUCCEEDED)
    return len(queries)


def test_query_count_does_not_grow_with_customers(settings):
    settings.CLV_CHUNK_SIZE = 10_000
    if connection.vendor == "postgresql":
        # Fresh statistics: orders committed by earlier tests must not make one of the two runs
        # (and not the other) ANALYZE them first (statistics_refresh).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE customers_order, customers_customer")
    small = _count_queries(40, "A")
    large = _count_queries(400, "B")
    assert small == large
    # A constant: savepoints, run and job bookkeeping, the aggregate, one write per chunk; on
    # PostgreSQL also the generation's DDL (create, then per index and constraint a build and a
    # rename at publish), which follows the schema, not the data.
    assert large < (50 if connection.vendor == "sqlite" else 130)


def _not_converged(*args, **kwargs):
    return FitResult(params=BgNbdParams(r=1.0, alpha=1.0, a=1.0, b=1.0), log_likelihood=-1.0, converged=False, message="flat likelihood", n=1)


def test_a_fit_that_does_not_converge_is_recorded_and_never_used(population, monkeypatch):
    monkeypatch.setattr(scoring_service, "bgnbd_fit", _not_converged)
    run = run_now()
    assert run.status == ClvRun.Status.NOT_CONVERGED
    assert run.bgnbd_converged is False and "flat likelihood" in run.message
    assert not CustomerValue.objects.filter(p_alive__isnull=False).exists()
    assert not CustomerValue.objects.filter(predicted_clv__isnull=False).exists()
    assert CustomerValue.objects.filter(formula_clv__gt=0, historic_value__gt=0, r_score__isnull=False).count() > 100


def test_gamma_gamma_not_converged_keeps_the_purchase_model(population, monkeypatch):
    def gg_not_converged(*args, **kwargs):
        from lifecycle.clv.gamma_gamma import GammaGammaParams

        return FitResult(params=GammaGammaParams(p=1, q=0.5, v=1), log_likelihood=-1.0, converged=False, message="q <= 1", n=1)

    monkeypatch.setattr(scoring_service, "gamma_gamma_fit", gg_not_converged)
    run = run_now()
    assert run.status == ClvRun.Status.NOT_CONVERGED and run.bgnbd_converged and run.gg_converged is False
    assert CustomerValue.objects.filter(p_alive__isnull=False).exists()
    assert not CustomerValue.objects.filter(expected_order_value__isnull=False).exists()
    assert not CustomerValue.objects.filter(predicted_clv__isnull=False).exists()


def test_an_error_marks_the_run_and_its_job_failed(population, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(clv_service, "values_generation_write", broken)
    run = clv_run_create(as_of=AS_OF)
    with pytest.raises(RuntimeError):
        clv_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == ClvRun.Status.FAILED and "disk full" in run.error
    assert run.job.status == Job.Status.FAILED


def test_only_one_run_at_a_time():
    clv_run_create(as_of=AS_OF)
    with pytest.raises(DomainError):
        clv_run_create(as_of=AS_OF)


def test_a_run_unfinished_for_six_hours_is_taken_as_crashed():
    stuck = clv_run_create(as_of=AS_OF)
    ClvRun.objects.filter(pk=stuck.pk).update(status=ClvRun.Status.RUNNING, created_at=timezone.now() - dt.timedelta(hours=7))
    fresh = clv_run_create(as_of=AS_OF)
    stuck.refresh_from_db()
    assert stuck.status == ClvRun.Status.FAILED and stuck.finished_at and "six hours" in stuck.error
    assert fresh.status == ClvRun.Status.QUEUED


def test_the_database_refuses_a_second_active_run():
    ClvRun.objects.create(as_of=AS_OF, status=ClvRun.Status.RUNNING)
    with pytest.raises(IntegrityError), transaction.atomic():
        ClvRun.objects.create(as_of=AS_OF, status=ClvRun.Status.QUEUED)
    ClvRun.objects.create(as_of=AS_OF, status=ClvRun.Status.SUCCEEDED)  # finished runs are not limited


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_starts_create_one_run():
    barrier = threading.Barrier(4)
    outcomes = []

    def start():
        try:
            barrier.wait()
            outcomes.append(clv_run_create(as_of=AS_OF).pk)
        except DomainError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=str).count("refused") == 3
    assert ClvRun.objects.count() == 1 and Job.objects.filter(kind="clv_recompute").count() == 1


def test_a_finished_run_is_not_run_again(population):
    run = run_now()
    computed = CustomerValue.objects.values_list("computed_at", flat=True).first()
    clv_run_execute(run_id=run.pk)
    assert CustomerValue.objects.values_list("computed_at", flat=True).first() == computed


def test_lifespan_comes_from_churn_per_channel():
    import numpy as np

    from lifecycle.services.aggregate import OrderStats

    # Channel 1: 10 churned buyers active 365 days each, 10 active ones 730 days old: 10950 days / 10.
    # Channel 2: no churn: the overall figure.
    n = 25
    churned = np.array([True] * 10 + [False] * 10 + [False] * 5)
    first = np.array([0] * 10 + [270] * 10 + [900] * 5)
    last = np.where(churned, 365, 990)
    stats = OrderStats(
        customer_id=np.arange(1, n + 1),
        channel_id=np.array([1] * 20 + [2] * 5),
        orders_count=np.ones(n, dtype=np.int64),
        paid_cents=np.ones(n, dtype=np.int64),
        refund_cents=np.zeros(n, dtype=np.int64),
        purchase_days=np.ones(n, dtype=np.int64),
        first_day=first,
        last_day=last,
        first_day_cents=np.ones(n, dtype=np.int64),
    )
    lifespans = lifespans_by_channel(stats, as_of_day=1000, churn_days=365)
    assert lifespans["channels"]["1"] == pytest.approx((10 * 365 + 10 * 730) / 10 / 365.25)
    assert "2" not in lifespans["channels"]
    assert lifespans["overall"] == pytest.approx((10 * 365 + 10 * 730 + 5 * 100) / 10 / 365.25)
    no_churn = lifespans_by_channel(stats, as_of_day=1000, churn_days=5000)
    assert no_churn["overall"] == MAX_LIFESPAN_YEARS
