"""Bonus points for actions (first order, birthday, survey answered, referral), configured as
BonusRule rows with optional limits per day, month and lifetime. Other apps call `bonus_award`
(referrals.services -> loyalty.services.bonus.bonus_award(action="referral", ...)).

The limit is counted under the account's lock, after the entry is appended, so two awards at once
cannot both slip under it: the one over the limit raises and its entry is rolled back.

Bonuses for many members at once are set-based (first_order_bonuses_award from the order feed,
birthday_bonuses_award daily): the limits are conditions of the INSERT ... SELECT, counted under
the accounts' locks, and a member over a limit is skipped, not an error."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from core.sql import ids_clause
from core.times import shop_day
from customers.models import Customer, Order
from loyalty.models import BonusRule, LedgerEntry
from loyalty.services.earning import (
    BATCH_SIZE,
    ENTRY_TOTALS,
    INSERT_ENTRIES,
    INSERT_LOTS,
    UPDATE_BALANCES,
    _dt,
)
from loyalty.services.ledger import PostResult, account_for_customer, ledger_post
from loyalty.services.program import lot_available_at, lot_expiry, program_get

SOURCES = {
    BonusRule.Action.FIRST_ORDER: LedgerEntry.Source.ORDER,
    BonusRule.Action.BIRTHDAY: LedgerEntry.Source.CAMPAIGN,
    BonusRule.Action.SURVEY: LedgerEntry.Source.SURVEY,
    BonusRule.Action.REFERRAL: LedgerEntry.Source.REFERRAL,
}


class BonusLimitReached(DomainError):
    def __init__(self):
        super().__init__(_("The limit of this bonus has been reached."), code="bonus_limit")


def _period_starts(now: dt.datetime) -> dict[str, dt.datetime | None]:
    local = timezone.localtime(now)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return {"limit_per_day": day, "limit_per_month": day.replace(day=1), "limit_lifetime": None}


def bonus_award(*, customer_id: int, action: str, key: str, reason: str = "") -> PostResult | None:
    """Award the action's bonus once per `key` (e.g. the survey response's id); None when the
    action has no active rule. Raises BonusLimitReached when a limit is used up."""
    rule = BonusRule.objects.filter(action=action, active=True).first()
    if rule is None:
        return None
    prefix = f"bonus:{action}:"
    now = timezone.now()

    def check_limits(entry: LedgerEntry) -> None:
        awarded = LedgerEntry.objects.filter(account_id=entry.account_id, idempotency_key__startswith=prefix)
        for field, since in _period_starts(now).items():
            limit = getattr(rule, field)
            if limit is None:
                continue
            scope = awarded if since is None else awarded.filter(created_at__gte=since)
            if scope.count() > limit:
                raise BonusLimitReached()

    account = account_for_customer(customer_id=customer_id)
    return ledger_post(
        account_id=account.pk, kind=LedgerEntry.Kind.EARN, points=rule.points, idempotency_key=f"{prefix}{key}",
        source=SOURCES[action], reason=reason or rule.get_action_display(), on_created=check_limits, now=now,
    )


# --- set-based awards: the first order (from the order feed) and birthdays (daily) ---------------
# One entry per customer per call, written with INSERT ... SELECT under the accounts' locks, as the
# set-based earning does (its SQL for balances and lots is shared): a million-order import awards
# its first-order bonuses in a few statements per batch, not a service call per customer.

FIRST_ORDER_KEY = f"bonus:{BonusRule.Action.FIRST_ORDER}:once"
# The statuses of an order that was paid: a cancelled order may have been cancelled unpaid, so an
# earlier cancelled order does not make a later paid one "not the first".
PAID_STATUSES = (Order.Status.PAID.value, Order.Status.REFUNDED.value)


def _limit_conditions(rule: BonusRule, *, action: str, now: dt.datetime) -> tuple[str, list]:
    """SQL conditions on the account `a` that keep each of the rule's limits: fewer of the action's
    bonuses in the period than the limit (counted as bonus_award counts them, by key prefix)."""
    prefix = f"bonus:{action}:"
    conditions, params = [], []
    for field, since in _period_starts(now).items():
        limit = getattr(rule, field)
        if limit is None:
            continue
        period = "" if since is None else " AND x.created_at >= %s"
        conditions.append(
            "(SELECT COUNT(*) FROM loyalty_ledgerentry x WHERE x.account_id = a.id"
            f" AND SUBSTR(x.idempotency_key, 1, %s) = %s{period}) < %s"
        )
        params += [len(prefix), prefix, *([] if since is None else [_dt(since)]), limit]
    return "".join(f" AND {condition}" for condition in conditions), params


def _bonuses_post(
    *, rule: BonusRule, customers_sql: str, customers_params: list, key: str, now: dt.datetime, enrol: bool
) -> int:
    """Award `rule` once (idempotency `key`) to each customer `customers_sql` selects (a SELECT of
    customer ids), within its limits; how many were awarded. `enrol`: open an account for those
    without one (otherwise only enrolled members get it)."""
    program = program_get()
    action = rule.action
    limits, limit_params = _limit_conditions(rule, action=action, now=now)
    lot_params = [
        _dt(lot_available_at(program=program, earned_at=now)),
        _dt(lot_expiry(program=program, earned_at=now)),
    ]
    reason = str(rule.get_action_display())[:200]
    select_new = f"""SELECT a.id, 'earn', %s, a.balance - a.debt + %s, %s, %s, NULL, %s, NULL, NULL, 0, %s
        FROM loyalty_loyaltyaccount a
        WHERE a.customer_id IN ({customers_sql})
          AND NOT EXISTS (SELECT 1 FROM loyalty_ledgerentry k WHERE k.account_id = a.id AND k.idempotency_key = %s)
          {limits}"""
    select_params = [
        rule.points, rule.points, reason, SOURCES[action], key, _dt(now), *customers_params, key, *limit_params,
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        if enrol:
            cursor.execute(
                f"""INSERT INTO loyalty_loyaltyaccount (customer_id, balance, debt, created_at)
                    SELECT c.customer_id, 0, 0, %s FROM ({customers_sql}) c WHERE true
                    ON CONFLICT (customer_id) DO NOTHING""",
                [_dt(now), *customers_params],
            )
        if connection.vendor == "postgresql":
            cursor.execute(
                f"""SELECT COUNT(*) FROM (SELECT a.id FROM loyalty_loyaltyaccount a
                    WHERE a.customer_id IN ({customers_sql}) ORDER BY a.id FOR UPDATE OF a) locked""",
                customers_params,
            )
            cursor.execute(
                f"""WITH entry AS ({INSERT_ENTRIES} {select_new} RETURNING id, account_id, points, balance_after),
                    account AS ({UPDATE_BALANCES.format(totals=ENTRY_TOTALS, bound="")} RETURNING loyalty_loyaltyaccount.id)
                    {INSERT_LOTS} FROM entry e""",
                [*select_params, *lot_params],
            )
            return cursor.rowcount
        # SQLite (tests and development): one writer at a time, so no locks; this call's entries
        # are the ones with its key and no lot yet (every entry gets its lot in its transaction).
        cursor.execute(f"{INSERT_ENTRIES} {select_new}", select_params)
        written = cursor.rowcount
        if written:
            new_entries = """FROM loyalty_ledgerentry e LEFT JOIN loyalty_pointlot l ON l.entry_id = e.id
                WHERE e.idempotency_key = %s AND e.kind = 'earn' AND l.id IS NULL"""
            cursor.execute(
                UPDATE_BALANCES.format(
                    totals=f"SELECT e.account_id, SUM(e.points) AS total {new_entries} GROUP BY e.account_id", bound=""
                ),
                [key],
            )
            cursor.execute(f"{INSERT_LOTS} {new_entries}", [*lot_params, key])
        return written


def first_order_bonuses_award(*, order_ids: Sequence[int], now: dt.datetime | None = None) -> int:
    """The first-order bonus for the customers whose first paid order is among `order_ids` (the
    order feed's newly paid orders). Once ever per customer (one key, whatever happens to the
    order later): a refunded first order and another paid one do not award it again. A customer
    with an earlier paid (or since refunded) order is not on their first order, even if that order
    came before the rule existed. How many were awarded."""
    rule = BonusRule.objects.filter(action=BonusRule.Action.FIRST_ORDER, active=True).first()
    if rule is None or not order_ids:
        return 0
    now = now or timezone.now()
    ids = sorted(set(order_ids))
    awarded = 0
    for start in range(0, len(ids), BATCH_SIZE):
        in_orders, order_params = ids_clause("o.id", ids[start : start + BATCH_SIZE])
        first_paid = f"""SELECT DISTINCT o.customer_id FROM customers_order o
            WHERE {in_orders} AND o.status = %s AND NOT EXISTS (
                SELECT 1 FROM customers_order p WHERE p.customer_id = o.customer_id AND p.status IN (%s, %s)
                AND (p.ordered_at < o.ordered_at OR (p.ordered_at = o.ordered_at AND p.id < o.id)))"""
        awarded += _bonuses_post(
            rule=rule, customers_sql=first_paid, customers_params=[*order_params, Order.Status.PAID.value, *PAID_STATUSES],
            key=FIRST_ORDER_KEY, now=now, enrol=True,
        )
    return awarded


def birthday_month_days(day: dt.date) -> list[tuple[int, int]]:
    """The (month, day) birthdays celebrated on `day`: members born on 29 February celebrate on
    28 February in years without one (still in their birth month, and before the day has passed)."""
    dates = [(day.month, day.day)]
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        dates.append((2, 29))
    return dates


def birthday_bonuses_award(*, now: dt.datetime | None = None) -> int:
    """The birthday bonus for every enrolled member whose birthday is today in the shop's time zone
    (core.times); once per member and year (the key names the year), so a retried or repeated
    run awards nothing more. How many were awarded."""
    rule = BonusRule.objects.filter(action=BonusRule.Action.BIRTHDAY, active=True).first()
    if rule is None:
        return 0
    now = now or timezone.now()
    today = shop_day(now)
    born_today = Q()
    for month, day in birthday_month_days(today):
        born_today |= Q(birth_date__month=month, birth_date__day=day)
    sql, params = Customer.objects.filter(born_today).order_by().values("pk").query.sql_with_params()
    return _bonuses_post(
        rule=rule, customers_sql=sql, customers_params=list(params), key=f"bonus:{BonusRule.Action.BIRTHDAY}:{today.year}",
        now=now, enrol=False,
    )


def retention_points_award(*, customer_id: int, points: int, key: str, reason: str) -> PostResult:
    """Lifecycle's retention offer in points (registered in lifecycle.health_hooks by LoyaltyConfig):
    credits `points` once per `key` (retention:<level>:<day>:<customer id>)."""
    account = account_for_customer(customer_id=customer_id)
    return ledger_post(
        account_id=account.pk, kind=LedgerEntry.Kind.EARN, points=points, idempotency_key=key,
        source=LedgerEntry.Source.CAMPAIGN, reason=reason,
    )
