"""Lifecycle stages: the set-based evaluation of every customer and the manual move by a Manager.

The evaluation works by customer-id range (CHUNK customers at a time, so the progress bar moves and
no statement holds more than a range): one INSERT ... SELECT fills a temporary table with each
customer's figures (paid orders, repeat behaviour, core actions after sign-up, last activity, RFM
segment, health figures). On PostgreSQL the activity figures come from stages_figures (orders and
events read once per run as binary arrays, computed in numpy, each range's rows copied into a
temporary table the INSERT joins); elsewhere, and as the tests' oracle, the INSERT computes them with
SQL aggregates over the range's orders and events. Another keeps the customers whose stage would
change (the stage the rules give) in a second temporary table; then one INSERT adds the customers
who have no stage row yet, one UPDATE ... FROM moves the others, and one INSERT ... SELECT logs a
transition for exactly the rows this run changed (on PostgreSQL all three are one statement: the
transitions come from the changes table for the new rows and from the RETURNING of the UPDATE for
the moved ones, so the stage table is not read again). A re-run on the same data finds no change
and writes no stage or transition row; a range with no change skips its writes. Each range commits
asynchronously (its rows are derived: a server crash loses at most the last ranges, which the next
run writes again) and the run records its seconds per phase (LifecycleRun.timings). The rows have
no database foreign keys (checked once per row at commit, they cost a third of a first run): each
range holds customer_rows_lock before its figures read the customers, and a customer deletion takes
it exclusively before its trigger deletes the customer's rows (lifecycle.models_stages).

The rules (parameters in lifecycle.models_stages.StageRules), in order, as of the moment T:
- lead: no paid order and no activation moment (activation_count core actions within
  activation_days of sign-up);
- churned: idle (no paid order, no event) for churn_days or more;
- at risk: idle for at_risk_days or more;
- loyal: loyal_orders paid orders or more, an RFM segment listed as loyal, feedback positivity of
  loyal_feedback or more (a promoter), or an advocate listed by a registered source (a successful
  referrer: lifecycle.health_hooks.register_advocate_source) while loyal_advocates is on;
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
from contextlib import contextmanager

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from core.roles import Role, role_at_least
from customers.models import Customer
from lifecycle.health_hooks import advocate_sources, feedback_source
from lifecycle.models_health import HealthRules
from lifecycle.models_stages import (
    CUSTOMER_ROWS_LOCK,
    CustomerStage,
    LifecycleRun,
    Stage,
    StageRules,
    StageTransition,
    TransitionRule,
)

from .aggregate import end_of_day
from .health import health_rules_get, health_select, health_table_create, health_write_changes, split_counts
from .stages_figures import ACTIVITY_TABLE, Activity, Settings, activity_select, activity_table_create

JOB_KIND = "lifecycle_evaluate"
# Customers per id range. Orders and events of a range are scattered over the whole table (they
# arrive in time order), so each range reads most of the table's pages: fewer, larger ranges read it
# fewer times (on the SQL path: the numpy path of PostgreSQL reads them once per run). 200,000 with
# WORK_MEM keeps each range's sort in memory (bench/bench_lifecycle.py).
CHUNK = 200_000
WORK_MEM = "64MB"
# A run still "running" after this long crashed (a killed worker): the next one closes it.
STALE_RUN = dt.timedelta(hours=2)
CHANGES_TABLE = "lifecycle_stage_changes"
FIGURES_TABLE = "lifecycle_figures"
HEALTH_TABLE = "lifecycle_health_changes"

ProgressCallback = Callable[[int, int], None]


def customer_rows_lock(cursor, *, exclusive: bool = False) -> None:
    """Call first in a transaction that writes stage, transition, health or history rows: a customer
    deletion (which takes the lock exclusively, migration 0014) waits for it and then deletes the
    rows it wrote; one that came first has finished before it reads any customer. PostgreSQL only:
    SQLite runs one writer at a time."""
    if connection.vendor == "postgresql":
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        cursor.execute(f"SELECT {function}(%s)", [CUSTOMER_ROWS_LOCK])


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

    def transition_figures(self, relation: str) -> tuple[str, str]:
        """(the figures of a transition as JSON, the FROM clause over `relation` (changes-table rows,
        as `ch`) it needs). PostgreSQL turns a row into jsonb a quarter faster than jsonb_build_object
        builds one (seconds a million rows on the first run); the keys and values are the same."""
        columns = (
            "ch.paid_orders, ch.repeated AS repeat, ch.early_core AS core_actions, ch.rfm_segment, ch.advocate, ch.days_idle"
        )
        if self.pg:
            return "to_jsonb(fig)", f"{relation} AS ch CROSS JOIN LATERAL (SELECT {columns}) fig"
        pairs = (
            "'paid_orders', ch.paid_orders, 'repeat', ch.repeated, 'core_actions', ch.early_core, "
            "'rfm_segment', ch.rfm_segment, 'advocate', ch.advocate, 'days_idle', ch.days_idle"
        )
        return f"json_object({pairs})", f"{relation} AS ch"

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


FIGURE_COLUMNS = (
    "customer_id, current_stage, seen_changed_at, manual, paid_orders, repeated, early_core, last_active_at, rfm_segment, "
    "window_actions, breadth, service, core_recent, core_previous, last_core_at, feedback, advocate"
)


def _figures_select(d: _Dialect, rules: StageRules, health: HealthRules, params: dict, *, activity: bool = False) -> str:
    """Every customer of [lo, hi) with the figures the stage, health and risk rules need: one pass
    over the range's orders and one over its events (the stage and value rows too are read for the
    range only: the planner does not carry c.id's bounds over to the joined tables); or, with `activity`, the range's rows of the
    activity table the numpy path filled (stages_figures: the same figures, computed once per run)."""
    core = _in_list("ev.name", "core", rules.activation_event_list, params)
    breadth = _in_list("ev.name", "breadth", health.breadth_event_list, params)
    service = _in_list("ev.name", "service", health.service_event_list, params)
    params.update(
        repeat_lag=rules.repeat_orders - 1,
        repeat_days=rules.repeat_days,
        activation_days=rules.activation_days,
    )
    signup = "COALESCE(c.signed_up_at, c.created_at)"
    if d.pg:
        early = f"ev.occurred_at <= {signup} + make_interval(days => %(activation_days)s)"
    else:
        early = f"julianday(ev.occurred_at) <= julianday({signup}) + %(activation_days)s"
    o, e = ("act", "act") if activity else ("o", "e")
    last_active = (
        f"CASE WHEN {o}.last_order_at IS NULL THEN {e}.last_event_at "
        f"WHEN {e}.last_event_at IS NULL OR {o}.last_order_at >= {e}.last_event_at THEN {o}.last_order_at "
        f"ELSE {e}.last_event_at END"
    )
    feedback_join, feedback = "", "NULL"
    source = feedback_source()
    if source is not None:
        sql, extra = source()
        params.update(extra)
        feedback_join, feedback = f"LEFT JOIN ({sql}) fb ON fb.customer_id = c.id", "fb.positivity"
    advocate_join, advocate = "", "0"
    sources = advocate_sources() if rules.loyal_advocates else {}
    if sources:
        selects = []
        for _name, source in sorted(sources.items()):
            sql, extra = source()
            params.update(extra)
            selects.append(f"SELECT customer_id FROM ({sql}) a")
        # DISTINCT: each advocate once, however many times the sources list it, so the join adds no row.
        advocate_join = f"LEFT JOIN (SELECT DISTINCT customer_id FROM ({' UNION ALL '.join(selects)}) u) adv ON adv.customer_id = c.id"
        advocate = "CASE WHEN adv.customer_id IS NULL THEN 0 ELSE 1 END"
    if activity:
        aggregates, joins = f"WITH act AS ({activity_select()})", "LEFT JOIN act ON act.customer_id = c.id"
    else:
        aggregates = f"""WITH paid AS (
    SELECT o.customer_id, o.ordered_at,
           LAG(o.ordered_at, %(repeat_lag)s) OVER (PARTITION BY o.customer_id ORDER BY o.ordered_at) AS earlier
    FROM customers_order o
    WHERE o.customer_id >= %(lo)s AND o.customer_id < %(hi)s AND o.status = 'paid' AND o.ordered_at <= %(t)s
), o AS (
    SELECT customer_id, COUNT(*) AS paid_orders, MAX(ordered_at) AS last_order_at,
           MAX(CASE WHEN earlier IS NOT NULL AND {d.within_days("earlier", "ordered_at", "repeat_days")} THEN 1 ELSE 0 END)
               AS repeated,
           SUM(CASE WHEN ordered_at > %(window_since)s THEN 1 ELSE 0 END) AS window_orders
    FROM paid GROUP BY customer_id
), e AS (
    SELECT ev.customer_id, MAX(ev.occurred_at) AS last_event_at,
           SUM(CASE WHEN {core} AND {early} THEN 1 ELSE 0 END) AS early_core,
           SUM(CASE WHEN ev.occurred_at > %(window_since)s THEN 1 ELSE 0 END) AS window_events,
           COUNT(DISTINCT CASE WHEN {breadth} AND ev.occurred_at > %(window_since)s THEN ev.name END) AS breadth,
           SUM(CASE WHEN {service} AND ev.occurred_at > %(window_since)s THEN 1 ELSE 0 END) AS service,
           SUM(CASE WHEN {core} AND ev.occurred_at > %(decline_since)s THEN 1 ELSE 0 END) AS core_recent,
           SUM(CASE WHEN {core} AND ev.occurred_at > %(previous_since)s AND ev.occurred_at <= %(decline_since)s
               THEN 1 ELSE 0 END) AS core_previous,
           MAX(CASE WHEN {core} THEN ev.occurred_at END) AS last_core_at
    FROM customers_activityevent ev JOIN customers_customer c ON c.id = ev.customer_id
    WHERE ev.customer_id >= %(lo)s AND ev.customer_id < %(hi)s AND ev.occurred_at <= %(t)s
    GROUP BY ev.customer_id
)"""
        joins = "LEFT JOIN o ON o.customer_id = c.id LEFT JOIN e ON e.customer_id = c.id"
    return f"""
{aggregates}
SELECT c.id, cs.stage, cs.changed_at, COALESCE(cs.manual, FALSE),
       COALESCE({o}.paid_orders, 0), COALESCE({o}.repeated, 0), COALESCE({e}.early_core, 0), {last_active}, v.rfm_segment,
       COALESCE({o}.window_orders, 0) + COALESCE({e}.window_events, 0), COALESCE({e}.breadth, 0), COALESCE({e}.service, 0),
       COALESCE({e}.core_recent, 0), COALESCE({e}.core_previous, 0), {e}.last_core_at, {feedback}, {advocate}
FROM customers_customer c
LEFT JOIN lifecycle_customerstage cs ON cs.customer_id = c.id AND cs.customer_id >= %(lo)s AND cs.customer_id < %(hi)s
{joins}
LEFT JOIN lifecycle_customervalue v ON v.customer_id = c.id AND v.customer_id >= %(lo)s AND v.customer_id < %(hi)s
{feedback_join}
{advocate_join}
WHERE c.id >= %(lo)s AND c.id < %(hi)s
"""


def _target_stage(loyal_segment: str) -> str:
    """The stage the rules give a row of the figures table `f` (see the module docstring)."""
    return f"""CASE
        WHEN f.paid_orders = 0 AND f.early_core < %(activation_count)s THEN 'lead'
        WHEN f.last_active_at <= %(churn_since)s THEN 'churned'
        WHEN f.last_active_at <= %(at_risk_since)s THEN 'at_risk'
        WHEN (%(loyal_orders)s > 0 AND f.paid_orders >= %(loyal_orders)s) OR {loyal_segment}
             OR (%(loyal_feedback)s > 0 AND f.feedback >= %(loyal_feedback)s) OR f.advocate = 1 THEN 'loyal'
        WHEN f.repeated = 1 OR f.current_stage IN ('active', 'loyal', 'at_risk', 'churned') THEN 'active'
        ELSE 'new' END"""


def _changes_select(d: _Dialect, rules: StageRules, params: dict) -> str:
    """The customers of the figures table whose stage the rules would change, with the rule."""
    loyal_segment = _in_list("f.rfm_segment", "seg", rules.loyal_segment_list, params)
    params.update(
        activation_count=rules.activation_count, loyal_orders=rules.loyal_orders, loyal_feedback=rules.loyal_feedback
    )
    return f"""
WITH g AS (SELECT f.*, {_target_stage(loyal_segment)} AS target FROM {FIGURES_TABLE} f)
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
       g.paid_orders, g.repeated, g.early_core, g.rfm_segment, g.advocate,
       {d.days_since("t", "g.last_active_at")} AS days_idle
FROM g
WHERE (g.current_stage IS NULL OR g.current_stage <> g.target)
  AND NOT (g.manual AND (g.last_active_at IS NULL OR g.last_active_at <= g.seen_changed_at))
"""


def _create_temp_tables(cursor, d: _Dialect) -> None:
    text, moment = d.text_type(), d.time_type()
    for table in (CHANGES_TABLE, FIGURES_TABLE, HEALTH_TABLE):
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
    cursor.execute(
        f"CREATE TEMPORARY TABLE {FIGURES_TABLE} (customer_id bigint PRIMARY KEY, current_stage {text}, "
        f"seen_changed_at {moment}, manual boolean, paid_orders integer, repeated integer, early_core integer, "
        f"last_active_at {moment}, rfm_segment {text}, window_actions integer, breadth integer, service integer, "
        f"core_recent integer, core_previous integer, last_core_at {moment}, feedback integer, advocate integer)"
    )
    cursor.execute(
        f"CREATE TEMPORARY TABLE {CHANGES_TABLE} (customer_id bigint PRIMARY KEY, current_stage {text}, "
        f"seen_changed_at {moment}, target {text}, rule {text}, paid_orders integer, repeated integer, "
        f"early_core integer, rfm_segment {text}, advocate integer, days_idle numeric)"
    )
    health_table_create(cursor, HEALTH_TABLE)


class _Timings(dict):
    """Seconds per phase of the evaluation, summed over the id ranges (kept in LifecycleRun.timings)."""

    @contextmanager
    def phase(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + time.perf_counter() - started


def _write_stage_changes(cursor, d: _Dialect, changes_sql: str, params: dict, timings: _Timings) -> None:
    """Move the stages of one id range and log a transition for exactly the rows moved: at most
    four statements whatever its size, none when nothing changes."""
    ch = CHANGES_TABLE
    with timings.phase("stage_changes"):
        cursor.execute(
            f"INSERT INTO {ch} (customer_id, current_stage, seen_changed_at, target, rule, paid_orders, repeated, "
            f"early_core, rfm_segment, advocate, days_idle) {changes_sql}",
            params,
        )
        new, changed = split_counts(cursor, ch, "current_stage IS NULL")
    if not new and not changed:
        return
    insert = (
        "INSERT INTO lifecycle_customerstage (customer_id, stage, changed_at, manual, run_id) "
        f"SELECT customer_id, target, %(t)s, FALSE, %(run)s FROM {ch} WHERE current_stage IS NULL"
    )
    # Compared with what the figures saw, so a manual move committed in between is never overwritten.
    update = (
        f"UPDATE lifecycle_customerstage AS cs SET stage = ch.target, changed_at = %(t)s, manual = FALSE, run_id = %(run)s "
        f"FROM {ch} AS ch WHERE cs.customer_id = ch.customer_id AND ch.current_stage IS NOT NULL "
        "AND cs.stage = ch.current_stage AND cs.changed_at = ch.seen_changed_at"
    )
    columns = "customer_id, current_stage, target, rule, paid_orders, repeated, early_core, rfm_segment, advocate, days_idle"
    log = (
        "INSERT INTO lifecycle_stagetransition (customer_id, from_stage, to_stage, at, rule, figures, manual, reason, run_id) "
        "SELECT ch.customer_id, ch.current_stage, ch.target, %(t)s, ch.rule, {figures}, FALSE, '', %(run)s FROM {source} "
    )
    with timings.phase("stage_writes"):
        if d.pg:
            # One statement, no ON CONFLICT and no join back: a plain INSERT writes every new row or
            # fails (a manual move that creates a stage row holds customer_rows_lock exclusively, so
            # none appears during a range), and the UPDATE returns the rows it moved with their
            # figures; those two sets are the transitions.
            moved, ctes = [], []
            if new:
                ctes.append(f"ins AS ({insert})")
                moved.append(f"SELECT {columns} FROM {ch} WHERE current_stage IS NULL")
            if changed:
                ctes.append(f"upd AS ({update} RETURNING {', '.join('ch.' + c for c in columns.split(', '))})")
                moved.append(f"SELECT {columns} FROM upd")
            figures, source = d.transition_figures(f"({' UNION ALL '.join(moved)})")
            cursor.execute(f"WITH {', '.join(ctes)} {log.format(figures=figures, source=source)}", params)
        else:
            # SQLite (development): a manual move may create a stage row between the figures and here.
            if new:
                cursor.execute(f"{insert} ON CONFLICT (customer_id) DO NOTHING", params)
            if changed:
                cursor.execute(update, params)
            figures, source = d.transition_figures(ch)
            cursor.execute(
                f"{log.format(figures=figures, source=source)} JOIN lifecycle_customerstage cs ON cs.customer_id = ch.customer_id "
                "WHERE cs.run_id = %(run)s AND cs.stage = ch.target AND cs.changed_at = %(t)s",
                params,
            )
        cursor.execute(f"DELETE FROM {ch}")


def _fill_figures(cursor, sql: dict, params: dict, activity: Activity | None) -> None:
    """The figures of the id range [lo, hi) into FIGURES_TABLE: from the numpy path's activity rows
    (copied into ACTIVITY_TABLE for the range, then joined) or from the SQL aggregates."""
    if activity is not None:
        activity.copy(cursor, params["lo"], params["hi"])
    cursor.execute(f"INSERT INTO {FIGURES_TABLE} ({FIGURE_COLUMNS}) {sql['figures']}", params)
    if activity is not None:
        cursor.execute(f"TRUNCATE {ACTIVITY_TABLE}")


def _evaluate_range(cursor, d: _Dialect, sql: dict, params: dict, timings: _Timings, activity: Activity | None = None) -> None:
    """One id range: its figures, then the stage changes and the health changes drawn from them."""
    with timings.phase("figures"):
        _fill_figures(cursor, sql, params, activity)
    _write_stage_changes(cursor, d, sql["changes"], params, timings)
    health_write_changes(cursor, sql["health"], HEALTH_TABLE, params, timings)
    with timings.phase("cleanup"):
        cursor.execute(f"DELETE FROM {FIGURES_TABLE}")


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


def _prepare(t: dt.datetime, d: _Dialect, *, fast: bool) -> tuple[dict, dict, Settings]:
    """The parameters and statements of an evaluation as of `t`, and the numpy path's settings
    (the same moments, so both paths draw each window's boundary at the same instant)."""
    rules, health = stage_rules_get(), health_rules_get()
    adapt = connection.ops.adapt_datetimefield_value
    moments = {
        "t": t,
        "at_risk_since": t - dt.timedelta(days=rules.at_risk_days),
        "churn_since": t - dt.timedelta(days=rules.churn_days),
        "window_since": t - dt.timedelta(days=health.window_days),
        "decline_since": t - dt.timedelta(days=health.decline_period_days),
        "previous_since": t - dt.timedelta(days=2 * health.decline_period_days),
        "no_core_since": t - dt.timedelta(days=health.no_core_days),
        "idle_since": t - dt.timedelta(days=health.idle_days),
    }
    params: dict = {name: adapt(moment) for name, moment in moments.items()}
    sql = {
        "figures": _figures_select(d, rules, health, params, activity=fast),
        "changes": _changes_select(d, rules, params),
        "health": health_select(health, rules_target=_target_stage(_in_list("f.rfm_segment", "seg", rules.loyal_segment_list, params)), table=FIGURES_TABLE, params=params),
    }
    settings = Settings(
        **{name: moments[name] for name in ("t", "window_since", "decline_since", "previous_since")},
        repeat_orders=rules.repeat_orders,
        repeat_days=rules.repeat_days,
        activation_days=rules.activation_days,
        core=rules.activation_event_list,
        breadth=health.breadth_event_list,
        service=health.service_event_list,
    )
    return params, sql, settings


def _evaluate(*, run: LifecycleRun, progress: ProgressCallback | None, chunk: int, fast: bool | None = None) -> LifecycleRun:
    """`fast`: the figures from the numpy path (default on PostgreSQL) rather than the SQL aggregates."""
    started = time.perf_counter()
    timings = _Timings()
    d = _Dialect(connection.vendor)
    fast = d.pg if fast is None else fast
    with timings.phase("setup"):
        bounds = Customer.objects.aggregate(lo=Min("id"), hi=Max("id"))
        total = Customer.objects.count()
    params, sql, settings = _prepare(run.as_of, d, fast=fast)
    params["run"] = run.pk
    if progress:
        progress(0, total)
    activity = None
    if fast and bounds["lo"] is not None:
        with timings.phase("figures_read"):
            activity = Activity(settings, parallel=True)
    with connection.cursor() as cursor:
        _create_temp_tables(cursor, d)
        if activity is not None:
            activity_table_create(cursor)
        if bounds["lo"] is not None:
            span = bounds["hi"] + 1 - bounds["lo"]
            for lo in range(bounds["lo"], bounds["hi"] + 1, chunk):
                with transaction.atomic():
                    if d.pg:
                        # For this transaction only: the range's sort and hash tables fit in memory;
                        # and its COMMIT does not wait for the range's WAL (often hundreds of MB on
                        # the first run) to reach the disk: a crash loses at most the last ranges'
                        # derived rows, never half a range, and the next run writes them again.
                        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
                        cursor.execute("SET LOCAL synchronous_commit = off")
                    # Before the figures read the customers: the rows have no foreign keys to check at commit.
                    customer_rows_lock(cursor)
                    _evaluate_range(cursor, d, sql, {**params, "lo": lo, "hi": lo + chunk}, timings, activity)
                    committing = time.perf_counter()
                timings["commit"] = timings.get("commit", 0.0) + time.perf_counter() - committing
                # Progress by the share of the id range covered: counting each range would cost a query.
                done = total * min(span, lo + chunk - bounds["lo"]) // span
                if progress:
                    progress(done, total)
        for table in (CHANGES_TABLE, FIGURES_TABLE, HEALTH_TABLE, *([ACTIVITY_TABLE] if activity is not None else [])):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
    with timings.phase("counts"):
        # Every transition of this run is at its as_of moment: the `at` index finds them (run_id has none).
        counts = dict(
            StageTransition.objects.filter(at=run.as_of, run=run).values_list("rule").annotate(n=Count("id")).order_by()
        )
    run.status = LifecycleRun.Status.SUCCEEDED
    run.finished_at = timezone.now()
    run.n_customers = total
    run.counts = counts
    run.n_transitions = sum(counts.values())
    run.timings = {**{name: round(seconds, 3) for name, seconds in timings.items()}, "total": round(time.perf_counter() - started, 3)}
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
        # Creating the customer's first stage row waits for an evaluation range being written (which
        # inserts new stage rows without ON CONFLICT): the lock exclusively, not shared.
        first = not CustomerStage.objects.filter(customer_id=customer.pk).exists()
        with connection.cursor() as cursor:
            customer_rows_lock(cursor, exclusive=first)
        # Read after the lock: a customer deleted meanwhile gets no rows (they have no foreign key).
        if not Customer.objects.filter(pk=customer.pk).exists():
            raise DomainError(_("This customer no longer exists."))
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
