"""Claiming a referral reward from the portal: cash credit becomes a payout request (staff mark it
paid, services/payouts.py), points go to the customer's loyalty account. Discount rewards need no
claim: the portal shows their code from the moment they exist, and the shop takes the code at
checkout, so "claiming" one would only add a click.

A claim is atomic and idempotent. The reward row is locked first, so double clicks, two tabs or many
concurrent requests queue on it: the first moves it to claimed and writes the payout or the ledger
entry, every later one finds it claimed and returns the same outcome (`created` False). The payout's
OneToOne to the reward and the ledger's idempotency key (derived from the reward) are the backstops
the database keeps should anything bypass the lock."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from loyalty.models import LedgerEntry
from loyalty.services.ledger import points_earn
from referrals.models import Payout, Reward


class RewardNotClaimable(DomainError):
    def __init__(self, message: str, *, code: str):
        super().__init__(message, field="reward", code=code)


@dataclass(frozen=True)
class ClaimOutcome:
    reward: Reward
    payout: Payout | None
    ledger_entry_id: int | None
    created: bool


def reward_points_key(reward_id: int) -> str:
    """The loyalty ledger's idempotency key of a points reward: one entry per reward, ever."""
    return f"referral-reward:{reward_id}"


def _outcome(reward: Reward, *, created: bool) -> ClaimOutcome:
    payout = Payout.objects.filter(reward_id=reward.pk).first() if reward.kind == Reward.Kind.CASH else None
    entry_id = None
    if reward.kind == Reward.Kind.POINTS:
        entry_id = (
            LedgerEntry.objects.filter(account__customer_id=reward.customer_id, idempotency_key=reward_points_key(reward.pk))
            .values_list("pk", flat=True)
            .first()
        )
    return ClaimOutcome(reward=reward, payout=payout, ledger_entry_id=entry_id, created=created)


def reward_claim(*, reward_id: int, customer_id: int, now=None) -> ClaimOutcome:
    """Claim the customer's reward. Repeating the claim returns the first outcome; a reward of
    another customer does not exist for this one (Reward.DoesNotExist)."""
    now = now or timezone.now()
    with transaction.atomic():
        reward = Reward.objects.select_for_update().get(pk=reward_id, customer_id=customer_id)
        if reward.state == Reward.State.CLAIMED:
            return _outcome(reward, created=False)
        if reward.kind == Reward.Kind.DISCOUNT:
            raise RewardNotClaimable(
                _("A discount needs no claim: use its code at checkout."), code="discount_needs_no_claim"
            )
        if reward.state != Reward.State.AVAILABLE:
            raise RewardNotClaimable(
                _("This reward can no longer be claimed (%(state)s).") % {"state": reward.get_state_display()},
                code="not_available",
            )
        if reward.expires_at is not None and reward.expires_at <= now:
            raise RewardNotClaimable(_("This reward has expired."), code="expired")
        payout = None
        entry_id = None
        if reward.kind == Reward.Kind.CASH:
            if reward.amount and reward.amount > 0:
                payout = Payout.objects.create(
                    reward=reward, customer_id=customer_id, amount=reward.amount, currency=reward.currency
                )
        else:
            result = points_earn(
                customer_id=customer_id, points=reward.points, idempotency_key=reward_points_key(reward.pk),
                source=LedgerEntry.Source.REFERRAL, reason=str(_("Referral reward")),
            )
            entry_id = result.entry.pk
        reward.state = Reward.State.CLAIMED
        reward.claimed_at = now
        reward.save(update_fields=["state", "claimed_at"])
    return ClaimOutcome(reward=reward, payout=payout, ledger_entry_id=entry_id, created=True)
