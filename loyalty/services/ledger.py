"""The one service every single-account change of points goes through (`ledger_post`): it locks the
account row, returns the first result for an idempotency key it has seen, checks, appends the entry,
moves the lots and updates the cached balance, all in one transaction.

Earning for many orders at once is set-based (loyalty.services.earning) and keeps the same
invariants; so does the nightly expiry (loyalty.services.expiry)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Case, F, Q, Sum, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from loyalty.models import LedgerEntry, LotAllocation, LoyaltyAccount, LoyaltyProgram, PointLot
from loyalty.services.program import lot_available_at, lot_expiry, program_get


class InsufficientPoints(DomainError):
    def __init__(self, *, available: int, wanted: int):
        super().__init__(
            _("Not enough points: %(available)d available, %(wanted)d needed.") % {"available": available, "wanted": wanted},
            field="points",
            code="insufficient_points",
        )
        self.available = available
        self.wanted = wanted


class KeyReused(DomainError):
    def __init__(self):
        super().__init__(
            _("This idempotency key was already used for a different operation."), field="idempotency_key", code="key_reused"
        )


class Shortfall:
    """What a debit does when the spendable points do not cover it."""

    REFUSE = "refuse"  # redemptions, negative adjustments: nothing is written
    FLOOR = "floor"  # take what there is, record the rest as not recovered
    DEBT = "debt"  # take what there is, owe the rest


@dataclass(frozen=True)
class PostResult:
    entry: LedgerEntry
    created: bool


def account_for_customer(*, customer_id: int) -> LoyaltyAccount:
    """The customer's account, enrolling the customer on first use (race-safe)."""
    account, _created = LoyaltyAccount.objects.get_or_create(customer_id=customer_id)
    return account


ACCOUNTS, ENTRIES, LOTS, ALLOCATIONS = (
    model._meta.db_table for model in (LoyaltyAccount, LedgerEntry, PointLot, LotAllocation)
)
# The fields of an entry that a debit writes in SQL (_debit_write_in_one_statement).
ENTRY_FIELDS = ("account", "kind", "points", "balance_after", "reason", "source", "order", "staff", "idempotency_key",
                "rate", "base_amount", "unrecovered", "reverses", "created_at")

# ledger_post is the busiest write (every redemption through the API): its reads and a debit's
# writes are written out in SQL, fixed strings, because building them with the ORM took more CPU
# than running them (profiled: about half of a redemption's Python time went to query building).


def _account_locked(*, account_id: int | None, customer_id: int | None) -> tuple[int, int, int]:
    """(id, balance, debt) of the account by its id or its customer's, its row locked until the
    transaction ends (LoyaltyAccount.DoesNotExist when there is none)."""
    column, value = ("id", account_id) if account_id is not None else ("customer_id", customer_id)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, balance, debt FROM {ACCOUNTS} WHERE {column} = %s{lock}", [value])
        row = cursor.fetchone()
    if row is None:
        raise LoyaltyAccount.DoesNotExist
    return row


def _key_and_spendable_lots(
    *, account_id: int, idempotency_key: str, now: dt.datetime, debit: bool, include_pending: bool,
    first_lot_id: int | None,
) -> tuple[tuple[int, str] | None, list[tuple[int, int]]]:
    """One query, run after the account's lock: the entry already posted under this key as
    (id, kind), or None; and for a debit the spendable lots as (id, remaining) in the order it
    draws them: `first_lot_id` first, then the soonest expiry, never-expiring lots last."""
    params = [account_id, idempotency_key]
    lots = ""
    if debit:
        at = connection.ops.adapt_datetimefield_value(now)
        pending = "" if include_pending else " AND l.available_at <= %s"
        lots = (f" LEFT JOIN {LOTS} l ON l.account_id = %s AND l.remaining > 0"
                f" AND (l.expires_at IS NULL OR l.expires_at > %s){pending}"
                " ORDER BY CASE WHEN l.id = %s THEN 0 ELSE 1 END, l.expires_at IS NULL, l.expires_at, l.id")
        params += [account_id, at, *([] if include_pending else [at]), first_lot_id]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.id, e.kind{', l.id, l.remaining' if debit else ''} FROM (SELECT 1 AS one) o"
            f" LEFT JOIN {ENTRIES} e ON e.account_id = %s AND e.idempotency_key = %s{lots}",
            params,
        )
        rows = cursor.fetchall()
    existing = (rows[0][0], rows[0][1]) if rows[0][0] is not None else None
    return existing, [(row[2], row[3]) for row in rows if debit and row[2] is not None]


def _draw(lots: list[tuple[int, int]], wanted: int) -> list[tuple[int, int, int]]:
    """(lot id, points taken, remaining after) for each lot drawn from, in order."""
    taken = []
    for lot_id, remaining in lots:
        if wanted <= 0:
            break
        part = min(remaining, wanted)
        taken.append((lot_id, part, remaining - part))
        wanted -= part
    return taken


def _debit_write_in_one_statement(*, entry: LedgerEntry, draws, balance: int, debt: int) -> int:
    """PostgreSQL: the entry, its lots' new remaining, its allocations and the balance in one
    statement (data-modifying CTEs, one round trip instead of four); the entry's id."""
    fields = [LedgerEntry._meta.get_field(name) for name in ENTRY_FIELDS]
    params = [field.get_db_prep_save(getattr(entry, field.attname), connection) for field in fields]
    statement = [
        f"WITH entry AS (INSERT INTO {ENTRIES} ({', '.join(field.column for field in fields)})"
        f" VALUES ({', '.join(['%s'] * len(fields))}) RETURNING id)"
    ]
    if draws:
        rows = ", ".join(["(%s::bigint, %s::bigint, %s::bigint)"] * len(draws))
        statement.append(
            f", draws (lot_id, part, remaining) AS (VALUES {rows})"
            f", lots AS (UPDATE {LOTS} l SET remaining = d.remaining FROM draws d WHERE l.id = d.lot_id)"
            f", allocations AS (INSERT INTO {ALLOCATIONS} (entry_id, lot_id, points)"
            " SELECT entry.id, d.lot_id, d.part FROM entry, draws d)"
        )
        params += [value for draw in draws for value in draw]
    statement.append(f", account AS (UPDATE {ACCOUNTS} SET balance = %s, debt = %s WHERE id = %s) SELECT id FROM entry")
    params += [balance, debt, entry.account_id]
    with connection.cursor() as cursor:
        cursor.execute("".join(statement), params)
        return cursor.fetchone()[0]


def _debit_write(*, entry: LedgerEntry, draws, balance: int, debt: int) -> None:
    """The other databases (SQLite): the same writes, a statement each."""
    entry.save(force_insert=True)
    if len(draws) == 1:
        PointLot.objects.filter(pk=draws[0][0]).update(remaining=draws[0][2])
    elif draws:
        PointLot.objects.bulk_update(
            [PointLot(pk=lot_id, remaining=remaining) for lot_id, _part, remaining in draws], ["remaining"]
        )
    LotAllocation.objects.bulk_create(
        [LotAllocation(entry=entry, lot_id=lot_id, points=part) for lot_id, part, _remaining in draws]
    )
    LoyaltyAccount.objects.filter(pk=entry.account_id).update(balance=balance, debt=debt)


def ledger_post(
    *,
    account_id: int | None = None,
    customer_id: int | None = None,
    kind: str,
    points: int,
    idempotency_key: str,
    source: str,
    reason: str = "",
    order_id: int | None = None,
    staff=None,
    rate: Decimal | None = None,
    base_amount: Decimal | None = None,
    reverses: LedgerEntry | None = None,
    shortfall: str = Shortfall.REFUSE,
    include_pending: bool = False,
    first_lot_id: int | None = None,
    restore_lots: list[tuple[int, int]] | None = None,
    now: dt.datetime | None = None,
    program: LoyaltyProgram | None = None,
    on_created=None,
) -> PostResult:
    """Append one entry of `points` (signed) to the account and move its balance and lots.

    A credit repays any debt first, then opens a lot (or refills `restore_lots`, [(lot_id, points)],
    where a refund gives back what an order paid with points). A debit draws from the spendable lots
    that expire soonest (`first_lot_id` first) and records each in LotAllocation; when they do not
    cover it, `shortfall` decides. `on_created(entry)` runs inside the transaction, e.g. to take a
    reward's stock, and may raise to undo everything.

    The account is `account_id`'s or, one query less, `customer_id`'s (LoyaltyAccount.DoesNotExist
    when the customer has none)."""
    now = now or timezone.now()
    with transaction.atomic():
        account_id, balance, debt = _account_locked(account_id=account_id, customer_id=customer_id)
        debit = points < 0
        existing, lots = _key_and_spendable_lots(
            account_id=account_id, idempotency_key=idempotency_key, now=now, debit=debit,
            include_pending=include_pending, first_lot_id=first_lot_id,
        )
        if existing is not None:
            if existing[1] != kind:
                raise KeyReused()
            return PostResult(entry=LedgerEntry.objects.get(pk=existing[0]), created=False)
        debt_before = debt
        unrecovered = 0
        draws: list[tuple[int, int, int]] = []
        if debit:
            wanted = -points
            draws = _draw(lots, wanted)
            taken = sum(part for _lot_id, part, _remaining in draws)
            if taken < wanted:
                if shortfall == Shortfall.REFUSE:
                    raise InsufficientPoints(available=taken, wanted=wanted)
                if shortfall == Shortfall.FLOOR:
                    unrecovered = wanted - taken
                    points = -taken
                else:
                    debt += wanted - taken
            balance -= taken
        else:
            repaid = min(debt, points)
            debt -= repaid
            balance += points - repaid
        entry = LedgerEntry(
            account_id=account_id,
            kind=kind,
            points=points,
            balance_after=balance - debt,
            reason=reason[:200],
            source=source,
            order_id=order_id,
            staff=staff,
            idempotency_key=idempotency_key,
            rate=rate,
            base_amount=base_amount,
            reverses=reverses,
            unrecovered=unrecovered,
            created_at=now,
        )
        if debit and connection.vendor == "postgresql":
            entry.pk = _debit_write_in_one_statement(entry=entry, draws=draws, balance=balance, debt=debt)
            entry._state.adding, entry._state.db = False, connection.alias
        elif debit:
            _debit_write(entry=entry, draws=draws, balance=balance, debt=debt)
        else:
            entry.save(force_insert=True)
            # The programme (lot expiry, hold) is read only here: a debit never needs it.
            program = program or program_get()
            _credit_lots(
                entry=entry, account_id=account_id, credit=points - (debt_before - debt), restore_lots=restore_lots,
                program=program, now=now,
            )
            bound = {}
            if kind == LedgerEntry.Kind.EARN and order_id is not None:
                # An order's earn raises the qualifying figure: its bound rises as much (tiers_upgrade).
                raised = points if program.qualify_by == LoyaltyProgram.QualifyBy.POINTS else base_amount or 0
                bound = {
                    "qualify_bound": F("qualify_bound") + raised,
                    # Still exact if this earn is no older than the oldest the bound counts.
                    "qualify_exact_since": Case(
                        When(qualify_exact_since__gt=now, then=Value(now)), default=F("qualify_exact_since")
                    ),
                }
            LoyaltyAccount.objects.filter(pk=account_id).update(balance=balance, debt=debt, **bound)
        if on_created is not None:
            on_created(entry)
    return PostResult(entry=entry, created=True)


def _credit_lots(*, entry, account_id, credit, restore_lots, program, now) -> None:
    """Put `credit` points (what is left after repaying debt) into lots."""
    if credit <= 0:
        # All of it repaid debt: an empty lot keeps the entry's place in the lot accounting.
        PointLot.objects.create(
            account_id=account_id, entry=entry, points=entry.points, remaining=0, available_at=now, expires_at=now
        )
        return
    if restore_lots:
        # Refill the lots the points came from while they have not expired; the rest gets a new lot.
        refill = []
        for lot in PointLot.objects.filter(pk__in=[lot_id for lot_id, _part in restore_lots]).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        ):
            part = min(dict(restore_lots)[lot.pk], lot.points - lot.remaining, credit)
            if part > 0:
                lot.remaining += part
                credit -= part
                refill.append(lot)
        PointLot.objects.bulk_update(refill, ["remaining"])
        # The entry's own lot holds what could not go back (possibly nothing), available at once.
        PointLot.objects.create(
            account_id=account_id, entry=entry, points=entry.points, remaining=credit, available_at=now,
            expires_at=lot_expiry(program=program, earned_at=now) if credit else now,
        )
        return
    PointLot.objects.create(
        account_id=account_id,
        entry=entry,
        points=entry.points,
        remaining=credit,
        available_at=lot_available_at(program=program, earned_at=now) if entry.kind == LedgerEntry.Kind.EARN else now,
        expires_at=lot_expiry(program=program, earned_at=now),
    )


def points_earn(
    *, customer_id: int, points: int, idempotency_key: str, source: str, reason: str = "", order_id: int | None = None,
    rate: Decimal | None = None, base_amount: Decimal | None = None,
) -> PostResult:
    """Earn points (an order, a referral, a survey, a campaign); the same key earns once."""
    if points <= 0:
        raise DomainError(_("Points earned must be above zero."), field="points")
    account = account_for_customer(customer_id=customer_id)
    return ledger_post(
        account_id=account.pk, kind=LedgerEntry.Kind.EARN, points=points, idempotency_key=idempotency_key,
        source=source, reason=reason, order_id=order_id, rate=rate, base_amount=base_amount,
    )


def points_adjust(*, customer_id: int, points: int, reason: str, idempotency_key: str, staff) -> PostResult:
    """A staff member's correction, up or down, with a reason. Down never goes below zero."""
    if points == 0:
        raise DomainError(_("An adjustment must change the balance."), field="points")
    if not reason.strip():
        raise DomainError(_("Give a reason for the adjustment."), field="reason")
    account = account_for_customer(customer_id=customer_id)
    return ledger_post(
        account_id=account.pk, kind=LedgerEntry.Kind.ADJUST, points=points, idempotency_key=idempotency_key,
        source=LedgerEntry.Source.STAFF, reason=reason.strip(), staff=staff,
    )


def points_redeem(
    *, customer_id: int, points: int, idempotency_key: str, reason: str = "", order_id: int | None = None, on_created=None
) -> PostResult:
    """Spend spendable (not pending, not expired) points, soonest-expiring lots first.

    Raises InsufficientPoints, writing nothing, when the balance is short. An account is not created
    by a redemption."""
    if points <= 0:
        raise DomainError(_("Points to redeem must be above zero."), field="points")
    try:
        return ledger_post(
            customer_id=customer_id, kind=LedgerEntry.Kind.REDEEM, points=-points, idempotency_key=idempotency_key,
            source=LedgerEntry.Source.REWARD if on_created else LedgerEntry.Source.ORDER if order_id else LedgerEntry.Source.SYSTEM,
            reason=reason, order_id=order_id, on_created=on_created,
        )
    except LoyaltyAccount.DoesNotExist:
        raise InsufficientPoints(available=0, wanted=points) from None


def account_spendable(*, account_id: int, now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    return (
        PointLot.objects.filter(account_id=account_id, remaining__gt=0, available_at__lte=now)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .aggregate(total=Sum("remaining"))["total"]
        or 0
    )
