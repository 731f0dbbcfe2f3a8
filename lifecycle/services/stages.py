"""Lifecycle stages: the set-based evaluation of every customer and the manual move by a Manager.

The evaluation works by customer-id range (CHUNK customers at a time, so the progress bar moves and
no statement holds more than a range): one INSERT ... SELECT computes, in SQL, each customer's
figures (paid orders, repeat behaviour, core actions after sign-up, last activity, RFM segment) and
the stage the rules give, and keeps only the customers whose stage would change into a temporary
table; then one INSERT adds the customers who have no stage row yet, one UPDATE ... FROM moves the
others, and one INSERT ... SELECT logs a transition for exactly the rows this run changed. A re-run
on the same data finds no change and writes no stage or transition row.

The rules (parameters in lifecycle.models_stages.StageRules), in order, as of the moment T:
- lead: no paid order and no activation moment (activation_count core actions within
  activation_days of sign-up);
- churned: idle (no paid order, no event) for churn_days or more;
- at risk: idle for at_risk_days or more;
- loyal: loyal_orders paid orders or more, or an RFM segment listed as loyal;
- active: repeat_orders paid orders within repeat_days of each other (at any time), or the
  customer was already active, loyal, at risk or churned (a returning customer is active again);
- new: otherwise (a first paid order or the activation moment).
Boundaries count: idle for exactly 60 days is at risk; two orders exactly 30 days apart repeat.

A stage set by hand (`CustomerStage.manual`) is left alone until the customer's next order or event
after the move. The UPDATE compares the stage and its time with what the SELECT saw, so a manual
move that commits in between is never overwritten.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from core.roles import Role, role_at_least
from customers.models import Customer
from lifecycle.models_stages import CustomerStage, LifecycleRun, Stage, StageRules, StageTransition, TransitionRule

from .aggregate import end_of_day

JOB_KIND = "lifecycle_evaluate"
CHUNK = 50_000
# A run still "running" after this long crashed (a killed worker): the next one closes it.
STALE_RUN = dt.timedelta(hours=2)
CHANGES_TABLE = "lifecycle_stage_changes"

ProgressCallback = Callable[[int, int], None]


def stage_rules_get() -> StageRules:
    rules, _created = StageRules.objects.get_or_create(pk=1)
    return rules


# --- SQL dialect ----------------------------------------------------------------------------------


class _Dialect:
    """The few expressions PostgreSQL and SQLite write differently (time arithmetic, JSON)."""

    def __init__(self, vendor: str):
        self.pg = vendor == "postgresql"

    def within_days(self, earlier: str, later: str, param: str) -> str:
        """`later` is at most `param` days after `earlier`."""
        if self.pg:
            return f"{later} - {earlier} <= make_interval(days => %({param})s)"
        return f"julianday({later}) - julianday({earlier}) <= %({param})s"

    def days_since(self, moment_param: str, expr: str) -> str:
        if self.pg:
            return f"ROUND((EXTRACT(EPOCH FROM (%({moment_param})s - {expr})) / 86400.0)::numeric, 1)"
        return f"ROUND(julianday(%({moment_param})s) - julianday({expr}), 1)"

    def json_object(self) -> str:
        return "jsonb_build_object" if self.pg else "json_object"

    def text_type(self) -> str:
        return "varchar(32)" if self.pg else "text"

    def time_type(self) -> str:
        return "timestamptz" if self.pg else "text"


def _in_list(column: str, prefix: str, values: list[str], params: dict) -> str:
    """`column IN (%(prefix0)s, ...)`, or a false condition for an empty list."""
    if not values:
        return "1 = 0"
    names = []
    for i, value in enumerate(values):
        params[f"{prefix}{i}"] = value
        names.append(f"%({prefix}{i})s")
    return f"{column} IN ({', '.join(names)})"


def _changes_select(d: _Dialect, rules: StageRules, params: dict) -> str:
    """The customers of [lo, hi) whose stage the rules would change, with the figures behind it."""
    core = _in_list("ev.name", "core", rules.activation_event_list, params)
    loyal_segment = _in_list("f.rfm_segment", "seg", rules.loyal_segment_list, params)
    params.update(
        repeat_lag=rules.repeat_orders - 1,
        repeat_days=rules.repeat_days,
        activation_days=rules.activation_days,
        activation_count=rules.activation_count,
        loyal_orders=rules.loyal_orders,
    )
    signup = "COALESCE(c.signed_up_at, c.created_at)"
    if d.pg:
        early = f"ev.occurred_at <= {signup} + make_interval(days => %(activation_days)s)"
    else:
        early = f"julianday(ev.occurred_at) <= julianday({signup}) + %(activation_days)s"
    last_active = (
        "CASE WHEN o.last_order_at IS NULL THEN e.last_event_at "
        "WHEN e.last_event_at IS NULL OR o.last_order_at >= e.last_event_at THEN o.last_order_at "
        "ELSE e.last_event_at END"
    )
    return f"""
WITH paid AS (
    SELECT o.customer_id, o.ordered_at,
           LAG(o.ordered_at, %(repeat_lag)s) OVER (PARTITION BY o.customer_id ORDER BY o.ordered_at) AS earlier
    FROM customers_order o
    WHERE o.customer_id >= %(lo)s AND o.customer_id < %(hi)s AND o.status = 'paid' AND o.ordered_at <= %(t)s
), o AS (
    SELECT customer_id, COUNT(*) AS paid_orders, MAX(ordered_at) AS last_order_at,
           MAX(CASE WHEN earlier IS NOT NULL AND {d.within_days("earlier", "ordered_at", "repeat_days")} THEN 1 ELSE 0 END)
               AS repeated
    FROM paid GROUP BY customer_id
), e AS (
    SELECT ev.customer_id, MAX(ev.occurred_at) AS last_event_at,
           SUM(CASE WHEN {core} AND {early} THEN 1 ELSE 0 END) AS early_core
    FROM customers_activityevent ev JOIN customers_customer c ON c.id = ev.customer_id
    WHERE ev.customer_id >= %(lo)s AND ev.customer_id < %(hi)s AND ev.occurred_at <= %(t)s
    GROUP BY ev.customer_id
), f AS (
    SELECT c.id AS customer_id, cs.stage AS current_stage, cs.changed_at AS seen_changed_at,
           COALESCE(cs.manual, FALSE) AS manual,
           COALESCE(o.paid_orders, 0) AS paid_orders, COALESCE(o.repeated, 0) AS repeated,
           COALESCE(e.early_core, 0) AS early_core, {last_active} AS last_active_at, v.rfm_segment
    FROM customers_customer c
    LEFT JOIN lifecycle_customerstage cs ON cs.customer_id = c.id
    LEFT JOIN o ON o.customer_id = c.id
    LEFT JOIN e ON e.customer_id = c.id
    LEFT JOIN lifecycle_customervalue v ON v.customer_id = c.id
    WHERE c.id >= %(lo)s AND c.id < %(hi)s
), g AS (
    SELECT f.*, CASE
        WHEN f.paid_orders = 0 AND f.early_core < %(activation_count)s THEN 'lead'
        WHEN f.last_active_at <= %(churn_since)s THEN 'churned'
        WHEN f.last_active_at <= %(at_risk_since)s THEN 'at_risk'
        WHEN (%(loyal_orders)s > 0 AND f.paid_orders >= %(loyal_orders)s) OR {loyal_segment} THEN 'loyal'
        WHEN f.repeated = 1 OR f.current_stage IN ('active', 'loyal', 'at_risk', 'churned') THEN 'active'
        ELSE 'new' END AS target
    FROM f
)
SELECT g.customer_id, g.current_stage, g.seen_changed_at, g.target,
       CASE
           WHEN g.current_stage IS NULL THEN 'first_evaluation'
           WHEN g.target = 'lead' THEN 'first_evaluation'
           WHEN g.target = 'new' AND g.paid_orders > 0 THEN 'first_purchase'
           WHEN g.target = 'new' THEN 'activated'
           WHEN g.target = 'active' AND g.current_stage IN ('at_risk', 'churned') THEN 'returned'
           WHEN g.target = 'active' AND g.current_stage = 'loyal' THEN 'not_loyal'
           WHEN g.target = 'active' THEN 'repeat'
           WHEN g.target = 'loyal' THEN 'loyal'
           WHEN g.target = 'at_risk' THEN 'idle_at_risk'
           ELSE 'idle_churned' END AS rule,
       g.paid_orders, g.repeated, g.early_core, g.rfm_segment,
       {d.days_since("t", "g.last_active_at")} AS days_idle
FROM g
WHERE (g.current_stage IS NULL OR g.current_stage <> g.target)
  AND NOT (g.manual AND (g.last_active_at IS NULL OR g.last_active_at <= g.seen_changed_at))
"""


def _create_changes_table(cursor, d: _Dialect) -> None:
    text, moment = d.text_type(), d.time_type()
    cursor.execute(f"DROP TABLE IF EXISTS {CHANGES_TABLE}")
    cursor.execute(
        f"CREATE TEMPORARY TABLE {CHANGES_TABLE} (customer_id bigint PRIMARY KEY, current_stage {text}, "
        f"seen_changed_at {moment}, target {text}, rule {text}, paid_orders integer, repeated integer, "
        f"early_core integer, rfm_segment {text}, days_idle numeric)"
    )


def _evaluate_range(cursor, d: _Dialect, select_sql: str, params: dict) -> None:
    """Write the stage changes of one id range: four statements, whatever its size."""
    ch = CHANGES_TABLE
    cursor.execute(
        f"INSERT INTO {ch} (customer_id, current_stage, seen_changed_at, target, rule, paid_orders, repeated, "
        f"early_core, rfm_segment, days_idle) {select_sql}",
        params,
    )
    cursor.execute(
        "INSERT INTO lifecycle_customerstage (customer_id, stage, changed_at, manual, run_id) "
        f"SELECT customer_id, target, %(t)s, FALSE, %(run)s FROM {ch} WHERE current_stage IS NULL "
        "ON CONFLICT (customer_id) DO NOTHING",
        params,
    )
    cursor.execute(
        f"UPDATE lifecycle_customerstage AS cs SET stage = ch.target, changed_at = %(t)s, manual = FALSE, run_id = %(run)s "
        f"FROM {ch} AS ch WHERE cs.customer_id = ch.customer_id AND cs.stage = ch.current_stage "
        "AND cs.changed_at = ch.seen_changed_at",
        params,
    )
    figures = (
        f"{d.json_object()}('paid_orders', ch.paid_orders, 'repeat', ch.repeated, 'core_actions', ch.early_core, "
        "'rfm_segment', ch.rfm_segment, 'days_idle', ch.days_idle)"
    )
    cursor.execute(
        "INSERT INTO lifecycle_stagetransition (customer_id, from_stage, to_stage, at, rule, figures, manual, reason, run_id) "
        f"SELECT ch.customer_id, ch.current_stage, ch.target, %(t)s, ch.rule, {figures}, FALSE, '', %(run)s "
        f"FROM {ch} AS ch JOIN lifecycle_customerstage cs ON cs.customer_id = ch.customer_id "
        "WHERE cs.run_id = %(run)s AND cs.stage = ch.target AND cs.changed_at = %(t)s",
        params,
    )
    cursor.execute(f"DELETE FROM {ch}")


def lifecycle_run_create(*, as_of: dt.datetime | None = None, job=None) -> LifecycleRun:
    """A running evaluation; refuses while another runs (constraint lifecyclerun_one_running).
    A run left running for STALE_RUN (a killed worker) is closed as failed first."""
    now = timezone.now()
    with transaction.atomic():
        LifecycleRun.objects.filter(status=LifecycleRun.Status.RUNNING, started_at__lt=now - STALE_RUN).update(
            status=LifecycleRun.Status.FAILED, error=_("Abandoned: still running after two hours."), finished_at=now
        )
        try:
            with transaction.atomic():
                return LifecycleRun.objects.create(as_of=as_of or now, job=job)
        except IntegrityError:
            raise DomainError(_("A lifecycle evaluation is already running.")) from None


def lifecycle_evaluate(
    *, as_of: dt.date | dt.datetime | None = None, progress: ProgressCallback | None = None, job=None, chunk: int = CHUNK
) -> LifecycleRun:
    """Evaluate every customer's stage as of `as_of` (a date means the end of that day in the
    shop's time zone; default now). Returns the finished run with its counts by rule."""
    if isinstance(as_of, dt.date) and not isinstance(as_of, dt.datetime):
        as_of = end_of_day(as_of) - dt.timedelta(microseconds=1)
    run = lifecycle_run_create(as_of=as_of, job=job)
    try:
        return _evaluate(run=run, progress=progress, chunk=chunk)
    except Exception as exc:
        LifecycleRun.objects.filter(pk=run.pk).update(
            status=LifecycleRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now()
        )
        raise


def _evaluate(*, run: LifecycleRun, progress: ProgressCallback | None, chunk: int) -> LifecycleRun:
    started = time.perf_counter()
    rules = stage_rules_get()
    d = _Dialect(connection.vendor)
    adapt = connection.ops.adapt_datetimefield_value
    t = run.as_of
    bounds = Customer.objects.aggregate(lo=Min("id"), hi=Max("id"))
    total = Customer.objects.count()
    params: dict = {
        "t": adapt(t),
        "run": run.pk,
        "at_risk_since": adapt(t - dt.timedelta(days=rules.at_risk_days)),
        "churn_since": adapt(t - dt.timedelta(days=rules.churn_days)),
    }
    select_sql = _changes_select(d, rules, params)
    if progress:
        progress(0, total)
    with connection.cursor() as cursor:
        _create_changes_table(cursor, d)
        if bounds["lo"] is not None:
            span = bounds["hi"] + 1 - bounds["lo"]
            for lo in range(bounds["lo"], bounds["hi"] + 1, chunk):
                with transaction.atomic():
                    _evaluate_range(cursor, d, select_sql, {**params, "lo": lo, "hi": lo + chunk})
                # Progress by the share of the id range covered: counting each range would cost a query.
                done = total * min(span, lo + chunk - bounds["lo"]) // span
                if progress:
                    progress(done, total)
        cursor.execute(f"DROP TABLE IF EXISTS {CHANGES_TABLE}")
    counts = dict(StageTransition.objects.filter(run=run).values_list("rule").annotate(n=Count("id")).order_by())
    run.status = LifecycleRun.Status.SUCCEEDED
    run.finished_at = timezone.now()
    run.n_customers = total
    run.counts = counts
    run.n_transitions = sum(counts.values())
    run.timings = {"total": round(time.perf_counter() - started, 3)}
    run.save(update_fields=["status", "finished_at", "n_customers", "counts", "n_transitions", "timings"])
    return run


# --- Manual moves ---------------------------------------------------------------------------------


def customer_stage_set(*, customer: Customer, stage: str, reason: str, user) -> StageTransition:
    """A Manager moves a customer to `stage` with a reason; logged as a manual transition. The
    evaluation leaves the stage alone until the customer's next order or event."""
    if not role_at_least(user, Role.MANAGER):
        raise PermissionError(_("Only a Manager may change a customer's stage."))
    if stage not in Stage.values:
        raise DomainError(_("Choose a valid stage."), field="stage")
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("Say why you change the stage."), field="reason")
    now = timezone.now()
    with transaction.atomic():
        # The row is locked (or created) before the check, so two moves at once are logged in turn.
        current, created = CustomerStage.objects.select_for_update().get_or_create(
            customer=customer, defaults={"stage": stage, "changed_at": now, "manual": True}
        )
        from_stage = None if created else current.stage
        if not created:
            if current.stage == stage:
                raise DomainError(_("The customer is already in this stage."), field="stage")
            current.stage, current.changed_at, current.manual, current.run = stage, now, True, None
            current.save(update_fields=["stage", "changed_at", "manual", "run"])
        return StageTransition.objects.create(
            customer=customer,
            from_stage=from_stage,
            to_stage=stage,
            at=now,
            rule=TransitionRule.MANUAL,
            manual=True,
            changed_by=user,
            reason=reason,
        )
