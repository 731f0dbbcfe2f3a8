"""The stage rules at their boundaries, manual moves, idempotent re-runs and the evaluation's query count."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import PeriodicTask

from core.exceptions import DomainError
from core.models import Job
from customers.models import Order
from lifecycle.models import CustomerHealth, CustomerValue, HealthHistory
from lifecycle.models_stages import CustomerStage, LifecycleRun, Stage, StageRules, StageTransition
from lifecycle.services.stages import customer_stage_set, lifecycle_evaluate, stage_rules_get
from lifecycle.services.stages_jobs import lifecycle_evaluate_for_job, lifecycle_evaluate_start
from tests.factories import CustomerFactory, EventFactory, OrderFactory

pytestmark = pytest.mark.django_db

T = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)


def _customer(signed_up_days_ago=400):
    return CustomerFactory(signed_up_at=T - signed_up_days_ago * DAY)


def _order(customer, at, status=Order.Status.PAID):
    return OrderFactory(customer=customer, ordered_at=at, status=status)


def _stage(customer) -> str:
    return CustomerStage.objects.get(customer=customer).stage


def _last_transition(customer) -> StageTransition:
    return StageTransition.objects.filter(customer=customer).order_by("-id").first()


def test_lead_without_purchase_or_activation():
    customer = _customer()
    lifecycle_evaluate(as_of=T)
    assert _stage(customer) == Stage.LEAD
    first = _last_transition(customer)
    assert (first.from_stage, first.to_stage, first.rule) == (None, Stage.LEAD, "first_evaluation")


def test_first_paid_order_makes_new_and_cancelled_ones_do_not():
    buyer, canceller = _customer(), _customer()
    _order(buyer, T - 5 * DAY)
    _order(canceller, T - 5 * DAY, status=Order.Status.CANCELLED)
    lifecycle_evaluate(as_of=T)
    assert _stage(buyer) == Stage.NEW
    assert _stage(canceller) == Stage.LEAD
    assert _last_transition(buyer).figures["paid_orders"] == 1


def test_activation_moment_counts_core_actions_within_the_window_boundary_included():
    activated, late = CustomerFactory(signed_up_at=T - 10 * DAY), CustomerFactory(signed_up_at=T - 10 * DAY)
    for hours in (1, 2):
        EventFactory(customer=activated, name="login", occurred_at=activated.signed_up_at + hours * dt.timedelta(hours=1))
        EventFactory(customer=late, name="login", occurred_at=late.signed_up_at + hours * dt.timedelta(hours=1))
    EventFactory(customer=activated, name="cart_add", occurred_at=activated.signed_up_at + 7 * DAY)  # exactly 7 days
    EventFactory(customer=late, name="cart_add", occurred_at=late.signed_up_at + 7 * DAY + SECOND)
    EventFactory(customer=late, name="email_open", occurred_at=late.signed_up_at + DAY)  # not a core action
    lifecycle_evaluate(as_of=T)
    assert _stage(activated) == Stage.NEW
    assert _last_transition(activated).rule == "first_evaluation"
    assert _last_transition(activated).figures["core_actions"] == 3
    assert _stage(late) == Stage.LEAD


def test_repeat_orders_exactly_30_days_apart_make_active_one_second_more_does_not():
    exact, over = _customer(), _customer()
    _order(exact, T - 40 * DAY)
    _order(exact, T - 10 * DAY)
    _order(over, T - 40 * DAY - SECOND)
    _order(over, T - 10 * DAY)
    lifecycle_evaluate(as_of=T)
    assert _stage(exact) == Stage.ACTIVE
    assert _stage(over) == Stage.NEW


def test_idle_boundaries_exactly_60_days_at_risk_exactly_120_churned():
    at_risk, almost, churned, almost_churned = (_customer() for _ in range(4))
    _order(at_risk, T - 60 * DAY)
    _order(almost, T - 60 * DAY + SECOND)
    _order(churned, T - 120 * DAY)
    _order(almost_churned, T - 120 * DAY + SECOND)
    lifecycle_evaluate(as_of=T)
    assert _stage(at_risk) == Stage.AT_RISK
    assert _stage(almost) == Stage.NEW
    assert _stage(churned) == Stage.CHURNED
    assert _stage(almost_churned) == Stage.AT_RISK
    assert _last_transition(churned).figures["days_idle"] == pytest.approx(120)


def test_an_event_keeps_a_buyer_from_being_idle():
    customer = _customer()
    _order(customer, T - 200 * DAY)
    EventFactory(customer=customer, name="page_view", occurred_at=T - 3 * DAY)
    lifecycle_evaluate(as_of=T)
    assert _stage(customer) == Stage.NEW


def test_orders_after_the_as_of_moment_are_ignored():
    customer = _customer()
    _order(customer, T + SECOND)
    lifecycle_evaluate(as_of=T)
    assert _stage(customer) == Stage.LEAD


def test_loyal_by_paid_orders_or_by_rfm_segment():
    by_orders, by_segment = _customer(), _customer()
    for days in (100, 80, 60, 40, 20):
        _order(by_orders, T - days * DAY)
    _order(by_segment, T - 5 * DAY)
    CustomerValue.objects.create(customer=by_segment, rfm_segment="champions", computed_at=T)
    lifecycle_evaluate(as_of=T)
    assert _stage(by_orders) == Stage.LOYAL
    assert _stage(by_segment) == Stage.LOYAL


def test_stages_move_both_ways_and_a_churned_customer_who_returns_is_active():
    customer = _customer()
    _order(customer, T - 200 * DAY)
    lifecycle_evaluate(as_of=T)
    assert _stage(customer) == Stage.CHURNED
    _order(customer, T - DAY)
    lifecycle_evaluate(as_of=T)
    assert _stage(customer) == Stage.ACTIVE
    last = _last_transition(customer)
    assert (last.from_stage, last.to_stage, last.rule) == (Stage.CHURNED, Stage.ACTIVE, "returned")


def test_rerun_on_the_same_data_writes_nothing_and_each_run_records_counts():
    customers = [_customer() for _ in range(3)]
    _order(customers[0], T - 5 * DAY)
    first = lifecycle_evaluate(as_of=T)
    assert first.status == LifecycleRun.Status.SUCCEEDED
    assert first.n_transitions == 3
    assert first.counts == {"first_evaluation": 3}
    before = list(CustomerStage.objects.order_by("pk").values_list("pk", "stage", "changed_at", "run_id"))
    with CaptureQueriesContext(connection) as ctx:
        second = lifecycle_evaluate(as_of=T)
    targets = ("INSERT INTO LIFECYCLE_CUSTOMERSTAGE", "UPDATE LIFECYCLE_CUSTOMERSTAGE", "INSERT INTO LIFECYCLE_STAGETRANSITION")
    computed = [q["sql"] for q in ctx.captured_queries if "INSERT INTO LIFECYCLE_STAGE_CHANGES" in q["sql"].upper()]
    writes = [q["sql"] for q in ctx.captured_queries if any(t in q["sql"].upper().replace('"', "") for t in targets)]
    assert computed and not writes  # the changes are computed set-based, none found, no write is even tried ...
    assert second.n_transitions == 0 and second.counts == {}
    assert {"figures", "stage_changes", "health_changes", "commit"} <= set(second.timings)
    assert "stage_writes" in first.timings and "stage_writes" not in second.timings
    assert list(CustomerStage.objects.order_by("pk").values_list("pk", "stage", "changed_at", "run_id")) == before
    assert StageTransition.objects.count() == 3  # ... and change no row


def test_the_evaluation_runs_the_same_queries_for_3_or_30_customers():
    def evaluate_counting() -> int:
        for model in (StageTransition, CustomerStage, CustomerHealth, HealthHistory):
            model.objects.all().delete()
        with CaptureQueriesContext(connection) as ctx:
            lifecycle_evaluate(as_of=T, chunk=10**9)
        return len(ctx.captured_queries)

    for _ in range(3):
        _order(_customer(), T - 5 * DAY)
    small = evaluate_counting()
    for _ in range(27):
        customer = _customer()
        _order(customer, T - 5 * DAY)
        EventFactory(customer=customer, occurred_at=T - DAY)
    assert evaluate_counting() == small
    assert CustomerStage.objects.count() == 30


def test_chunks_cover_every_customer():
    customers = [_customer() for _ in range(7)]
    for c in customers:
        _order(c, T - DAY)
    run = lifecycle_evaluate(as_of=T, chunk=2)
    assert run.n_customers == 7
    assert CustomerStage.objects.filter(stage=Stage.NEW).count() == 7


def test_manual_move_needs_a_manager_and_a_reason(manager, agent):
    customer = _customer()
    with pytest.raises(PermissionError):
        customer_stage_set(customer=customer, stage=Stage.LOYAL, reason="VIP", user=agent)
    with pytest.raises(DomainError) as err:
        customer_stage_set(customer=customer, stage=Stage.LOYAL, reason="  ", user=manager)
    assert err.value.field == "reason"
    with pytest.raises(DomainError):
        customer_stage_set(customer=customer, stage="gold", reason="VIP", user=manager)
    move = customer_stage_set(customer=customer, stage=Stage.LOYAL, reason="Key account", user=manager)
    assert (move.from_stage, move.to_stage, move.manual, move.changed_by, move.reason) == (None, "loyal", True, manager, "Key account")
    with pytest.raises(DomainError):
        customer_stage_set(customer=customer, stage=Stage.LOYAL, reason="again", user=manager)


def test_a_rule_never_undoes_a_manual_move_before_the_next_real_change(manager):
    customer = _customer()
    _order(customer, T - 200 * DAY)
    lifecycle_evaluate(as_of=T)
    assert _stage(customer) == Stage.CHURNED
    customer_stage_set(customer=customer, stage=Stage.LOYAL, reason="Signed a framework contract", user=manager)
    later = dt.datetime.now(dt.UTC) + DAY
    lifecycle_evaluate(as_of=later)
    assert _stage(customer) == Stage.LOYAL  # still idle: the manual stage holds
    assert _last_transition(customer).manual
    OrderFactory(customer=customer, ordered_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    lifecycle_evaluate(as_of=later)
    row = CustomerStage.objects.get(customer=customer)
    assert (row.stage, row.manual) == (Stage.ACTIVE, False)  # the next real change: rules apply again
    assert _last_transition(customer).rule == "not_loyal"


def test_only_one_evaluation_runs_at_a_time():
    LifecycleRun.objects.create(as_of=T)
    with pytest.raises(DomainError):
        lifecycle_evaluate(as_of=T)


def test_a_failed_evaluation_is_recorded(monkeypatch):
    from lifecycle.services import stages

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(stages, "_evaluate_range", boom)
    _customer()
    with pytest.raises(RuntimeError):
        lifecycle_evaluate(as_of=T)
    run = LifecycleRun.objects.get()
    assert run.status == LifecycleRun.Status.FAILED and "disk full" in run.error


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"churn_days": 60}, "churn_days"),
        ({"churn_days": 30}, "churn_days"),
        ({"activation_events": " , "}, "activation_events"),
        ({"repeat_orders": 1}, "repeat_orders"),
        ({"repeat_days": 0}, "repeat_days"),
        ({"loyal_orders": 2}, "loyal_orders"),
        ({"loyal_segments": "champions,gold"}, "loyal_segments"),
        ({"loyal_segments": "no_purchases"}, "loyal_segments"),
        ({"repeat_days": 200}, "repeat_days"),
    ],
)
def test_rules_that_cannot_fire_or_contradict_are_refused(changes, field):
    rules = stage_rules_get()
    for name, value in changes.items():
        setattr(rules, name, value)
    with pytest.raises(ValidationError) as err:
        rules.full_clean()
    assert field in err.value.message_dict


def test_default_rules_are_valid_and_a_single_row():
    rules = stage_rules_get()
    rules.full_clean()
    assert (rules.activation_count, rules.activation_days, rules.repeat_orders, rules.repeat_days) == (3, 7, 2, 30)
    assert (rules.at_risk_days, rules.churn_days) == (60, 120)
    StageRules(churn_days=200).save()
    assert StageRules.objects.count() == 1


def test_changed_rules_apply_on_the_next_run():
    customer = _customer()
    _order(customer, T - 50 * DAY)
    lifecycle_evaluate(as_of=T)
    assert _stage(customer) == Stage.NEW
    StageRules.objects.filter(pk=1).update(at_risk_days=45)
    lifecycle_evaluate(as_of=T)
    assert _stage(customer) == Stage.AT_RISK


def test_command_with_as_of(capsys):
    customer = _customer()
    _order(customer, dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC))
    call_command("evaluate_lifecycle", "--as-of", "2026-01-20", verbosity=0)
    assert _stage(customer) == Stage.NEW
    assert LifecycleRun.objects.get().as_of.date() == dt.date(2026, 1, 20)
    assert "first_evaluation: 1" in capsys.readouterr().out


def test_job_records_progress_and_counts_and_runs_once():
    customer = _customer()
    _order(customer, T - DAY)
    job = lifecycle_evaluate_start(as_of=dt.date(2026, 6, 1))
    with pytest.raises(DomainError):
        lifecycle_evaluate_start()
    lifecycle_evaluate_for_job(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert (job.done, job.total) == (1, 1)
    assert job.result == {"customers": 1, "transitions": 1, "first_evaluation": 1}
    assert lifecycle_evaluate_for_job(job_id=job.pk) is None  # delivered twice: runs once
    assert LifecycleRun.objects.count() == 1


def test_hourly_schedule_is_in_the_database():
    task = PeriodicTask.objects.get(name="Hourly lifecycle evaluation")
    assert task.task == "lifecycle.tasks.lifecycle_evaluate_hourly" and task.enabled
    assert task.crontab.hour == "*"


def test_hourly_task_evaluates(django_capture_on_commit_callbacks):
    from lifecycle.tasks import lifecycle_evaluate_hourly

    _order(_customer(), T - DAY)
    lifecycle_evaluate_hourly()
    assert CustomerStage.objects.count() == 1
    assert Job.objects.get(kind="lifecycle_evaluate").status == Job.Status.SUCCEEDED


def test_a_registered_advocate_source_makes_its_customers_loyal_until_turned_off():
    from lifecycle.health_hooks import advocate_sources, register_advocate_source

    referrer, other = _customer(), _customer()
    for customer in (referrer, other):
        _order(customer, T - 5 * DAY)
    # What the referrals app will register: customers with an approved referral (here: one customer),
    # restricted to the evaluation's id range, with a parameter name of its own.
    source = lambda: (  # noqa: E731
        "SELECT id AS customer_id FROM customers_customer WHERE id = %(adv_id)s AND id >= %(lo)s AND id < %(hi)s "
        "UNION ALL SELECT id FROM customers_customer WHERE id = %(adv_id)s",  # listed twice: still one row
        {"adv_id": referrer.pk},
    )
    assert "test" not in advocate_sources()
    register_advocate_source("test", source)
    try:
        run = lifecycle_evaluate(as_of=T)
        assert (_stage(referrer), _stage(other)) == (Stage.LOYAL, Stage.NEW)
        assert _last_transition(referrer).figures["advocate"] == 1
        assert _last_transition(other).figures["advocate"] == 0
        assert run.n_transitions == 2  # no duplicate rows from the source's repeated id
        assert lifecycle_evaluate(as_of=T).n_transitions == 0

        StageRules.objects.filter(pk=1).update(loyal_advocates=False)
        lifecycle_evaluate(as_of=T)
        assert _stage(referrer) == Stage.ACTIVE  # a loyal customer who no longer qualifies stays active
        assert _last_transition(referrer).rule == "not_loyal"
    finally:
        register_advocate_source("test", None)
    assert "test" not in advocate_sources()
