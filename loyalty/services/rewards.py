"""Redeeming points for a catalogue reward: the points, one item of stock and a voucher code in
one transaction. Stock is taken by one conditional UPDATE (stock > 0), so it never goes below zero
however many members redeem the last item at once; the CheckConstraint is the last guard."""

from __future__ import annotations

import secrets

from django.db.models import F
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from loyalty.models import LedgerEntry, Reward, Voucher
from loyalty.services.ledger import KeyReused, PostResult, points_redeem

# No 0/O or 1/I/L: a code read out over the phone is not misheard.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


class OutOfStock(DomainError):
    def __init__(self):
        super().__init__(_("This reward is out of stock."), field="reward", code="out_of_stock")


def voucher_code() -> str:
    return "-".join("".join(secrets.choice(CODE_ALPHABET) for _ in range(4)) for _ in range(3))


def reward_redeem(*, customer_id: int, reward_id: int, idempotency_key: str) -> tuple[Voucher, PostResult]:
    """Spend the reward's cost and issue a voucher; the same key returns the first voucher (and
    `created` False on the result)."""
    reward = Reward.objects.filter(pk=reward_id, active=True).first()
    if reward is None:
        raise DomainError(_("This reward is not available."), field="reward", code="unavailable")

    def take_stock(entry: LedgerEntry) -> None:
        if reward.stock is not None:
            taken = Reward.objects.filter(pk=reward.pk, stock__gt=0).update(stock=F("stock") - 1)
            if not taken:
                raise OutOfStock()
        Voucher.objects.create(code=voucher_code(), reward=reward, account_id=entry.account_id, entry=entry)

    result: PostResult = points_redeem(
        customer_id=customer_id, points=reward.cost, idempotency_key=idempotency_key,
        reason=reward.name, on_created=take_stock,
    )
    voucher = Voucher.objects.select_related("reward").filter(entry=result.entry).first()
    if voucher is None:  # the key was used for a redemption of points, not of a reward
        raise KeyReused()
    return voucher, result
