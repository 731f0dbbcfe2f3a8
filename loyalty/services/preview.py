"""What a change to the tiers or the earning rules would do, before an admin saves it: how many
members would move up or down, and how the points liability would change (the points a year the
last 12 months' orders would earn under the new settings, and their money value).

Set-based: one statement evaluates every member in the database (the proposal's few tiers become
CASE expressions over each member's qualifying figure) and returns a handful of rows, the moves
counted and the year's order amounts summed per currency, current tier and proposed tier; the
points are worked out from those sums in Decimal. Nothing is written, and the number of queries
does not grow with the members. Members with a manual tier held until a future date do not move."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from core.planner import jit_off
from loyalty.models import EarningRule, LedgerEntry, LoyaltyAccount, Tier
from loyalty.services.program import _add_months, program_get
from loyalty.services.tiers import qualifying_sql

NEW_TIER_KEY = -1  # stands for the proposed tier that is not saved yet (no pk)
NO_TIER = -2  # a member without a tier, in keys compared with = (NULL never equals)
NO_THRESHOLD = Decimal("-1")


@dataclass(frozen=True)
class TierSpec:
    pk: int | None
    name: str
    threshold: Decimal
    multiplier: Decimal

    @property
    def key(self) -> int:
        return NEW_TIER_KEY if self.pk is None else self.pk


def _tier_specs(tiers) -> list[TierSpec]:
    return sorted(
        (TierSpec(pk=t.pk, name=t.name, threshold=t.threshold, multiplier=t.multiplier) for t in tiers),
        key=lambda spec: spec.threshold,
    )


def _number(value: Decimal) -> str:
    """A literal for SQL: thresholds come from a validated DecimalField, never from free text.
    (Bound as parameters they would compare as text on SQLite.)"""
    return format(Decimal(value), "f")


def _evaluated_case(proposed: list[TierSpec], column: str, value_of) -> str:
    """CASE over the member's figure `f`: `value_of(spec)` of the highest proposed tier reached
    (`proposed` sorted by threshold; of two at one threshold, the later, as tiers.tier_for does)."""
    whens = " ".join(f"WHEN f >= {_number(spec.threshold)} THEN {value_of(spec)}" for spec in reversed(proposed))
    return f"CASE {whens} ELSE {column} END" if whens else column


def _yearly_points(sums, rates, multipliers) -> int:
    total = Decimal("0")
    for (currency, tier_key), amount in sums.items():
        rate = rates.get(currency)
        if rate is not None:
            total += amount * rate * multipliers.get(tier_key, Decimal("1"))
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

    # The member's tier's threshold under the proposal (its current one if the proposal deletes it).
    thresholds = {spec.pk: spec.threshold for spec in current} | {spec.pk: spec.threshold for spec in proposed if spec.pk}
    old_threshold = " ".join(f"WHEN {pk} THEN {_number(value)}" for pk, value in thresholds.items())
    old_threshold = f"CASE m.tier_id {old_threshold} ELSE {NO_THRESHOLD} END" if thresholds else str(NO_THRESHOLD)
    new_key = _evaluated_case(proposed, str(NO_TIER), lambda spec: spec.key)
    new_threshold = _evaluated_case(proposed, str(NO_THRESHOLD), lambda spec: _number(spec.threshold))
    qualifying, qualifying_params = qualifying_sql(program=program, now=now)
    amounts_sql, amounts_params = (
        LedgerEntry.objects.filter(kind=LedgerEntry.Kind.EARN, order__isnull=False, created_at__gte=_add_months(now, -12))
        .order_by()
        .values("account_id", "order__currency")
        .annotate(amount=Sum("base_amount"))
        .values_list("account_id", "order__currency", "amount")
        .query.sql_with_params()
    )
    today = connection.ops.adapt_datefield_value(timezone.localdate(now))
    # m: every member, `f` their figure, `held` whether a manual tier holds them; e: per member and
    # currency, the amount their orders earned on in the last 12 months.
    sql = f"""
        WITH m AS (
            SELECT a.id, a.tier_id, COALESCE(q.value, 0) AS f,
                   CASE WHEN a.tier_held_until IS NOT NULL AND a.tier_held_until >= %s THEN 1 ELSE 0 END AS held
            FROM loyalty_loyaltyaccount a LEFT JOIN ({qualifying}) q ON q.account_id = a.id
        ), v AS (
            SELECT m.id, COALESCE(m.tier_id, {NO_TIER}) AS old_key,
                   CASE WHEN m.held = 1 THEN COALESCE(m.tier_id, {NO_TIER}) ELSE {new_key} END AS new_key,
                   {old_threshold} AS old_threshold, {new_threshold} AS new_threshold
            FROM m
        ), e (account_id, currency, amount) AS ({amounts_sql})
        SELECT 'members', NULL, NULL, NULL, COUNT(*),
               SUM(CASE WHEN v.new_key <> v.old_key AND v.new_threshold > v.old_threshold THEN 1 ELSE 0 END),
               SUM(CASE WHEN v.new_key <> v.old_key AND v.new_threshold < v.old_threshold THEN 1 ELSE 0 END)
        FROM v
        UNION ALL
        SELECT 'amounts', e.currency, v.old_key, v.new_key, SUM(e.amount), 0, 0
        FROM e JOIN v ON v.id = e.account_id
        GROUP BY e.currency, v.old_key, v.new_key"""
    with transaction.atomic(), connection.cursor() as cursor:
        jit_off(cursor)  # compiling the plan took seconds more than running it, at 20k members as at 1M
        cursor.execute(sql, [today, *qualifying_params, *amounts_params])
        rows = cursor.fetchall()
    members = up = down = 0
    old_sums: dict = defaultdict(Decimal)
    new_sums: dict = defaultdict(Decimal)
    for kind, currency, old_key, new_key, total, moved_up, moved_down in rows:
        if kind == "members":
            members, up, down = int(total or 0), int(moved_up or 0), int(moved_down or 0)
        else:
            amount = Decimal(str(total or 0))
            old_sums[currency, old_key] += amount
            new_sums[currency, new_key] += amount
    old_yearly = _yearly_points(old_sums, rates, {s.key: s.multiplier for s in current})
    new_yearly = _yearly_points(new_sums, new_rates, {s.key: s.multiplier for s in proposed})
    outstanding = LoyaltyAccount.objects.aggregate(total=Sum("balance"))["total"] or 0
    return {
        "members": members,
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
