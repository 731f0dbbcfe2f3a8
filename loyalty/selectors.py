"""Reads of the loyalty programme: a member's summary (balance, pending, tier and progress, next
expiry) in two queries, their ledger with filters, and the programme dashboard's figures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Min, Q, QuerySet, Sum
from django.utils import timezone

from core.times import month_starts
from loyalty.models import LedgerEntry, LoyaltyAccount, PointLot, Tier
from loyalty.services.program import program_get
from loyalty.services.tiers import qualifying_values


def account_summary(*, customer_id: int, now: dt.datetime | None = None, with_progress: bool = False) -> dict | None:
    """A member's figures, or None when the customer has no account yet (they enrol on first earn
    or adjustment). Two queries (three with the tier progress)."""
    now = now or timezone.now()
    account = LoyaltyAccount.objects.select_related("tier").filter(customer_id=customer_id).first()
    if account is None:
        return None
    open_lots = PointLot.objects.filter(account=account, remaining__gt=0).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    figures = open_lots.aggregate(
        pending=Sum("remaining", filter=Q(available_at__gt=now)),
        next_expiry=Min("expires_at"),
    )
    next_expiry = figures["next_expiry"]
    expiring = 0
    if next_expiry is not None:
        expiring = open_lots.filter(expires_at=next_expiry).aggregate(s=Sum("remaining"))["s"] or 0
    summary = {
        "account": account,
        "balance": account.balance,
        "debt": account.debt,
        "pending": figures["pending"] or 0,
        "spendable": account.balance - (figures["pending"] or 0),
        "tier": account.tier,
        "tier_held_until": account.tier_held_until,
        "next_expiry": next_expiry,
        "next_expiry_points": expiring,
    }
    if with_progress:
        summary["progress"] = tier_progress(account=account, now=now)
    return summary


def tier_progress(*, account: LoyaltyAccount, now: dt.datetime) -> dict:
    """Where the member stands in the window against the next tier."""
    program = program_get()
    value = qualifying_values(account_ids=[account.pk], program=program, now=now).get(account.pk, Decimal("0"))
    current = account.tier.threshold if account.tier else Decimal("0")
    following = Tier.objects.filter(threshold__gt=current).order_by("threshold").first()
    percent = None
    if following is not None:
        span = following.threshold - current
        percent = int(max(Decimal("0"), min(Decimal("100"), (value - current) * 100 / span))) if span else 100
    return {"value": value, "qualify_by": program.get_qualify_by_display(), "next_tier": following, "percent": percent}


def ledger_entries(
    *, customer_id: int, kind: str | None = None, source: str | None = None,
    since: dt.datetime | None = None, until: dt.datetime | None = None,
) -> QuerySet[LedgerEntry]:
    """The member's entries, newest first, optionally by kind, source and time."""
    entries = LedgerEntry.objects.filter(account__customer_id=customer_id).select_related("staff", "order")
    if kind:
        entries = entries.filter(kind=kind)
    if source:
        entries = entries.filter(source=source)
    if since:
        entries = entries.filter(created_at__gte=since)
    if until:
        entries = entries.filter(created_at__lt=until)
    return entries.order_by("-id")


def programme_figures(*, now: dt.datetime | None = None, months: int = 12) -> dict:
    """The programme dashboard: liability (outstanding points and their money value), expected
    breakage, earned / redeemed / expired per month, members per tier and the redemption rate.
    Four aggregate queries whatever the number of members."""
    from django.db.models import Count
    from django.db.models.functions import TruncMonth

    now = now or timezone.now()
    program = program_get()
    starts = month_starts(now, months)
    since = timezone.make_aware(dt.datetime.combine(starts[0], dt.time.min))
    accounts = LoyaltyAccount.objects.aggregate(members=Count("pk"), outstanding=Sum("balance"), debt=Sum("debt"))
    outstanding = accounts["outstanding"] or 0
    per_month = {start: {"earned": 0, "redeemed": 0, "expired": 0} for start in starts}
    column = {"earn": "earned", "redeem": "redeemed", "expire": "expired"}
    rows = (
        LedgerEntry.objects.filter(created_at__gte=since, kind__in=list(column))
        .annotate(month=TruncMonth("created_at"))
        .values("month", "kind")
        .annotate(points=Sum("points"))
    )
    for row in rows:
        month = row["month"].date() if isinstance(row["month"], dt.datetime) else row["month"]
        if month in per_month:
            per_month[month][column[row["kind"]]] = abs(row["points"] or 0)
    earned = sum(m["earned"] for m in per_month.values())
    redeemed = sum(m["redeemed"] for m in per_month.values())
    expired = sum(m["expired"] for m in per_month.values())
    # Of the points that left accounts in the window, the share that expired unspent: applied to
    # what is outstanding and can expire, it is the breakage to expect.
    breakage_rate = Decimal(expired) / Decimal(expired + redeemed) if expired + redeemed else Decimal("0")
    expiring = (
        PointLot.objects.filter(remaining__gt=0, expires_at__isnull=False).aggregate(s=Sum("remaining"))["s"] or 0
    )
    expected_breakage = int(Decimal(expiring) * breakage_rate)
    tiers = {row["tier"]: row["n"] for row in LoyaltyAccount.objects.values("tier").annotate(n=Count("pk"))}
    return {
        "members": accounts["members"],
        "outstanding": outstanding,
        "debt": accounts["debt"] or 0,
        "liability_value": (Decimal(outstanding) * program.point_value).quantize(Decimal("0.01")),
        "point_value": program.point_value,
        "breakage_rate": breakage_rate,
        "expected_breakage": expected_breakage,
        "expected_breakage_value": (Decimal(expected_breakage) * program.point_value).quantize(Decimal("0.01")),
        "redemption_rate": Decimal(redeemed) / Decimal(earned) if earned else None,
        "months": [{"label": start.strftime("%Y-%m"), **per_month[start]} for start in starts],
        "tiers": [{"tier": tier, "members": tiers.get(tier.pk, 0)} for tier in Tier.objects.order_by("threshold")]
        + [{"tier": None, "members": tiers.get(None, 0)}],
        "earned": earned,
        "redeemed": redeemed,
        "expired": expired,
    }
