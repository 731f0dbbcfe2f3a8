"""Health score parts and churn-risk levels at their boundaries, history rows per change, the rules' validation."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from lifecycle.health_hooks import feedback_source, register_feedback_source
from lifecycle.models_health import CustomerHealth, HealthHistory
from lifecycle.services.health import health_rules_get
from lifecycle.services.stages import lifecycle_evaluate
from tests.factories import CustomerFactory, EventFactory, OrderFactory

pytestmark = pytest.mark.django_db

T = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def _buyer(order_days_ago=100):
    customer = CustomerFactory(signed_up_at=T - 400 * DAY)
    OrderFactory(customer=customer, ordered_at=T - order_days_ago * DAY)
    return customer


def _events(customer, name, count, *, start, step=HOUR):
    for i in range(count):
        EventFactory(customer=customer, name=name, occurred_at=start + i * step)


def _health(customer) -> CustomerHealth:
    return CustomerHealth.objects.get(customer=customer)


def test_full_marks_and_each_part_stored():
    customer = _buyer()
    for name in ("login", "page_view", "cart_add", "email_open"):
        _events(customer, name, 3, start=T - 2 * DAY)
    lifecycle_evaluate(as_of=T)
    health = _health(customer)
    parts = (health.activity_points, health.breadth_points, health.service_points, health.feedback_points)
    assert parts == (40, 30, 20, 5)  # feedback neutral: half its weight
    assert health.score == 95


def test_partial_parts_round_down_and_add_up():
    customer = _buyer()
    _events(customer, "login", 4, start=T - 2 * DAY)
    _events(customer, "support_ticket", 1, start=T - 3 * DAY)
    lifecycle_evaluate(as_of=T)
    health = _health(customer)
    # 5 actions of 12 -> 40*5//12 = 16; 1 of 4 features -> 7; 1 ticket of 3 -> 20*2//3 = 13.
    assert (health.activity_points, health.breadth_points, health.service_points) == (16, 7, 13)
    assert health.score == 16 + 7 + 13 + 5


def test_events_outside_the_window_do_not_count():
    customer = _buyer()
    _events(customer, "login", 12, start=T - 40 * DAY)
    lifecycle_evaluate(as_of=T)
    assert _health(customer).activity_points == 0


def test_feedback_source_feeds_the_feedback_part():
    customer = _buyer()
    installed = feedback_source()  # the feedback app's, put back after
    register_feedback_source(lambda: ("SELECT id AS customer_id, 80 AS positivity FROM customers_customer WHERE id = %(fb_id)s", {"fb_id": customer.pk}))
    try:
        lifecycle_evaluate(as_of=T)
    finally:
        register_feedback_source(installed)
    assert _health(customer).feedback_points == 8


def test_history_row_per_change_and_none_on_a_rerun():
    customer = _buyer()
    lifecycle_evaluate(as_of=T)
    assert HealthHistory.objects.filter(customer=customer).count() == 1
    lifecycle_evaluate(as_of=T)
    assert HealthHistory.objects.filter(customer=customer).count() == 1
    _events(customer, "login", 6, start=T - DAY)
    lifecycle_evaluate(as_of=T)
    history = list(HealthHistory.objects.filter(customer=customer).order_by("id").values_list("activity_points", flat=True))
    assert history == [0, 20]
    assert _health(customer).activity_points == 20


def test_the_database_refuses_a_score_that_is_not_the_sum_of_its_parts():
    customer = _buyer()
    with pytest.raises(IntegrityError):
        CustomerHealth.objects.create(
            customer=customer, score=90, activity_points=40, breadth_points=30, service_points=10, feedback_points=5, changed_at=T
        )


def test_leads_have_no_churn_risk():
    lead = CustomerFactory(signed_up_at=T - 400 * DAY)
    lifecycle_evaluate(as_of=T)
    assert _health(lead).churn_risk == 0


def test_level_3_idle_exactly_45_days_and_not_a_second_less():
    idle, almost = _buyer(45), _buyer(60)
    EventFactory(customer=almost, name="login", occurred_at=T - 45 * DAY + dt.timedelta(seconds=1))
    lifecycle_evaluate(as_of=T)
    assert _health(idle).churn_risk == 3
    assert _health(almost).churn_risk == 2  # active 45 days less a second ago, but no core action for 14 days


def test_level_2_no_core_action_exactly_14_days():
    exact, within = _buyer(10), _buyer(10)
    EventFactory(customer=exact, name="login", occurred_at=T - 14 * DAY)
    EventFactory(customer=within, name="login", occurred_at=T - 14 * DAY + dt.timedelta(seconds=1))
    lifecycle_evaluate(as_of=T)
    assert _health(exact).churn_risk == 2
    assert _health(within).churn_risk == 0


def test_level_1_exactly_minus_30_percent_and_not_minus_20():
    dropped, steady = _buyer(10), _buyer(10)
    for customer, recent in ((dropped, 7), (steady, 8)):
        _events(customer, "login", 10, start=T - 50 * DAY, step=DAY)
        _events(customer, "page_view", recent, start=T - 8 * DAY, step=DAY)
    lifecycle_evaluate(as_of=T)
    assert _health(dropped).churn_risk == 1
    assert _health(steady).churn_risk == 0


def test_band_colours():
    rules = health_rules_get()
    assert [rules.band(s) for s in (None, 0, 49, 50, 74, 75, 100)] == ["", "red", "red", "yellow", "yellow", "green", "green"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"weight_activity": 50}, "weight_activity"),
        ({"breadth_events": " "}, "breadth_events"),
        ({"red_below": 80}, "yellow_below"),
        ({"decline_percent": 100}, "decline_percent"),
        ({"idle_days": 14}, "idle_days"),
        ({"activity_target": 0}, "activity_target"),
    ],
)
def test_rules_that_cannot_work_are_refused(changes, field):
    rules = health_rules_get()
    for name, value in changes.items():
        setattr(rules, name, value)
    with pytest.raises(ValidationError) as err:
        rules.full_clean()
    assert field in err.value.message_dict


def test_default_rules_are_valid():
    rules = health_rules_get()
    rules.full_clean()
    assert (rules.weight_activity, rules.weight_breadth, rules.weight_service, rules.weight_feedback) == (40, 30, 20, 10)
