"""The in-memory evaluations the set-based SQL of loyalty.services.tiers.tiers_downgrade,
loyalty.services.tiers.tiers_upgrade and loyalty.services.preview.change_preview replaced (as they were), kept as the oracle the tests compare
the SQL with on varied data: same members moved, same figures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from loyalty.models import EarningRule, LedgerEntry, LoyaltyAccount, Tier, TierChange
from loyalty.services.preview import _tier_specs
from loyalty.services.program import _add_months, program_get
from loyalty.services.tiers import ZERO, _rank, qualifying_values, tier_for


def reference_tiers_upgrade(*, account_ids, program=None, now=None) -> int:
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


def reference_tiers_downgrade(*, now: dt.datetime | None = None) -> dict[str, int]:
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



def _yearly_points(amounts, rates, tier_of, multipliers) -> int:
    total = Decimal("0")
    for (account_id, currency), amount in amounts.items():
        rate = rates.get(currency)
        if rate is not None:
            total += amount * rate * multipliers.get(tier_of.get(account_id), Decimal("1"))
    return int(total)


def reference_change_preview(*, tier: Tier | None = None, delete_tier: bool = False, rule: EarningRule | None = None) -> dict:
    """The effect of saving `tier` or `rule` (unsaved instances with the proposed values; pk None
    for a new one), or of deleting `tier`."""
    now = timezone.now()
    program = program_get()
    current = _tier_specs(Tier.objects.all())
    proposed = [spec for spec in current if tier is None or spec.pk != tier.pk]
    if tier is not None and not delete_tier:
        proposed = _tier_specs([*proposed, tier])
    rates = {r.currency: r.points_per_unit for r in EarningRule.objects.filter(active=True)}
    new_rates = dict(rates)
    if rule is not None:
        new_rates.pop(rule.currency, None)
        if rule.active:
            new_rates[rule.currency] = rule.points_per_unit

    today = timezone.localdate(now)
    accounts = {
        row["pk"]: row
        for row in LoyaltyAccount.objects.values("pk", "tier_id", "tier_held_until")
    }
    values = qualifying_values(account_ids=None, program=program, now=now)
    up = down = 0
    new_tier_of = {}
    for pk, row in accounts.items():
        held = row["tier_held_until"] is not None and row["tier_held_until"] >= today
        evaluated = tier_for(values.get(pk, Decimal("0")), proposed)
        new = row["tier_id"] if held else (evaluated.pk if evaluated else None)
        new_tier_of[pk] = new
        if new == row["tier_id"]:
            continue
        # Ranks under the proposal: the member's tier with its proposed threshold (if it stays).
        old_threshold = next(
            (s.threshold for s in [*proposed, *current] if s.pk == row["tier_id"] and s.pk is not None), Decimal("-1")
        )
        new_threshold = evaluated.threshold if evaluated else Decimal("-1")
        if new_threshold > old_threshold:
            up += 1
        elif new_threshold < old_threshold:
            down += 1

    since = _add_months(now, -12)
    amounts = {
        (row["account_id"], row["order__currency"]): row["amount"] or Decimal("0")
        for row in LedgerEntry.objects.filter(kind=LedgerEntry.Kind.EARN, order__isnull=False, created_at__gte=since)
        .values("account_id", "order__currency")
        .annotate(amount=Sum("base_amount"))
    }
    old_tier_of = {pk: row["tier_id"] for pk, row in accounts.items()}
    old_yearly = _yearly_points(amounts, rates, old_tier_of, {s.pk: s.multiplier for s in current})
    new_yearly = _yearly_points(amounts, new_rates, new_tier_of, {s.pk: s.multiplier for s in proposed})
    outstanding = LoyaltyAccount.objects.aggregate(total=Sum("balance"))["total"] or 0
    return {
        "members": len(accounts),
        "moving_up": up,
        "moving_down": down,
        "outstanding_points": outstanding,
        "outstanding_value": (Decimal(outstanding) * program.point_value).quantize(Decimal("0.01")),
        "yearly_points_before": old_yearly,
        "yearly_points_after": new_yearly,
        "yearly_points_change": new_yearly - old_yearly,
        "yearly_value_change": (Decimal(new_yearly - old_yearly) * program.point_value).quantize(Decimal("0.01")),
        "as_of": now,
    }


