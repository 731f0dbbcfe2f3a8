"""Reads for the value screens and API: plain dicts and lists, ready for templates and charts.

Every selector runs a fixed number of queries, whatever the number of customers.

Definitions used here:
- CAC of a channel in a month = its spend that month / customers it acquired that month (customers
  whose signed_up_at falls in that month in the shop's time zone). The channel's CAC = its total
  spend / the customers acquired in the months that have spend recorded; None without spend.
- LTV of a channel = the average formula CLV (lifetime, AOV x frequency x lifespan) of all its
  customers with a computed value, non-buyers included (at 0), since CAC is paid for them too.
  Predicted CLV is a fixed 12-month horizon and would understate a lifetime; its average over the
  channel's buyers is returned alongside. LTV/CAC under 3 is flagged.
- Budget split: 60% to proven channels, 30% to channels in testing, 10% kept in reserve; paused
  channels get nothing; within a group shares follow LTV/CAC (equal shares when no channel of the
  group has a ratio); a group without channels leaves its share in the reserve.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Avg, Case, Count, F, FloatField, IntegerField, Min, Q, Sum, Value, When
from django.db.models.functions import Cast, Floor, Least, TruncMonth
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.money import CENT, money_round
from core.times import shop_day, shop_zone
from customers.models import AcquisitionChannel, ChannelSpend, Customer
from lifecycle.models import ClvRun, CustomerValue, RfmSegment

LTV_CAC_TARGET = Decimal("3")
BUDGET_SHARES = {"proven": Decimal("0.60"), "testing": Decimal("0.30"), "reserve": Decimal("0.10")}
HISTOGRAM_FIELDS = ("predicted_clv", "formula_clv", "historic_value")
FREQUENCY_EDGES = (0, 1, 2, 3, 5, 8, 13, 21)  # bucket i holds edges[i] <= frequency < edges[i + 1]


def _float(value) -> float | None:
    return None if value is None else float(value)


def _money(value) -> Decimal | None:
    return None if value is None else money_round(value)


# --- Runs and single customers ----------------------------------------------------------------------


def customer_value_get(*, customer_id: int) -> CustomerValue | None:
    return CustomerValue.objects.select_related("run").filter(customer_id=customer_id).first()


def clv_run_latest(*, finished: bool = True) -> ClvRun | None:
    """The newest run that finished computing (succeeded or model not fitted); failed runs skipped."""
    runs = ClvRun.objects.select_related("job")
    if finished:
        runs = runs.filter(status__in=[ClvRun.Status.SUCCEEDED, ClvRun.Status.NOT_CONVERGED])
    return runs.order_by("-id").first()


def clv_run_active() -> ClvRun | None:
    return ClvRun.objects.select_related("job").filter(status__in=[ClvRun.Status.QUEUED, ClvRun.Status.RUNNING]).first()


def clv_run_list(*, limit: int = 20) -> list[ClvRun]:
    return list(ClvRun.objects.select_related("job", "created_by").order_by("-id")[:limit])


def clv_run_outcome(run: ClvRun, *, repeat_buyers: int | None = None) -> dict:
    """What a run computed and what it did not, and why, in plain words for the runs page.

    {"tone": succeeded | partial | failed | active, "label": short state, "summary": one sentence}.
    Built at display time from the run's fields, so it is in the reader's language and says the
    same for runs stored before it existed. The optimiser's own wording ("parameter(s) b ran off
    towards 0 or infinity") stays in run.message for the admin site; it tells a reader nothing.
    `repeat_buyers`: how many customers bought on more than one day, when known."""
    n = _grouped(run.n_customers)
    if run.status == ClvRun.Status.QUEUED:
        return {"tone": "active", "label": _("Waiting to start"), "summary": _("Waiting for a worker to start the recompute.")}
    if run.status == ClvRun.Status.RUNNING:
        return {"tone": "active", "label": _("Running"), "summary": _("Computing every customer's value now.")}
    if run.status == ClvRun.Status.FAILED:
        return {
            "tone": "failed",
            "label": _("Failed"),
            "summary": _("Nothing was computed: the recompute stopped with an error. The values of the last finished run are still shown."),
        }
    if run.status == ClvRun.Status.SUCCEEDED:
        return {
            "tone": "succeeded",
            "label": _("Succeeded"),
            "summary": ngettext(
                "Computed historic value, formula CLV, RFM segment and predicted CLV for %(n)s customer.",
                "Computed historic value, formula CLV, RFM segment and predicted CLV for all %(n)s customers.",
                run.n_customers,
            )
            % {"n": n},
        }
    return {"tone": "partial", "label": _("Partly computed"), "summary": _partial_summary(run, n, repeat_buyers)}


def _grouped(number: int) -> str:
    return number_format(number, use_l10n=True, force_grouping=True)


def _partial_summary(run: ClvRun, n: str, repeat_buyers: int | None) -> str:
    done = ngettext(
        "Computed historic value, formula CLV and RFM segment for %(n)s customer.",
        "Computed historic value, formula CLV and RFM segment for all %(n)s customers.",
        run.n_customers,
    ) % {"n": n}
    if run.n_purchasers == 0:
        why = _("no customer has a paid order yet, and predictions learn from past purchases.")
    elif run.bgnbd_converged and run.gg_converged is None:
        why = _("no customer has bought more than once yet, and predictions learn from repeat purchases.")
    elif run.bgnbd_converged is None:
        why = _("the order history could not be used to fit the prediction model.")
    elif repeat_buyers is not None:
        why = _(
            "too few customers have come back to buy again (%(repeat)s of %(buyers)s buyers) to see a pattern to predict from."
        ) % {"repeat": _grouped(repeat_buyers), "buyers": _grouped(run.n_purchasers)}
    else:
        why = _("too few customers have come back to buy again to see a pattern to predict from.")
    not_done = _(
        "Predicted CLV and the chance that a customer is still active were not computed, because %(why)s"
        " They will be once more customers buy again."
    ) % {"why": why}
    return f"{done} {not_done}"


def clv_run_repeat_buyers(run: ClvRun) -> int | None:
    """Customers of `run` who bought on more than one day; None when its values are not the ones
    kept (only the latest finished run's are). One COUNT over customer values."""
    if run.status != ClvRun.Status.NOT_CONVERGED or not CustomerValue.objects.filter(run_id=run.pk).exists():
        return None
    return CustomerValue.objects.filter(run_id=run.pk, frequency__gt=0).count()


def clv_run_get(*, run_id: int) -> ClvRun | None:
    return ClvRun.objects.select_related("job", "created_by").filter(pk=run_id).first()


def clv_model_summary() -> dict | None:
    run = clv_run_latest()
    if run is None:
        return None
    return {
        "run_id": run.pk,
        "status": run.status,
        "as_of": run.as_of,
        "time_unit": run.time_unit,
        "horizon_months": run.horizon_months,
        "n_customers": run.n_customers,
        "n_purchasers": run.n_purchasers,
        "converged": run.converged,
        "log_likelihood": {"bgnbd": run.bgnbd_log_likelihood, "gamma_gamma": run.gg_log_likelihood},
        "bgnbd": {"r": run.bgnbd_r, "alpha": run.bgnbd_alpha, "a": run.bgnbd_a, "b": run.bgnbd_b, "converged": run.bgnbd_converged},
        "gamma_gamma": {"p": run.gg_p, "q": run.gg_q, "v": run.gg_v, "converged": run.gg_converged},
        "message": run.message,
        "finished_at": run.finished_at,
    }


# --- Channels: CAC, LTV/CAC, budget -----------------------------------------------------------------


def _month(value) -> dt.date:
    if isinstance(value, dt.datetime):
        value = shop_day(value) if value.tzinfo else value.date()
    return value.replace(day=1)


def channel_value_summary() -> list[dict]:
    """Per channel: spend, customers acquired, CAC (overall and per month), average CLVs, LTV/CAC, flag."""
    channels = list(AcquisitionChannel.objects.order_by("name"))
    spend: dict[int, dict[dt.date, Decimal]] = {}
    for row in ChannelSpend.objects.values("channel_id", "month", "amount"):
        months = spend.setdefault(row["channel_id"], {})
        months[_month(row["month"])] = months.get(_month(row["month"]), Decimal("0")) + row["amount"]
    acquired: dict[int, dict[dt.date, int]] = {}
    signups = (
        Customer.objects.filter(channel__isnull=False, signed_up_at__isnull=False)
        .annotate(month=TruncMonth("signed_up_at", tzinfo=shop_zone()))
        .values("channel_id", "month")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in signups:
        months = acquired.setdefault(row["channel_id"], {})
        months[_month(row["month"])] = months.get(_month(row["month"]), 0) + row["n"]
    values = {
        row["customer__channel_id"]: row
        for row in CustomerValue.objects.values("customer__channel_id")
        .annotate(
            customers=Count("customer_id"),
            buyers=Count("customer_id", filter=Q(orders_count__gt=0)),
            avg_formula=Avg("formula_clv"),
            avg_predicted=Avg("predicted_clv"),
            avg_historic=Avg("historic_value"),
        )
        .order_by()
    }
    result = []
    for channel in channels:
        channel_spend, channel_acquired = spend.get(channel.pk, {}), acquired.get(channel.pk, {})
        monthly = []
        for month in sorted(set(channel_spend) | set(channel_acquired)):
            amount, n = channel_spend.get(month), channel_acquired.get(month, 0)
            monthly.append({"month": month, "spend": amount, "acquired": n, "cac": _money(amount / n) if amount is not None and n else None})
        total_spend = sum(channel_spend.values(), Decimal("0"))
        acquired_paid = sum(channel_acquired.get(m, 0) for m in channel_spend)
        cac = _money(total_spend / acquired_paid) if channel_spend and acquired_paid else None
        v = values.get(channel.pk, {})
        ltv = _money(v.get("avg_formula"))
        ratio = (ltv / cac).quantize(CENT) if ltv is not None and cac else None
        result.append(
            {
                "id": channel.pk,
                "code": channel.code,
                "name": channel.name,
                "status": channel.status,
                "spend": total_spend.quantize(CENT),
                "acquired": sum(channel_acquired.values()),
                "cac": cac,
                "customers_valued": v.get("customers", 0),
                "buyers": v.get("buyers", 0),
                "avg_formula_clv": ltv,
                "avg_predicted_clv": _money(v.get("avg_predicted")),
                "avg_historic_value": _money(v.get("avg_historic")),
                "ltv": ltv,
                "ltv_cac": ratio,
                "flagged": ratio is not None and ratio < LTV_CAC_TARGET,
                "monthly": monthly,
            }
        )
    return result


def _latest_month_spend() -> Decimal:
    latest = ChannelSpend.objects.order_by("-month").values_list("month", flat=True).first()
    if latest is None:
        return Decimal("0.00")
    return ChannelSpend.objects.filter(month=latest).aggregate(total=Sum("amount"))["total"] or Decimal("0.00")


def budget_split(*, total: Decimal | None = None, channels: list[dict] | None = None) -> dict:
    """Suggested split of `total` (default: the spend of the latest month with spend recorded)."""
    channels = channel_value_summary() if channels is None else channels
    total = (_latest_month_spend() if total is None else Decimal(total)).quantize(CENT)
    allocations, reserve_share = [], BUDGET_SHARES["reserve"]
    for group in (AcquisitionChannel.Status.PROVEN, AcquisitionChannel.Status.TESTING):
        members = [c for c in channels if c["status"] == group]
        if not members:
            reserve_share += BUDGET_SHARES[group]
            continue
        weights = [c["ltv_cac"] if c["ltv_cac"] and c["ltv_cac"] > 0 else Decimal("0") for c in members]
        if not sum(weights):
            weights = [Decimal("1")] * len(members)
        weight_total = sum(weights)
        for channel, weight in zip(members, weights, strict=True):
            share = BUDGET_SHARES[group] * weight / weight_total
            allocations.append(
                {"id": channel["id"], "name": channel["name"], "status": group, "share": share.quantize(Decimal("0.0001")), "amount": _money(total * share)}
            )
    for channel in channels:
        if channel["status"] == AcquisitionChannel.Status.PAUSED:
            allocations.append({"id": channel["id"], "name": channel["name"], "status": channel["status"], "share": Decimal("0"), "amount": Decimal("0.00")})
    # The reserve takes the rounding remainder, so the amounts add up to the total exactly.
    reserve = total - sum((a["amount"] for a in allocations), Decimal("0.00"))
    return {"total": total, "reserve_share": reserve_share, "reserve": reserve, "channels": allocations}


# --- Distributions --------------------------------------------------------------------------------


def clv_histogram(*, field: str = "predicted_clv", bins: int = 20, channel_id: int | None = None, segment: str | None = None) -> dict:
    """Histogram of a value column from 0 (or the minimum) to its 99th percentile; the last bin
    also holds everything above (long tails would otherwise squash the chart)."""
    if field not in HISTOGRAM_FIELDS:
        raise ValueError(f"unknown field {field}")
    values = CustomerValue.objects.filter(**{f"{field}__isnull": False})
    if channel_id is not None:
        values = values.filter(customer__channel_id=channel_id)
    if segment is not None:
        values = values.filter(rfm_segment=segment)
    stats = values.aggregate(n=Count("pk"), low=Cast(Min(field), FloatField()))
    n = stats["n"]
    if not n:
        return {"field": field, "count": 0, "bins": [], "upper": None}
    low = min(0.0, stats["low"])
    upper = float(values.order_by(field).values_list(field, flat=True)[min(n - 1, int(n * 0.99))])
    width = (upper - low) / bins if upper > low else 1.0
    bucket = Least(Cast(Floor((Cast(field, FloatField()) - Value(low)) / Value(width)), IntegerField()), Value(bins - 1))
    counts = dict(values.annotate(bucket=bucket).values("bucket").annotate(k=Count("pk")).order_by().values_list("bucket", "k"))
    return {
        "field": field,
        "count": n,
        "upper": upper,
        "bins": [{"lo": low + i * width, "hi": low + (i + 1) * width, "count": counts.get(i, 0)} for i in range(bins)],
    }


def _group_rows(queryset, key: str) -> list[dict]:
    return list(
        queryset.values(key)
        .annotate(
            customers=Count("pk"),
            buyers=Count("pk", filter=Q(orders_count__gt=0)),
            avg_predicted_clv=Avg("predicted_clv"),
            avg_formula_clv=Avg("formula_clv"),
            avg_historic_value=Avg("historic_value"),
            total_predicted_clv=Sum("predicted_clv"),
            avg_p_alive=Avg("p_alive"),
        )
        .order_by(key)
    )


def _group_dict(row: dict, key, label: str) -> dict:
    return {
        "key": key,
        "label": label,
        "customers": row["customers"],
        "buyers": row["buyers"],
        "avg_predicted_clv": _money(row["avg_predicted_clv"]),
        "avg_formula_clv": _money(row["avg_formula_clv"]),
        "avg_historic_value": _money(row["avg_historic_value"]),
        "total_predicted_clv": _money(row["total_predicted_clv"]),
        "avg_p_alive": _float(row["avg_p_alive"]),
    }


def clv_by_channel() -> list[dict]:
    names = dict(AcquisitionChannel.objects.values_list("pk", "name"))
    rows = _group_rows(CustomerValue.objects.all(), "customer__channel_id")
    return [_group_dict(r, r["customer__channel_id"], names.get(r["customer__channel_id"], "-")) for r in rows]


def clv_by_cohort() -> list[dict]:
    """By signup month (shop time zone); customers without a signup date are left out."""
    queryset = CustomerValue.objects.filter(customer__signed_up_at__isnull=False).annotate(
        cohort=TruncMonth("customer__signed_up_at", tzinfo=shop_zone())
    )
    rows = _group_rows(queryset, "cohort")
    return [_group_dict(r, _month(r["cohort"]).isoformat(), f"{_month(r['cohort']):%Y-%m}") for r in rows]


def clv_by_segment() -> list[dict]:
    """Every RFM segment in a fixed order, empty ones with zero customers (stable chart axes)."""
    rows = {r["rfm_segment"]: r for r in _group_rows(CustomerValue.objects.all(), "rfm_segment")}
    empty = {
        "customers": 0,
        "buyers": 0,
        "avg_predicted_clv": None,
        "avg_formula_clv": None,
        "avg_historic_value": None,
        "total_predicted_clv": None,
        "avg_p_alive": None,
    }
    return [_group_dict(rows.get(s.value, empty), s.value, str(s.label)) for s in RfmSegment]


def rfm_segment_counts() -> list[dict]:
    return [{"segment": g["key"], "label": g["label"], "customers": g["customers"]} for g in clv_by_segment()]


def p_alive_heatmap(*, recency_buckets: int = 10) -> dict:
    """Mean P(alive) over a grid: rows = frequency buckets (FREQUENCY_EDGES, last open-ended),
    columns = recency as a share of the customer's age T, in `recency_buckets` equal steps."""
    values = CustomerValue.objects.filter(p_alive__isnull=False, T__gt=0)
    last = len(FREQUENCY_EDGES) - 1
    frequency_bucket = Case(
        *[When(frequency__lt=FREQUENCY_EDGES[i + 1], then=Value(i)) for i in range(last)],
        default=Value(last),
        output_field=IntegerField(),
    )
    recency_bucket = Least(
        Cast(Floor(Cast(F("recency"), FloatField()) / Cast(F("T"), FloatField()) * Value(float(recency_buckets))), IntegerField()),
        Value(recency_buckets - 1),
    )
    rows = (
        values.annotate(fb=frequency_bucket, rb=recency_bucket)
        .values("fb", "rb")
        .annotate(mean=Avg("p_alive"), n=Count("pk"))
        .order_by()
    )
    cells = [[{"p_alive": None, "count": 0} for _ in range(recency_buckets)] for _ in range(last + 1)]
    for row in rows:
        cells[row["fb"]][row["rb"]] = {"p_alive": float(row["mean"]), "count": row["n"]}
    labels = [
        f"{FREQUENCY_EDGES[i]}" if FREQUENCY_EDGES[i + 1] - FREQUENCY_EDGES[i] == 1 else f"{FREQUENCY_EDGES[i]}-{FREQUENCY_EDGES[i + 1] - 1}"
        for i in range(last)
    ] + [f"{FREQUENCY_EDGES[last]}+"]
    return {
        "frequency_labels": labels,
        "recency_edges": [i / recency_buckets for i in range(recency_buckets + 1)],
        "cells": cells,
    }
