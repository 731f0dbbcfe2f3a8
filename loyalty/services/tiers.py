"""Tiers: upgrades at once when a member qualifies, downgrades on a schedule after a grace period
and one tier at a time, a manager's manual tier held until a date. Every change is a TierChange row.

A member qualifies by the points earned (not the balance: spending does not cost a tier), or by the
amount spent, within the programme's rolling window, net of refunds. Both come from the ledger."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Case, DecimalField, F, Min, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from core.locking import lock_rows
from core.planner import jit_off
from core.sql import ids_clause
from loyalty.models import LedgerEntry, LoyaltyAccount, LoyaltyProgram, Tier, TierChange
from loyalty.services.program import _add_months, program_get

ZERO = Decimal("0")


def qualifying_queryset(*, program: LoyaltyProgram, now: dt.datetime):
    """Each account's qualifying figure in the window: rows of (account_id, value), one aggregate."""
    since = _add_months(now, -program.qualify_window_months)
    entries = LedgerEntry.objects.filter(created_at__gte=since, order__isnull=False).filter(
        Q(kind=LedgerEntry.Kind.EARN) | Q(kind=LedgerEntry.Kind.REVERSE, points__lt=0)
    )
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
    return (
        entries.order_by()
        .values("account_id")
        .annotate(value=Coalesce(figure, Value(ZERO), output_field=DecimalField()))
        .values("account_id", "value")
    )


def _earned_in_window(*, program: LoyaltyProgram):
    """What the order earns of the window came to (the qualifying figure without its reversals):
    the exact value a member's qualify_bound is reset to. The figure can rise only by new earns
    (a reversal leaving the window raises the net figure, never this sum), so this plus what is
    earned later stays above it."""
    earned = Q(kind=LedgerEntry.Kind.EARN)
    column = "points" if program.qualify_by == LoyaltyProgram.QualifyBy.POINTS else "base_amount"
    return Coalesce(Sum(column, filter=earned), Value(ZERO), output_field=DecimalField())


def qualifying_values(*, account_ids: Iterable[int] | None, program: LoyaltyProgram, now: dt.datetime) -> dict[int, Decimal]:
    """Each account's qualifying figure in the window (one aggregate query); None: every account."""
    rows = qualifying_queryset(program=program, now=now)
    if account_ids is not None:
        rows = rows.filter(account_id__in=list(account_ids))
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


# Whether the bound of an account `a` is its figure (see LoyaltyAccount.qualify_exact_since); never
# NULL. Its parameter: exact_since_param(), the window's start.
BOUND_IS_EXACT = "(a.qualify_exact_since IS NOT NULL AND a.qualify_exact_since >= %s AND a.qualify_bound IS NOT NULL)"


def exact_since_param(*, program: LoyaltyProgram, now: dt.datetime):
    return connection.ops.adapt_datetimefield_value(_add_months(now, -program.qualify_window_months))


# Given a member's current tier `cur` and the tier their figure reaches `up` (both joined rows of
# loyalty_tier, NULL for none): they move up at once, and a pending downgrade (`due`) is cleared
# when they move up or reach their tier again. Shared by tiers_upgrade and the earning's statement.
MOVES_UP = "(up.id IS NOT NULL AND (cur.id IS NULL OR up.threshold > cur.threshold))"


def clears_downgrade(due: str) -> str:
    return f"({MOVES_UP} OR ({due} IS NOT NULL AND (cur.id IS NULL OR up.threshold >= cur.threshold)))"


def reached_tier_join(figure: str) -> str:
    """LEFT JOIN of `up`, the tier the SQL expression `figure` reaches (the highest threshold at or
    below it; NULL below the lowest): the band from its threshold to the next one that the figure
    falls in. A join on the few tiers' bands, where a subquery per member ran once or twice for
    each member of an earning batch."""
    bands = "SELECT id, threshold, LEAD(threshold) OVER (ORDER BY threshold) AS next_threshold FROM loyalty_tier"
    return (f"LEFT JOIN ({bands}) up ON {figure} >= up.threshold"
            f" AND ({figure} < up.next_threshold OR up.next_threshold IS NULL)")


def tiers_upgrade(*, account_ids: Sequence[int], program: LoyaltyProgram | None = None, now=None) -> int:
    """Move the accounts that now qualify for a higher tier up at once; clears a pending downgrade
    of those that qualify for their tier again. How many moved up.

    Set-based, as the earning that calls it after each batch: one statement on PostgreSQL (the plan
    of each account, its tier change and its update), two on SQLite, whatever the accounts. Members
    in the top tier without a pending downgrade cannot change and are not looked at, nor are those
    whose qualify_bound (an upper bound of their figure, see LoyaltyAccount) is below the next
    threshold above their tier: most of a batch's members. Of the rest, those whose bound is exact
    (qualify_exact_since within the window) move on their bound; only the others' figures are read
    from the ledger, and their bound and exactness are reset from what was read. Only the accounts
    that change are written. (Building a model per account and bulk_update's CASE of one branch per
    account took minutes for a batch of 25,000 newly upgraded members: the CASE is evaluated branch
    by branch for every row.)"""
    tiers = list(Tier.objects.order_by("threshold").values_list("pk", flat=True))
    if not tiers or not account_ids:
        return 0
    program = program or program_get()
    now = now or timezone.now()
    ops = connection.ops
    postgres = connection.vendor == "postgresql"
    ids = sorted(set(account_ids))
    in_ids, id_params = ids_clause("a.id", ids)
    # The accounts that can change: with a downgrade pending, or below the top tier with a bound of
    # their figure (qualify_bound; NULL: unknown) that reaches the next threshold above their tier.
    # The others cannot move up whatever their exact figure: it is not computed.
    candidates = f"""SELECT a.id FROM loyalty_loyaltyaccount a
        WHERE {in_ids} AND (a.downgrade_due_at IS NOT NULL OR (
            (a.tier_id IS NULL OR a.tier_id <> %s)
            AND (a.qualify_bound IS NULL OR a.qualify_bound >= (
                SELECT MIN(t.threshold) FROM loyalty_tier t
                WHERE a.tier_id IS NULL OR t.threshold > (SELECT c.threshold FROM loyalty_tier c WHERE c.id = a.tier_id)))))"""
    candidate_params = [*id_params, tiers[-1]]
    exact_params = [exact_since_param(program=program, now=now)]
    # The other candidates' figures by a subquery per account (its entries through the account's
    # index): never the whole ledger (a join of the aggregate read all of it for every batch).
    # `earned`: their bound's new value; `oldest`: the oldest earn it counts.
    window = qualifying_queryset(program=program, now=now).filter(account_id=OuterRef("pk"))
    earned = Q(kind=LedgerEntry.Kind.EARN)
    read, read_params = (
        LoyaltyAccount.objects.filter(
            pk__in=RawSQL(f"{candidates} AND NOT {BOUND_IS_EXACT}", [*candidate_params, *exact_params])
        )
        .annotate(
            account_id=F("pk"),
            value=Subquery(window.values("value")),
            earned=Subquery(window.annotate(earned=_earned_in_window(program=program)).values("earned")),
            oldest=Subquery(window.annotate(oldest=Min("created_at", filter=earned)).values("oldest")),
        )
        .values("account_id", "value", "earned", "oldest")
        .order_by()
        .query.sql_with_params()
    )
    # Each candidate's figure (`value`), what its bound becomes (`earned`) and since when that is
    # exact (when no reversal in the window lowers the figure below it; NULL otherwise).
    figures = f"""SELECT c.account_id, c.tier_id, c.downgrade_due_at, c.exact,
            CASE WHEN c.exact = 1 THEN c.qualify_bound ELSE COALESCE(q.value, 0) END AS value,
            CASE WHEN c.exact = 1 THEN c.qualify_bound ELSE COALESCE(q.earned, 0) END AS earned,
            CASE WHEN c.exact = 1 THEN c.qualify_exact_since
                 WHEN COALESCE(q.value, 0) = COALESCE(q.earned, 0) THEN COALESCE(q.oldest, %s) END AS exact_since
        FROM (
            SELECT a.id AS account_id, a.tier_id, a.downgrade_due_at, a.qualify_bound, a.qualify_exact_since,
                   CASE WHEN {BOUND_IS_EXACT} THEN 1 ELSE 0 END AS exact
            FROM loyalty_loyaltyaccount a WHERE a.id IN ({candidates})
        ) c
        LEFT JOIN ({read}) q ON q.account_id = c.account_id"""
    figure_params = [ops.adapt_datetimefield_value(now), *exact_params, *candidate_params, *read_params]
    # The tier earned (`up`: the highest threshold the figure reaches) against the current one; a
    # row per candidate: moves up (upgrade = 1), has a pending downgrade to clear (clear = 1), or
    # neither (a read figure then only resets the bound).
    plan = f"""SELECT f.account_id, f.tier_id AS from_tier_id, up.id AS to_tier_id, f.exact, f.earned, f.exact_since,
            CASE WHEN {MOVES_UP} THEN 1 ELSE 0 END AS upgrade,
            CASE WHEN {clears_downgrade("f.downgrade_due_at")} THEN 1 ELSE 0 END AS clear
        FROM ({figures}) f
        LEFT JOIN loyalty_tier cur ON cur.id = f.tier_id
        {reached_tier_join("f.value")}"""
    insert_changes = """INSERT INTO loyalty_tierchange (account_id, from_tier_id, to_tier_id, reason, staff_id, created_at)
        SELECT p.account_id, p.from_tier_id, p.to_tier_id, %s, NULL, %s FROM {plan} p WHERE p.upgrade = 1
        ORDER BY p.account_id"""
    change_params = [TierChange.Reason.UPGRADE.value, ops.adapt_datetimefield_value(now)]
    update_accounts = """UPDATE loyalty_loyaltyaccount
        SET tier_id = CASE WHEN p.upgrade = 1 THEN p.to_tier_id ELSE loyalty_loyaltyaccount.tier_id END,
            downgrade_due_at = CASE WHEN p.clear = 1 THEN NULL ELSE loyalty_loyaltyaccount.downgrade_due_at END,
            qualify_bound = p.earned, qualify_exact_since = p.exact_since
        FROM {plan} p WHERE p.account_id = loyalty_loyaltyaccount.id AND (p.upgrade = 1 OR p.clear = 1 OR p.exact = 0)"""
    with transaction.atomic(), connection.cursor() as cursor:
        jit_off(cursor)  # EXPLAIN ANALYZE at 25,000 members: JIT took 615 ms of 685
        if postgres:
            cursor.execute(
                f"""WITH plan AS MATERIALIZED ({plan}),
                    change AS ({insert_changes.format(plan="plan")} RETURNING 1),
                    account AS ({update_accounts.format(plan="plan")} RETURNING 1)
                    SELECT COUNT(*) FROM change""",
                [*figure_params, *change_params],
            )
            return cursor.fetchone()[0]
        # SQLite (tests and development): no writing WITH; the plan twice, the tiers unchanged between.
        cursor.execute(insert_changes.format(plan=f"({plan})"), [*change_params, *figure_params])
        moved = cursor.rowcount
        cursor.execute(update_accounts.format(plan=f"({plan})"), figure_params)
        return moved


def qualifying_sql(
    *, program: LoyaltyProgram, now: dt.datetime, accounts_sql: str | None = None, accounts_params: Sequence = ()
) -> tuple[str, list]:
    """qualifying_values() as SQL (columns account_id, value) to join in set-based statements;
    `accounts_sql`: a SELECT of the account ids to restrict it to (None: every account)."""
    rows = qualifying_queryset(program=program, now=now)
    if accounts_sql is not None:
        rows = rows.filter(account_id__in=RawSQL(accounts_sql, list(accounts_params)))
    sql, params = rows.query.sql_with_params()
    return sql, list(params)


DOWNGRADE_EVAL = "loyalty_downgrade_eval"  # temporary: the members whose tier or due date may change
DOWNGRADE_PLAN = "loyalty_downgrade_plan"  # temporary: what happens to each of them
# A member with a tier (`cur`) and their qualifying figure (`q`, joined on the account `a`).
MEMBERS = """loyalty_loyaltyaccount a JOIN loyalty_tier cur ON cur.id = a.tier_id
    LEFT JOIN ({qualifying}) q ON q.account_id = a.id"""
NOT_HELD = "(a.tier_held_until IS NULL OR a.tier_held_until < %s)"
FIGURE = "COALESCE(q.value, 0)"


def tiers_downgrade(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The nightly evaluation. A member below their tier gets a grace period; when it has run out
    and they still do not qualify, they drop one tier (and a new grace period starts if they are
    still below). Manual tiers held until a date are left alone until then. Safe to run twice:
    a drop needs a due date in the past, and the drop sets the next one in the future.

    Set-based, a fixed number of statements however many members: one aggregate over the window
    finds the members whose state may change (few on most nights), their rows are locked in id
    order (as the earning locks them: no deadlock with it), their figures are read again under the
    locks (an earning committed in between counts, as when every member was locked first), then
    two UPDATEs, one INSERT ... SELECT of the tier changes and one UPDATE ... FROM apply the plan."""
    now = now or timezone.now()
    program = program_get()
    counts = {"scheduled": 0, "downgraded": 0, "cleared": 0}
    if not Tier.objects.exists():
        return counts
    ops = connection.ops
    today = ops.adapt_datefield_value(timezone.localdate(now))
    at = ops.adapt_datetimefield_value(now)
    due = ops.adapt_datetimefield_value(now + dt.timedelta(days=program.downgrade_grace_days))
    postgres = connection.vendor == "postgresql"
    with transaction.atomic(), connection.cursor() as cursor:
        jit_off(cursor)
        for table in (DOWNGRADE_EVAL, DOWNGRADE_PLAN):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(f"CREATE TEMP TABLE {DOWNGRADE_EVAL} (account_id bigint)")
        cursor.execute(
            f"""CREATE TEMP TABLE {DOWNGRADE_PLAN}
                (account_id bigint, from_tier_id bigint, lower_tier_id bigint, step varchar(8), below_lower integer)"""
        )
        qualifying, params = qualifying_sql(program=program, now=now)
        cursor.execute(
            f"""INSERT INTO {DOWNGRADE_EVAL} (account_id) SELECT a.id FROM {MEMBERS.format(qualifying=qualifying)}
                WHERE {NOT_HELD}
                AND (({FIGURE} >= cur.threshold AND a.downgrade_due_at IS NOT NULL)
                     OR ({FIGURE} < cur.threshold AND (a.downgrade_due_at IS NULL OR a.downgrade_due_at <= %s)))""",
            [*params, today, at],
        )
        if postgres:
            cursor.execute(f"ANALYZE {DOWNGRADE_EVAL}")  # temporary tables get no statistics otherwise
            cursor.execute(
                f"""SELECT COUNT(*) FROM (SELECT a.id FROM loyalty_loyaltyaccount a
                    WHERE a.id IN (SELECT account_id FROM {DOWNGRADE_EVAL}) ORDER BY a.id FOR UPDATE OF a) locked"""
            )
        qualifying, params = qualifying_sql(program=program, now=now, accounts_sql=f"SELECT account_id FROM {DOWNGRADE_EVAL}")
        # The tier one below: the highest threshold under the member's (none below the lowest).
        cursor.execute(
            f"""INSERT INTO {DOWNGRADE_PLAN} (account_id, from_tier_id, lower_tier_id, step, below_lower)
                SELECT a.id, a.tier_id, low.id,
                       CASE WHEN {FIGURE} >= cur.threshold THEN 'clear'
                            WHEN a.downgrade_due_at IS NULL THEN 'schedule'
                            WHEN a.downgrade_due_at <= %s THEN 'drop' ELSE 'wait' END,
                       CASE WHEN low.id IS NOT NULL AND {FIGURE} < low.threshold THEN 1 ELSE 0 END
                FROM {MEMBERS.format(qualifying=qualifying)}
                LEFT JOIN loyalty_tier low ON low.id = (
                    SELECT t.id FROM loyalty_tier t WHERE t.threshold < cur.threshold ORDER BY t.threshold DESC LIMIT 1)
                WHERE a.id IN (SELECT account_id FROM {DOWNGRADE_EVAL}) AND {NOT_HELD}""",
            [at, *params, today],
        )
        if postgres:
            cursor.execute(f"ANALYZE {DOWNGRADE_PLAN}")
        planned = f"SELECT account_id FROM {DOWNGRADE_PLAN} WHERE step = %s"
        cursor.execute(f"UPDATE loyalty_loyaltyaccount SET downgrade_due_at = NULL WHERE id IN ({planned})", ["clear"])
        counts["cleared"] = cursor.rowcount
        cursor.execute(f"UPDATE loyalty_loyaltyaccount SET downgrade_due_at = %s WHERE id IN ({planned})", [due, "schedule"])
        counts["scheduled"] = cursor.rowcount
        cursor.execute(
            f"""INSERT INTO loyalty_tierchange (account_id, from_tier_id, to_tier_id, reason, staff_id, created_at)
                SELECT p.account_id, p.from_tier_id, p.lower_tier_id, %s, NULL, %s FROM {DOWNGRADE_PLAN} p
                WHERE p.step = %s ORDER BY p.account_id""",
            [TierChange.Reason.DOWNGRADE.value, ops.adapt_datetimefield_value(timezone.now()), "drop"],
        )
        counts["downgraded"] = cursor.rowcount
        cursor.execute(
            f"""UPDATE loyalty_loyaltyaccount
                SET tier_id = p.lower_tier_id, downgrade_due_at = CASE WHEN p.below_lower = 1 THEN %s END
                FROM {DOWNGRADE_PLAN} p WHERE p.account_id = loyalty_loyaltyaccount.id AND p.step = %s""",
            [due, "drop"],
        )
        for table in (DOWNGRADE_EVAL, DOWNGRADE_PLAN):
            cursor.execute(f"DROP TABLE {table}")
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
