"""Reads of lifecycle stages, health and churn risk: the dashboard's figures, the customer panel,
the customers behind each number and the churn-rate-by-health-band report.

Every figure is one aggregate query (no query per customer or per stage). The slow ones over big
tables (cohort retention, the band report) are cached for a few minutes by the view."""

from __future__ import annotations

import datetime as dt
import statistics

from django.db import connection
from django.db.models import (
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Cast, Floor, TruncMonth, TruncWeek
from django.utils import timezone

from customers.models import ActivityEvent, Customer, Order
from lifecycle.models_health import ChurnRisk, CustomerHealth, HealthHistory, HealthRules
from lifecycle.models_retention import RetentionAction
from lifecycle.models_stages import CustomerStage, Stage, StageTransition

HEALTH_BUCKET = 10


def stage_counts() -> list[dict]:
    """Customers per stage in funnel order, and those not evaluated yet (one query each)."""
    counts = dict(CustomerStage.objects.values_list("stage").annotate(n=Count("pk")).order_by())
    return [{"stage": s.value, "label": s.label, "customers": counts.get(s.value, 0)} for s in Stage]


def customers_without_stage() -> int:
    return Customer.objects.filter(stage__isnull=True).count()


def transitions_by_week(*, weeks: int = 12, now: dt.datetime | None = None) -> dict:
    """Automatic and manual stage changes per week and target stage (first placements left out)."""
    now = now or timezone.now()
    since = now - dt.timedelta(weeks=weeks)
    rows = (
        StageTransition.objects.filter(at__gte=since)
        .exclude(rule="first_evaluation")
        .annotate(week=TruncWeek("at"))
        .values_list("week", "to_stage")
        .annotate(n=Count("id"))
        .order_by("week")
    )
    week_list = sorted({row[0].date() if hasattr(row[0], "date") else row[0] for row in rows})
    data = {s.value: [0] * len(week_list) for s in Stage}
    for week, stage, n in rows:
        data[stage][week_list.index(week.date() if hasattr(week, "date") else week)] = n
    return {"weeks": week_list, "by_stage": data}


def stage_exit_figures(*, days: int = 90, now: dt.datetime | None = None) -> list[dict]:
    """Per stage over the last `days`: customers who left it, the exit rate (left / (left + still
    there)), and the median days spent in it by those who left (from the transition log)."""
    now = now or timezone.now()
    since = now - dt.timedelta(days=days)
    current = {row["stage"]: row["customers"] for row in stage_counts()}
    exits = dict(
        StageTransition.objects.filter(at__gte=since, from_stage__isnull=False).values_list("from_stage").annotate(n=Count("id")).order_by()
    )
    medians = _median_days_in_stage(since)
    rows = []
    for stage in Stage:
        left = exits.get(stage.value, 0)
        base = left + current.get(stage.value, 0)
        rows.append(
            {
                "stage": stage.value,
                "label": stage.label,
                "exits": left,
                "exit_rate": left / base if base else None,
                "median_days": medians.get(stage.value),
            }
        )
    return rows


def _median_days_in_stage(since: dt.datetime) -> dict[str, float]:
    """Median time from entering a stage to leaving it, for exits since `since`."""
    if connection.vendor == "postgresql":
        sql = """
            SELECT from_stage, percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM at - entered) / 86400.0)
            FROM (SELECT from_stage, at, LAG(at) OVER (PARTITION BY customer_id ORDER BY at, id) AS entered
                  FROM lifecycle_stagetransition) t
            WHERE at >= %s AND entered IS NOT NULL AND from_stage IS NOT NULL GROUP BY from_stage
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, [since])
            return {stage: round(float(days), 1) for stage, days in cursor.fetchall()}
    # SQLite (development databases): the same durations, the median taken here.
    sql = """
        SELECT from_stage, julianday(at) - julianday(entered)
        FROM (SELECT from_stage, at, LAG(at) OVER (PARTITION BY customer_id ORDER BY at, id) AS entered
              FROM lifecycle_stagetransition) t
        WHERE at >= %s AND entered IS NOT NULL AND from_stage IS NOT NULL
    """
    durations: dict[str, list[float]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [connection.ops.adapt_datetimefield_value(since)])
        for stage, days in cursor.fetchall():
            durations.setdefault(stage, []).append(days)
    return {stage: round(statistics.median(values), 1) for stage, values in durations.items()}


def _active_between(start_days: int, end_days: int) -> Q:
    """A paid order or an event between `start_days` and `end_days` after sign-up."""
    bounds = {"offset__gte": dt.timedelta(days=start_days), "offset__lt": dt.timedelta(days=end_days)}

    def since_signup(field: str) -> ExpressionWrapper:
        return ExpressionWrapper(F(field) - OuterRef("signed_up_at"), output_field=DurationField())

    orders = Order.objects.filter(customer=OuterRef("pk"), status=Order.Status.PAID).alias(offset=since_signup("ordered_at"))
    events = ActivityEvent.objects.filter(customer=OuterRef("pk")).alias(offset=since_signup("occurred_at"))
    return Q(Exists(orders.filter(**bounds))) | Q(Exists(events.filter(**bounds)))


def cohort_retention(*, months: int = 12, now: dt.datetime | None = None) -> list[dict]:
    """Per acquisition month (sign-up): customers, and the share active (a paid order or an event)
    in days 30-59 and 90-119 after sign-up; None where the cohort is too young to tell."""
    now = now or timezone.now()
    since = (now - dt.timedelta(days=31 * months)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    rows = (
        Customer.objects.filter(signed_up_at__gte=since, signed_up_at__lte=now)
        .annotate(month=TruncMonth("signed_up_at"))
        .values("month")
        .annotate(
            customers=Count("pk"),
            mature30=Count("pk", filter=Q(signed_up_at__lte=now - dt.timedelta(days=60))),
            kept30=Count("pk", filter=Q(signed_up_at__lte=now - dt.timedelta(days=60)) & _active_between(30, 60)),
            mature90=Count("pk", filter=Q(signed_up_at__lte=now - dt.timedelta(days=120))),
            kept90=Count("pk", filter=Q(signed_up_at__lte=now - dt.timedelta(days=120)) & _active_between(90, 120)),
        )
        .order_by("month")
    )
    cohorts = []
    for row in rows:
        month = row["month"].date() if hasattr(row["month"], "date") else row["month"]
        cohorts.append(
            {
                "month": month,
                "customers": row["customers"],
                "retained30": row["kept30"] / row["mature30"] if row["mature30"] else None,
                "retained90": row["kept90"] / row["mature90"] if row["mature90"] else None,
            }
        )
    return cohorts


def health_distribution() -> dict:
    """Customers per 10-point bucket of health, and per colour band."""
    rules = HealthRules.objects.get_or_create(pk=1)[0]
    buckets = dict(
        CustomerHealth.objects.annotate(bucket=_bucket()).values_list("bucket").annotate(n=Count("pk")).order_by()
    )
    counts = [buckets.get(i, 0) for i in range(100 // HEALTH_BUCKET + 1)]
    # 100 shares the last bucket (90-100).
    counts[-2] += counts.pop()
    bands = CustomerHealth.objects.aggregate(
        red=Count("pk", filter=Q(score__lt=rules.red_below)),
        yellow=Count("pk", filter=Q(score__gte=rules.red_below, score__lt=rules.yellow_below)),
        green=Count("pk", filter=Q(score__gte=rules.yellow_below)),
    )
    return {"buckets": counts, "bands": bands, "rules": rules}


def _bucket():
    return Cast(Floor(F("score") / float(HEALTH_BUCKET)), IntegerField())


def churn_risk_counts() -> list[dict]:
    counts = dict(CustomerHealth.objects.values_list("churn_risk").annotate(n=Count("pk")).order_by())
    return [{"level": r.value, "label": r.label, "customers": counts.get(r.value, 0)} for r in ChurnRisk]


def churn_rate_by_health_band(*, days: int = 365, now: dt.datetime | None = None) -> dict:
    """Does the score predict churn? Each customer's health band `days` ago (their last health
    record at or before then) and the share of each band that moved to churned since."""
    now = now or timezone.now()
    start = now - dt.timedelta(days=days)
    rules = HealthRules.objects.get_or_create(pk=1)[0]
    latest_before = HealthHistory.objects.filter(customer=OuterRef("customer"), at__lte=start).order_by("-at", "-id").values("pk")[:1]
    churned = StageTransition.objects.filter(customer=OuterRef("customer"), to_stage=Stage.CHURNED, at__gt=start)
    snapshot = HealthHistory.objects.filter(at__lte=start, pk=Subquery(latest_before)).annotate(churned=Exists(churned))
    bands = snapshot.aggregate(
        red=Count("pk", filter=Q(score__lt=rules.red_below)),
        red_churned=Count("pk", filter=Q(score__lt=rules.red_below, churned=True)),
        yellow=Count("pk", filter=Q(score__gte=rules.red_below, score__lt=rules.yellow_below)),
        yellow_churned=Count("pk", filter=Q(score__gte=rules.red_below, score__lt=rules.yellow_below, churned=True)),
        green=Count("pk", filter=Q(score__gte=rules.yellow_below)),
        green_churned=Count("pk", filter=Q(score__gte=rules.yellow_below, churned=True)),
    )
    rows = []
    for band in ("red", "yellow", "green"):
        total, lost = bands[band], bands[f"{band}_churned"]
        rows.append({"band": band, "customers": total, "churned": lost, "rate": lost / total if total else None})
    return {"since": start, "rows": rows, "customers": sum(r["customers"] for r in rows)}


# --- Customers behind a number --------------------------------------------------------------------


def lifecycle_customers(*, stage: str = "", risk: str = "", band: str = "") -> QuerySet:
    """Customers of a stage, a churn-risk level and/or a health band, healthiest last."""
    queryset = Customer.objects.select_related("stage", "health").order_by("-id")
    if stage in Stage.values:
        queryset = queryset.filter(stage__stage=stage)
    if risk.isdigit() and int(risk) in ChurnRisk.values:
        queryset = queryset.filter(health__churn_risk=int(risk))
    if band in ("red", "yellow", "green"):
        rules = HealthRules.objects.get_or_create(pk=1)[0]
        queryset = queryset.filter(
            {
                "red": Q(health__score__lt=rules.red_below),
                "yellow": Q(health__score__gte=rules.red_below, health__score__lt=rules.yellow_below),
                "green": Q(health__score__gte=rules.yellow_below),
            }[band]
        )
    return queryset


# --- The customer panel ---------------------------------------------------------------------------


def customer_lifecycle_panel(*, customer_id: int, history: int = 10) -> dict:
    """Stage, last transitions, health with parts and history, churn risk and interventions: five queries."""
    stage = CustomerStage.objects.filter(customer_id=customer_id).first()
    transitions = list(
        StageTransition.objects.filter(customer_id=customer_id).select_related("changed_by").order_by("-at", "-id")[:history]
    )
    health = CustomerHealth.objects.filter(customer_id=customer_id).first()
    health_history = list(HealthHistory.objects.filter(customer_id=customer_id).order_by("-at", "-id")[:history])
    actions = list(RetentionAction.objects.filter(customer_id=customer_id).order_by("-at")[:history])
    return {"stage": stage, "transitions": transitions, "health": health, "health_history": health_history, "actions": actions}
