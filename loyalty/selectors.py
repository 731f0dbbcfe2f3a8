"""Reads of the loyalty programme: a member's summary (balance, pending, tier and progress, next
expiry) in two queries, their ledger with filters, and the programme dashboard's figures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Min, Q, QuerySet, Sum
from django.utils import timezone

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
