"""The one service every single-account change of points goes through (`ledger_post`): it locks the
account row, returns the first result for an idempotency key it has seen, checks, appends the entry,
moves the lots and updates the cached balance, all in one transaction.

Earning for many orders at once is set-based (loyalty.services.earning) and keeps the same
invariants; so does the nightly expiry (loyalty.services.expiry)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q, Sum
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


def _spendable_lots(*, account_id: int, now: dt.datetime, include_pending: bool, first_lot_id: int | None):
    lots = PointLot.objects.filter(account_id=account_id, remaining__gt=0).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    if not include_pending:
        lots = lots.filter(available_at__lte=now)
    # Soonest expiry first; never-expiring lots last.
    ordered = list(lots.order_by(F("expires_at").asc(nulls_last=True), "id"))
    if first_lot_id is not None:
        ordered.sort(key=lambda lot: lot.pk != first_lot_id)
    return ordered


def _draw(lots: list[PointLot], wanted: int) -> list[tuple[PointLot, int]]:
    taken = []
    for lot in lots:
        if wanted <= 0:
            break
        part = min(lot.remaining, wanted)
        taken.append((lot, part))
        wanted -= part
    return taken


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
        locked = LoyaltyAccount.objects.select_for_update()
        account = locked.get(pk=account_id) if account_id is not None else locked.get(customer_id=customer_id)
        account_id = account.pk
        existing = LedgerEntry.objects.filter(account_id=account_id, idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.kind != kind:
                raise KeyReused()
            return PostResult(entry=existing, created=False)
        balance, debt = account.balance, account.debt
        unrecovered = 0
        draws: list[tuple[PointLot, int]] = []
        if points < 0:
            wanted = -points
            lots = _spendable_lots(account_id=account_id, now=now, include_pending=include_pending, first_lot_id=first_lot_id)
            draws = _draw(lots, wanted)
            taken = sum(part for _lot, part in draws)
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
        entry = LedgerEntry.objects.create(
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
        if draws:
            for lot, part in draws:
                lot.remaining -= part
            if len(draws) == 1:
                # The usual case: a plain UPDATE (bulk_update's CASE took longer to build than to run).
                PointLot.objects.filter(pk=draws[0][0].pk).update(remaining=draws[0][0].remaining)
            else:
                PointLot.objects.bulk_update([lot for lot, _part in draws], ["remaining"])
            LotAllocation.objects.bulk_create(
                [LotAllocation(entry=entry, lot=lot, points=part) for lot, part in draws]
            )
        elif points > 0:
            # The programme (lot expiry, hold) is read only here: a debit never needs it.
            _credit_lots(
                entry=entry, account_id=account_id, credit=points - (account.debt - debt), restore_lots=restore_lots,
                program=program or program_get(), now=now,
            )
        LoyaltyAccount.objects.filter(pk=account_id).update(balance=balance, debt=debt)
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
