"""Set-based earning for many paid orders at once (an import of a million orders is a thousand
batches of a handful of statements, never a million single-row services).

Per batch, in one transaction: enrol the customers without an account (INSERT ... SELECT ON
CONFLICT DO NOTHING), lock their accounts in id order, append one earn entry per order that has not
earned yet (INSERT ... SELECT; the lock and the unique index of orders' earns, one per order,
make a repeat a no-op; an order's earn has no idempotency key, see loyalty.models.LedgerEntry),
update the balances (one UPDATE ... FROM) and open the lots (INSERT ... SELECT). The entries keep
the rate and amount they were earned at, for refunds. With tiers, the members whose qualifying
bound is exact move up in the balances' UPDATE itself (PostgreSQL); the others go through
tiers_upgrade, which reads their figures (and every member on SQLite).

The same SQL runs on PostgreSQL and SQLite (>= 3.35: UPDATE ... FROM, window functions)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import connection, transaction
from django.utils import timezone

from core.planner import jit_off, statistics_refresh
from core.sql import ids_clauses
from loyalty.models import Tier, TierChange
from loyalty.services.program import lot_available_at, lot_expiry, program_get
from loyalty.services.tiers import (
    BOUND_IS_EXACT,
    MOVES_UP,
    clears_downgrade,
    exact_since_param,
    reached_tier_join,
    tiers_upgrade,
)

BATCH_SIZE = 25_000
EARNING_TABLES = ("loyalty_loyaltyaccount", "loyalty_ledgerentry", "loyalty_pointlot")


def _dt(value: dt.datetime | None):
    return connection.ops.adapt_datetimefield_value(value)


def orders_earn(*, order_ids: Sequence[int], now: dt.datetime | None = None) -> int:
    """Earn points for the paid orders among `order_ids` that have not earned yet; the number of
    earn entries written. Safe to repeat and to run alongside other writers of the same accounts."""
    now = now or timezone.now()
    program = program_get()
    written = 0
    ids = sorted(set(order_ids))
    for start in range(0, len(ids), BATCH_SIZE):
        written += _earn_batch(ids[start : start + BATCH_SIZE], now=now, program=program)
    return written


INSERT_ENTRIES = """INSERT INTO loyalty_ledgerentry
    (account_id, kind, points, balance_after, reason, source, order_id, idempotency_key, rate, base_amount,
     unrecovered, created_at)"""

# `totals` is a query of (account_id, total). Debt is repaid first: the new net balance decides
# both columns (never both above zero). `bound`: more to SET (BOUND_RAISE for order earns).
UPDATE_BALANCES = """UPDATE loyalty_loyaltyaccount
    SET balance = CASE WHEN balance - debt + s.total > 0 THEN balance - debt + s.total ELSE 0 END,
        debt = CASE WHEN balance - debt + s.total < 0 THEN debt - balance - s.total ELSE 0 END{bound}
    FROM ({totals}) s WHERE loyalty_loyaltyaccount.id = s.account_id"""

# Order earns raise the qualifying figure: the bound of it rises by as much in the same UPDATE
# (`totals` then has a column `qualify`: the points, or the amount, by the programme's unit), and
# the bound stays exact only if these earns are no older than its oldest (the %s: their time).
BOUND_RAISE = """,
        qualify_bound = qualify_bound + s.qualify,
        qualify_exact_since = CASE WHEN qualify_exact_since > %s THEN %s ELSE qualify_exact_since END"""

# A lot holds what its entry left above zero: the part that repaid debt is not spendable.
INSERT_LOTS = """INSERT INTO loyalty_pointlot (account_id, entry_id, points, remaining, available_at, expires_at)
    SELECT e.account_id, e.id, e.points,
           CASE WHEN e.balance_after >= e.points THEN e.points WHEN e.balance_after <= 0 THEN 0 ELSE e.balance_after END,
           %s, %s"""


ENTRY_TOTALS = "SELECT account_id, SUM(points) AS total FROM entry GROUP BY account_id"

# With tiers (PostgreSQL's one statement): each member's tier after the earns, where their bound is
# exact (see LoyaltyAccount.qualify_exact_since): the figure is then the bound plus these earns. The
# accounts are locked, so `a` is their row as the UPDATE finds it.
TIERS_SET = """,
        tier_id = CASE WHEN s.upgrade = 1 THEN s.to_tier_id ELSE loyalty_loyaltyaccount.tier_id END,
        downgrade_due_at = CASE WHEN s.clear = 1 THEN NULL ELSE loyalty_loyaltyaccount.downgrade_due_at END"""

INSERT_UPGRADES = """INSERT INTO loyalty_tierchange (account_id, from_tier_id, to_tier_id, reason, staff_id, created_at)
    SELECT id, from_tier_id, to_tier_id, %s, NULL, %s FROM account WHERE upgrade = 1 ORDER BY id"""


def _totals_with_tiers(totals: str, *, program, now) -> tuple[str, list]:
    """`totals` (account_id, total, qualify) with, per account: its tier now (from_tier_id), the tier
    its figure reaches (to_tier_id), whether its bound is exact, and whether it moves up or has its
    pending downgrade cleared (only when exact)."""
    return (
        f"""SELECT x.account_id, x.total, x.qualify, x.exact, x.from_tier_id, up.id AS to_tier_id,
                   CASE WHEN x.exact = 1 AND {MOVES_UP} THEN 1 ELSE 0 END AS upgrade,
                   CASE WHEN x.exact = 1 AND {clears_downgrade("x.due")} THEN 1 ELSE 0 END AS clear
            FROM (
                SELECT t.account_id, t.total, t.qualify, a.tier_id AS from_tier_id, a.downgrade_due_at AS due,
                       a.qualify_bound + t.qualify AS figure,
                       CASE WHEN {BOUND_IS_EXACT} THEN 1 ELSE 0 END AS exact
                FROM ({totals}) t JOIN loyalty_loyaltyaccount a ON a.id = t.account_id
            ) x
            LEFT JOIN loyalty_tier cur ON cur.id = x.from_tier_id
            {reached_tier_join("x.figure")}""",
        [exact_since_param(program=program, now=now)],
    )


def _qualify_column(program) -> str:
    """The entries' column the qualifying figure sums (see tiers.qualifying_queryset)."""
    return "points" if program.qualify_by == program.QualifyBy.POINTS else "base_amount"


def _new_earn_rows(in_orders: str, order_params: list, in_earned: str, earned_params: list, now) -> tuple[str, list]:
    """SELECT of the earn entries to append: one per paid order of the batch with a rule for its
    currency, not earned yet, at the order's rate times the member's tier multiplier; the balance
    after each is the account's net balance plus the running sum of the batch's points (whole
    points as bigint; a ROWS frame, as an order is once in its account's partition).

    "Not earned yet" looks up the batch's orders in the unique index of earns by order, bounded by
    the batch whatever the ledger's size or its statistics (a NOT EXISTS on the key was planned as a scan of
    the whole ledger per batch while the statistics still said it was empty). That unique index
    (ledgerentry_order_earn_uniq) stays the database's guard."""
    return (
        f"""SELECT s.account_id, 'earn', s.points,
                   s.net + SUM(s.points) OVER (
                       PARTITION BY s.account_id ORDER BY s.order_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
                   ),
                   '', 'order', s.order_id, NULL, s.rate, s.amount, 0, %s
            FROM (
                SELECT a.id AS account_id, a.balance - a.debt AS net, o.id AS order_id, o.amount,
                       r.points_per_unit * COALESCE(t.multiplier, 1) AS rate,
                       CAST(FLOOR(o.amount * r.points_per_unit * COALESCE(t.multiplier, 1)) AS bigint) AS points
                FROM customers_order o
                JOIN loyalty_loyaltyaccount a ON a.customer_id = o.customer_id
                JOIN loyalty_earningrule r ON r.currency = o.currency AND r.active
                LEFT JOIN loyalty_tier t ON t.id = a.tier_id
                WHERE {in_orders} AND o.status = 'paid'
            ) s
            WHERE s.points > 0 AND s.order_id NOT IN (
                SELECT x.order_id FROM loyalty_ledgerentry x WHERE {in_earned} AND x.kind = 'earn'
            )""",
        [_dt(now), *order_params, *earned_params],
    )


def _earn_batch(order_ids: list[int], *, now, program) -> int:
    (in_orders, order_params), (in_entries, entry_params), (in_earned, earned_params) = ids_clauses(
        order_ids, "o.id", "e.order_id", "x.order_id"
    )
    # Entries of this batch are the earn entries of these orders without a lot yet: every earn
    # gets its lot in the transaction that writes it.
    new_entries = f"""
        FROM loyalty_ledgerentry e LEFT JOIN loyalty_pointlot l ON l.entry_id = e.id
        WHERE {in_entries} AND e.kind = 'earn' AND l.id IS NULL"""
    lot_params = [
        _dt(lot_available_at(program=program, earned_at=now)),
        _dt(lot_expiry(program=program, earned_at=now)),
    ]
    qualify = _qualify_column(program)
    # A first import fills these tables from empty: plans made on "empty" statistics read a whole
    # index per member (see core.planner).
    statistics_refresh(*EARNING_TABLES)
    with transaction.atomic(), connection.cursor() as cursor:
        jit_off(cursor)
        # Only customers without an account go to the INSERT: once a customer base is enrolled, ON
        # CONFLICT alone tried (and dropped) an insertion for every member of every batch. It stays
        # for an enrolment by another transaction in between.
        cursor.execute(
            f"""INSERT INTO loyalty_loyaltyaccount (customer_id, balance, debt, created_at, qualify_exact_since)
                SELECT DISTINCT o.customer_id, 0, 0, %s, %s FROM customers_order o WHERE {in_orders} AND o.status = 'paid'
                  AND NOT EXISTS (SELECT 1 FROM loyalty_loyaltyaccount a WHERE a.customer_id = o.customer_id)
                ON CONFLICT (customer_id) DO NOTHING""",
            [_dt(now), _dt(now), *order_params],
        )
        if connection.vendor == "postgresql":
            # Counted in the server: the ids are not needed here, only the locks.
            cursor.execute(
                f"""SELECT COUNT(*) FROM (SELECT a.id FROM loyalty_loyaltyaccount a
                    WHERE a.customer_id IN (SELECT o.customer_id FROM customers_order o WHERE {in_orders})
                    ORDER BY a.id FOR UPDATE OF a) locked""",
                order_params,
            )
        select_new, select_params = _new_earn_rows(in_orders, order_params, in_earned, earned_params, now)
        tiers = Tier.objects.exists()
        touched = None
        if connection.vendor == "postgresql":
            totals = f"SELECT account_id, SUM(points) AS total, SUM({qualify}) AS qualify FROM entry GROUP BY account_id"
            bound, bound_params, upgrade, upgrade_params = BOUND_RAISE, [_dt(now), _dt(now)], "", []
            if tiers:
                # The members whose bound is exact move up in the same UPDATE (no second write of
                # their rows); the others are returned for tiers_upgrade, which reads their figures.
                totals, totals_params = _totals_with_tiers(totals, program=program, now=now)
                bound, bound_params = bound + TIERS_SET, [*bound_params, *totals_params]
                upgrade = f""", change AS ({INSERT_UPGRADES} RETURNING 1)"""
                upgrade_params = [TierChange.Reason.UPGRADE.value, _dt(now)]
            # One statement: the entries, then the balances (and tiers) and the lots from what it
            # RETURNed.
            cursor.execute(
                f"""WITH entry AS ({INSERT_ENTRIES} {select_new}
                        RETURNING id, account_id, points, balance_after{", base_amount" if qualify != "points" else ""}),
                    account AS ({UPDATE_BALANCES.format(totals=totals, bound=bound)}
                        RETURNING loyalty_loyaltyaccount.id{", s.*" if tiers else ""}),
                    lot AS ({INSERT_LOTS} FROM entry e RETURNING 1){upgrade}
                    SELECT (SELECT COUNT(*) FROM lot),
                           {"ARRAY(SELECT id FROM account WHERE exact = 0)" if tiers else "NULL"}""",
                [*select_params, *bound_params, *lot_params, *upgrade_params],
            )
            written, touched = cursor.fetchone()
        else:
            cursor.execute(f"{INSERT_ENTRIES} {select_new}", select_params)
            written = cursor.rowcount
            if written:
                cursor.execute(
                    UPDATE_BALANCES.format(
                        totals=f"""SELECT e.account_id, SUM(e.points) AS total, SUM(e.{qualify}) AS qualify
                            {new_entries} GROUP BY e.account_id""",
                        bound=BOUND_RAISE,
                    ),
                    [_dt(now), _dt(now), *entry_params],
                )
                cursor.execute(f"{INSERT_LOTS} {new_entries}", [*lot_params, *entry_params])
        if written and tiers and touched != []:
            if touched is None:
                cursor.execute(
                    f"SELECT DISTINCT e.account_id FROM loyalty_ledgerentry e WHERE {in_entries} AND e.kind = 'earn'",
                    entry_params,
                )
                touched = [row[0] for row in cursor.fetchall()]
            tiers_upgrade(account_ids=touched, program=program, now=now)
    return written
