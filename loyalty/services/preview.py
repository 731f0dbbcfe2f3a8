"""What a change to the tiers or the earning rules would do, before an admin saves it: how many
members would move up or down, and how the points liability would change (the points a year the
last 12 months' orders would earn under the new settings, and their money value).

It reads the ledger in two aggregate queries and evaluates the proposal in memory; nothing is
written. Members with a manual tier held until a future date do not move."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from loyalty.models import EarningRule, LedgerEntry, LoyaltyAccount, Tier
from loyalty.services.program import _add_months, program_get
from loyalty.services.tiers import qualifying_values, tier_for


@dataclass(frozen=True)
class TierSpec:
    pk: int | None
    name: str
    threshold: Decimal
    multiplier: Decimal


def _tier_specs(tiers) -> list[TierSpec]:
    return sorted(
        (TierSpec(pk=t.pk, name=t.name, threshold=t.threshold, multiplier=t.multiplier) for t in tiers),
        key=lambda spec: spec.threshold,
    )


def _yearly_points(amounts, rates, tier_of, multipliers) -> int:
    total = Decimal("0")
    for (account_id, currency), amount in amounts.items():
        rate = rates.get(currency)
        if rate is not None:
            total += amount * rate * multipliers.get(tier_of.get(account_id), Decimal("1"))
    return int(total)


def change_preview(*, tier: Tier | None = None, delete_tier: bool = False, rule: EarningRule | None = None) -> dict:
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


