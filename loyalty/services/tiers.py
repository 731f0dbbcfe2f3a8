"""Tiers: upgrades at once when a member qualifies, downgrades on a schedule after a grace period
and one tier at a time, a manager's manual tier held until a date. Every change is a TierChange row.

A member qualifies by the points earned (not the balance: spending does not cost a tier), or by the
amount spent, within the programme's rolling window, net of refunds. Both come from the ledger."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.db import transaction
from django.db.models import Case, DecimalField, F, Q, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from core.locking import lock_rows
from loyalty.models import LedgerEntry, LoyaltyAccount, LoyaltyProgram, Tier, TierChange
from loyalty.services.program import _add_months, program_get

ZERO = Decimal("0")


def qualifying_values(
    *, account_ids: Iterable[int] | None, program: LoyaltyProgram, now: dt.datetime, tiers_override=None
) -> dict[int, Decimal]:
    """Each account's qualifying figure in the window (one aggregate query); None: every account."""
    since = _add_months(now, -program.qualify_window_months)
    entries = LedgerEntry.objects.filter(created_at__gte=since, order__isnull=False).filter(
        Q(kind=LedgerEntry.Kind.EARN) | Q(kind=LedgerEntry.Kind.REVERSE, points__lt=0)
    )
    if account_ids is not None:
        entries = entries.filter(account_id__in=list(account_ids))
    if program.qualify_by == LoyaltyProgram.QualifyBy.POINTS:
        # A reversal takes back what it reversed, written off or not.
        figure = Sum(F("points") - Case(When(kind=LedgerEntry.Kind.REVERSE, then=F("unrecovered")), default=Value(0)))
    else:
        figure = Sum(
            Case(
                When(kind=LedgerEntry.Kind.EARN, then=F("base_amount")),
                default=-F("base_amount"),
                output_field=DecimalField(max_digits=14, decimal_places=2),
            )
        )
    rows = entries.values("account_id").annotate(value=Coalesce(figure, Value(ZERO), output_field=DecimalField()))
    return {row["account_id"]: Decimal(row["value"]) for row in rows}


def tier_for(value: Decimal, tiers: Sequence[Tier]) -> Tier | None:
    """The highest tier whose threshold the figure reaches (tiers sorted by threshold)."""
    best = None
    for tier in tiers:
        if value >= tier.threshold:
            best = tier
    return best


def _rank(tier: Tier | None, tiers: Sequence[Tier]) -> int:
    return -1 if tier is None else [t.pk for t in tiers].index(tier.pk)


def tiers_upgrade(*, account_ids: Sequence[int], program: LoyaltyProgram | None = None, now=None) -> int:
    """Move the accounts that now qualify for a higher tier up at once (one aggregate, one bulk
    update, one bulk insert); clears a pending downgrade of those that qualify for their tier again."""
    tiers = list(Tier.objects.order_by("threshold"))
    if not tiers or not account_ids:
        return 0
    program = program or program_get()
    now = now or timezone.now()
    values = qualifying_values(account_ids=account_ids, program=program, now=now)
    accounts = LoyaltyAccount.objects.filter(pk__in=list(account_ids)).only("pk", "tier", "downgrade_due_at")
    changed, changes = [], []
    for account in accounts:
        earned = tier_for(values.get(account.pk, ZERO), tiers)
        current = next((t for t in tiers if t.pk == account.tier_id), None)
        if _rank(earned, tiers) > _rank(current, tiers):
            changes.append(TierChange(account=account, from_tier=current, to_tier=earned, reason=TierChange.Reason.UPGRADE))
            account.tier, account.downgrade_due_at = earned, None
            changed.append(account)
        elif account.downgrade_due_at and _rank(earned, tiers) >= _rank(current, tiers):
            account.downgrade_due_at = None
            changed.append(account)
    LoyaltyAccount.objects.bulk_update(changed, ["tier", "downgrade_due_at"])
    TierChange.objects.bulk_create(changes)
    return len(changes)


def tiers_downgrade(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The nightly evaluation. A member below their tier gets a grace period; when it has run out
    and they still do not qualify, they drop one tier (and a new grace period starts if they are
    still below). Manual tiers held until a date are left alone until then. Safe to run twice:
    a drop needs a due date in the past, and the drop sets the next one in the future."""
    now = now or timezone.now()
    program = program_get()
    tiers = list(Tier.objects.order_by("threshold"))
    if not tiers:
        return {"scheduled": 0, "downgraded": 0, "cleared": 0}
    today = timezone.localdate(now)
    grace = dt.timedelta(days=program.downgrade_grace_days)
    counts = {"scheduled": 0, "downgraded": 0, "cleared": 0}
    members = LoyaltyAccount.objects.filter(tier__isnull=False).exclude(tier_held_until__gte=today)
    with transaction.atomic():
        candidates = list(members.select_for_update().order_by("pk").only("pk", "tier", "downgrade_due_at"))
        values = qualifying_values(account_ids=None, program=program, now=now)
        changed, changes = [], []
        for account in candidates:
            earned = tier_for(values.get(account.pk, ZERO), tiers)
            rank, earned_rank = _rank(account.tier, tiers), _rank(earned, tiers)
            if earned_rank >= rank:
                if account.downgrade_due_at:
                    account.downgrade_due_at = None
                    counts["cleared"] += 1
                    changed.append(account)
                continue
            if account.downgrade_due_at is None:
                account.downgrade_due_at = now + grace
                counts["scheduled"] += 1
            elif account.downgrade_due_at <= now:
                lower = tiers[rank - 1] if rank > 0 else None
                changes.append(
                    TierChange(account=account, from_tier=account.tier, to_tier=lower, reason=TierChange.Reason.DOWNGRADE)
                )
                account.tier = lower
                account.downgrade_due_at = now + grace if earned_rank < rank - 1 else None
                counts["downgraded"] += 1
            else:
                continue
            changed.append(account)
        LoyaltyAccount.objects.bulk_update(changed, ["tier", "downgrade_due_at"], batch_size=5000)
        TierChange.objects.bulk_create(changes, batch_size=5000)
    return counts


def tier_set_manual(*, customer_id: int, tier: Tier | None, held_until: dt.date, staff) -> TierChange:
    """A manager puts a member in a tier and holds it there until `held_until`."""
    if held_until < timezone.localdate():
        raise DomainError(_("The hold must end today or later."), field="held_until")
    from loyalty.services.ledger import account_for_customer

    account = account_for_customer(customer_id=customer_id)
    with transaction.atomic():
        lock_rows(LoyaltyAccount.objects.filter(pk=account.pk))
        account.refresh_from_db()
        change = TierChange.objects.create(
            account=account, from_tier=account.tier, to_tier=tier, reason=TierChange.Reason.MANUAL, staff=staff
        )
        LoyaltyAccount.objects.filter(pk=account.pk).update(tier=tier, tier_held_until=held_until, downgrade_due_at=None)
    return change
