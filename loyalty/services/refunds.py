"""Refunds take back what their order earned and give back what it paid with points.

A refund reverses the order's earned points in proportion to the refunded amount, from the figures
stored on the earn entry (its points and the amount they were earned on), never from today's rule.
Where the points were spent already, the programme's refund policy decides: floor at zero (the rest
is recorded on the entry as not recovered) or debt. Each refund has its own key, so the same refund
never reverses twice; a full refund reverses exactly what is left."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Sum
from django.db.models.functions import Coalesce

from core.locking import lock_rows
from loyalty.models import LedgerEntry, LoyaltyAccount
from loyalty.services.ledger import ledger_post
from loyalty.services.program import program_get

ZERO = Decimal("0.00")


def _reversed_so_far(earn: LedgerEntry) -> tuple[int, Decimal]:
    totals = LedgerEntry.objects.filter(reverses=earn, points__lte=0).aggregate(
        points=Coalesce(Sum("points"), 0), unrecovered=Coalesce(Sum("unrecovered"), 0), amount=Sum("base_amount")
    )
    return -totals["points"] + totals["unrecovered"], totals["amount"] or ZERO


def order_refund_reverse(*, order_id: int, refund_key: str, refunded_amount: Decimal | None = None) -> list[LedgerEntry]:
    """Reverse the points of one refund of an order; `refunded_amount` None means a full refund.

    Returns the entries written (none when the order earned nothing, or on a repeated key)."""
    program = program_get()
    with transaction.atomic():
        # What is left to reverse is read under the account's lock: two refunds of one order at
        # once must not both reverse the same points.
        # The order's earn and its other entries are in two partial indexes (see LedgerEntry.Meta).
        entries = LedgerEntry.objects.filter(order_id=order_id).order_by()
        account_ids = sorted(
            set(
                entries.filter(kind=LedgerEntry.Kind.EARN).values_list("account_id", flat=True).union(
                    entries.exclude(kind=LedgerEntry.Kind.EARN).values_list("account_id", flat=True)
                )
            )
        )
        lock_rows(LoyaltyAccount.objects.filter(pk__in=account_ids))
        # A reversal lowers the qualifying figure below its bound: no longer exact (tiers_upgrade).
        LoyaltyAccount.objects.filter(pk__in=account_ids).update(qualify_exact_since=None)
        return _reverse(order_id=order_id, refund_key=refund_key, refunded_amount=refunded_amount, program=program)


def _reverse(*, order_id, refund_key, refunded_amount, program) -> list[LedgerEntry]:
    written = []
    earn = LedgerEntry.objects.filter(order_id=order_id, kind=LedgerEntry.Kind.EARN).select_related("lot").first()
    full = refunded_amount is None
    if earn is not None:
        reversed_points, reversed_amount = _reversed_so_far(earn)
        left = earn.points - reversed_points
        base = earn.base_amount or ZERO
        if refunded_amount is None or base <= 0 or reversed_amount + refunded_amount >= base:
            full = True
            points, amount = left, base - reversed_amount
        else:
            points = int((Decimal(earn.points) * refunded_amount / base).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
            points, amount = min(points, left), refunded_amount
        if points > 0:
            result = ledger_post(
                account_id=earn.account_id, kind=LedgerEntry.Kind.REVERSE, points=-points,
                idempotency_key=f"refund:{refund_key}:earn", source=LedgerEntry.Source.ORDER, order_id=order_id,
                base_amount=amount, rate=earn.rate, reverses=earn, shortfall=program.refund_policy,
                include_pending=True, first_lot_id=getattr(getattr(earn, "lot", None), "pk", None), program=program,
            )
            if result.created:
                written.append(result.entry)
    if full:
        written += _restore_paid_points(order_id=order_id, refund_key=refund_key, program=program)
    return written


def _restore_paid_points(*, order_id: int, refund_key: str, program) -> list[LedgerEntry]:
    """A fully refunded order paid (partly) with points gives those points back, to the lots they
    came from where these have not expired."""
    written = []
    for redeem in LedgerEntry.objects.filter(order_id=order_id, kind=LedgerEntry.Kind.REDEEM).prefetch_related(
        "allocations"
    ):
        back = -redeem.points - sum(e.points for e in LedgerEntry.objects.filter(reverses=redeem, points__gt=0))
        if back <= 0:
            continue
        result = ledger_post(
            account_id=redeem.account_id, kind=LedgerEntry.Kind.REVERSE, points=back,
            idempotency_key=f"refund:{refund_key}:paid:{redeem.pk}", source=LedgerEntry.Source.ORDER,
            order_id=order_id, reverses=redeem, program=program,
            restore_lots=[(a.lot_id, a.points) for a in redeem.allocations.all()],
        )
        if result.created:
            written.append(result.entry)
    return written
