"""The numpy path of the lifecycle figures (PostgreSQL) against the SQL aggregates, its oracle:
the figures table both fill must be equal row for row, on every boundary the rules draw."""

import datetime as dt
import random

import pytest
from django.db import connection

from customers.models import Customer, Order
from lifecycle.models import CustomerValue
from lifecycle.models_stages import CustomerStage, StageTransition
from lifecycle.services import stages, stages_figures
from lifecycle.services.health import health_rules_get
from lifecycle.services.stages import lifecycle_evaluate, stage_rules_get
from tests.factories import CustomerFactory, EventFactory, OrderFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the numpy path reads PostgreSQL's binary arrays"),
]

T = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
US = dt.timedelta(microseconds=1)
BUCKET = stages_figures.BUCKET


def figures_table(*, fast: bool, chunk: int, as_of: dt.datetime = T) -> list[tuple]:
    """Every row of the figures table the evaluation fills range by range, in customer-id order."""
    d = stages._Dialect(connection.vendor)
    params, sql, settings = stages._prepare(as_of, d, fast=fast)
    ids = Customer.objects.order_by("id").values_list("id", flat=True)
    activity = stages_figures.Activity(settings, parallel=True) if fast else None
    rows = []
    with connection.cursor() as cursor:
        stages._create_temp_tables(cursor, d)
        if fast:
            stages_figures.activity_table_create(cursor)
        for lo in range(ids[0], ids.last() + 1, chunk):
            stages._fill_figures(cursor, sql, {**params, "lo": lo, "hi": lo + chunk}, activity)
            cursor.execute(f"SELECT {stages.FIGURE_COLUMNS} FROM {stages.FIGURES_TABLE} ORDER BY customer_id")
            rows += cursor.fetchall()
            cursor.execute(f"DELETE FROM {stages.FIGURES_TABLE}")
    return rows


def assert_same_figures(chunk: int, as_of: dt.datetime = T) -> list[tuple]:
    sql_rows = figures_table(fast=False, chunk=chunk, as_of=as_of)
    fast_rows = figures_table(fast=True, chunk=chunk, as_of=as_of)
    assert len(sql_rows) == Customer.objects.count()
    assert fast_rows == sql_rows
    return fast_rows


def _customer(pk=None, signed_up=T - 400 * DAY, **extra):
    return CustomerFactory(**({"pk": pk} if pk else {}), signed_up_at=signed_up, **extra)


def _boundaries() -> dict[str, dt.datetime]:
    rules, health = stage_rules_get(), health_rules_get()
    return {
        "window_since": T - health.window_days * DAY,
        "decline_since": T - health.decline_period_days * DAY,
        "previous_since": T - 2 * health.decline_period_days * DAY,
        "repeat": rules.repeat_days * DAY,
        "activation": rules.activation_days * DAY,
    }


def _tricky_data() -> dict[str, Customer]:
    b = _boundaries()
    core, breadth, service = stage_rules_get().activation_event_list, health_rules_get().breadth_event_list, health_rules_get().service_event_list
    c = {
        # Around a bucket boundary of the numpy path (ids are explicit, far above the factories' own).
        "repeat_exact": _customer(pk=BUCKET * 3 - 1),
        "repeat_plus_1us": _customer(pk=BUCKET * 3),
        "three_orders": _customer(pk=BUCKET * 3 + 1),
        "edges": _customer(pk=BUCKET * 5 + 7),
        "nothing": _customer(pk=BUCKET * 5 + 8),
        "events": _customer(pk=BUCKET * 7, signed_up=T - 20 * DAY),
        "no_signup": _customer(pk=BUCKET * 7 + 2, signed_up=None),
        "other_names": _customer(),
    }
    for at in (T - 100 * DAY, T - 100 * DAY + b["repeat"]):
        OrderFactory(customer=c["repeat_exact"], ordered_at=at)
    for at in (T - 100 * DAY, T - 100 * DAY + b["repeat"] + US):
        OrderFactory(customer=c["repeat_plus_1us"], ordered_at=at)
    for at in (T - 300 * DAY, T - 290 * DAY, T - 300 * DAY + b["repeat"], T - 200 * DAY, T - 200 * DAY + b["repeat"] + US):
        OrderFactory(customer=c["three_orders"], ordered_at=at)
    # The windows' edges (strict > after, <= up to T), refunds, cancellations, orders after T.
    for at in (b["window_since"], b["window_since"] + US, T, T + US):
        OrderFactory(customer=c["edges"], ordered_at=at)
    OrderFactory(customer=c["edges"], ordered_at=T - DAY, status=Order.Status.REFUNDED)
    OrderFactory(customer=c["edges"], ordered_at=T - DAY, status=Order.Status.CANCELLED)
    signup = c["events"].signed_up_at
    events = [
        (core[0], signup + b["activation"]),  # the activation window's boundary counts ...
        (core[1], signup + b["activation"] + US),  # ... a microsecond later does not
        (core[2], signup - DAY),  # before sign-up: within the window as the SQL writes it
        (core[0], b["decline_since"]),
        (core[0], b["decline_since"] + US),
        (core[1], b["previous_since"]),
        (core[1], b["previous_since"] + US),
        (breadth[-1], b["window_since"]),
        (breadth[-1], b["window_since"] + US),
        (breadth[-1], b["window_since"] + 2 * US),
        (breadth[1], T),
        (breadth[-1], T + US),
        (service[0], T - DAY),
        (service[0], b["window_since"]),
        ("no_such_feature", T - 2 * DAY),
    ]
    for name, at in events:
        EventFactory(customer=c["events"], name=name, occurred_at=at)
    Customer.objects.filter(pk=c["no_signup"].pk).update(created_at=T - 3 * DAY)
    for name, at in ((core[0], T - 3 * DAY + b["activation"]), (core[1], T - DAY), (core[2], T - 2 * DAY)):
        EventFactory(customer=c["no_signup"], name=name, occurred_at=at)
    EventFactory(customer=c["other_names"], name="no_such_feature", occurred_at=T - DAY)
    EventFactory(customer=c["other_names"], name="another", occurred_at=T + DAY)
    return c


@pytest.mark.parametrize("chunk", [4999, 2 * BUCKET, 10**9])
def test_the_numpy_figures_equal_the_sql_figures_on_the_boundaries(chunk):
    """4999 leaves most id ranges without a customer; 2 * BUCKET cuts between buckets."""
    c = _tricky_data()
    rows = {row[0]: row for row in assert_same_figures(chunk)}
    # A few figures read directly, so the comparison does not pass on two equal mistakes.
    assert rows[c["repeat_exact"].pk][4:6] == (2, 1)
    assert rows[c["repeat_plus_1us"].pk][4:6] == (2, 0)
    assert rows[c["three_orders"].pk][4:6] == (5, 1)
    assert rows[c["edges"].pk][4] == 3 and rows[c["edges"].pk][9] == 2  # up to T; window strictly after its start
    assert rows[c["nothing"].pk][4:8] == (0, 0, 0, None)
    # Early core actions: up to sign-up + 7 days inclusive, those before sign-up too (6 of 7).
    assert rows[c["events"].pk][6] == 6
    # Window actions strictly after the window's start; distinct breadth names; core 30 days against the 30 before.
    assert rows[c["events"].pk][9:14] == (9, 4, 1, 5, 2)
    assert rows[c["no_signup"].pk][6] == 2  # from created_at (the third is after T)


def test_three_repeat_orders_and_other_lists_give_the_same_figures():
    _tricky_data()
    rules, health = stage_rules_get(), health_rules_get()
    rules.repeat_orders, rules.loyal_orders, rules.activation_events = 3, 6, "login,cart_add"
    rules.save()
    health.breadth_events, health.service_events = "login,page_view,no_such_feature", "login"
    health.save()
    rows = {row[0]: row for row in assert_same_figures(BUCKET)}
    assert rows[3 * BUCKET + 1][5] == 1  # the 3rd order exactly 30 days after the 1st
    assert rows[3 * BUCKET - 1][5] == 0


def test_random_data_on_the_boundaries_gives_the_same_figures():
    rng = random.Random(11)
    b = _boundaries()
    moments = [T, b["window_since"], b["decline_since"], b["previous_since"], T - 200 * DAY, T - 200 * DAY + b["repeat"]]
    moments = [m + k * US for m in moments for k in (-1, 0, 1)] + [T + DAY]
    names = ["login", "page_view", "cart_add", "email_open", "support_ticket", "signup", "other"]
    customers = [_customer(pk=BUCKET * 2 - 20 + i, signed_up=rng.choice([*moments[:-1], None])) for i in range(40)]
    for customer in customers:
        for _ in range(rng.randrange(5)):
            OrderFactory(customer=customer, ordered_at=rng.choice(moments), status=rng.choice(["paid", "paid", "refunded", "cancelled"]))
        events = {(rng.choice(names), rng.choice(moments) + rng.randrange(3) * US) for _ in range(rng.randrange(8))}
        for name, at in events:
            EventFactory(customer=customer, name=name, occurred_at=at)
    assert_same_figures(11)
    assert_same_figures(BUCKET, as_of=b["decline_since"])


def test_the_evaluation_uses_the_numpy_path_and_decides_as_the_sql_path():
    c = _tricky_data()
    CustomerValue.objects.create(customer=c["edges"], rfm_segment="champions", computed_at=T)
    run = lifecycle_evaluate(as_of=T)
    assert "figures_read" in run.timings
    fast = sorted(CustomerStage.objects.values_list("customer_id", "stage"))
    transitions = sorted(StageTransition.objects.values_list("customer_id", "to_stage", "rule", "figures"))
    CustomerStage.objects.all().delete()
    StageTransition.objects.all().delete()
    run = stages._evaluate(run=stages.lifecycle_run_create(as_of=T), progress=None, chunk=stages.CHUNK, fast=False)
    assert "figures_read" not in run.timings
    assert sorted(CustomerStage.objects.values_list("customer_id", "stage")) == fast
    assert sorted(StageTransition.objects.values_list("customer_id", "to_stage", "rule", "figures")) == transitions
    stage = dict(fast)
    assert (stage[c["nothing"].pk], stage[c["repeat_exact"].pk], stage[c["edges"].pk]) == ("lead", "at_risk", "loyal")
