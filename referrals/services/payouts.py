"""Paying out claimed cash rewards: staff (Manager) mark a requested payout paid with the payment's
reference. Idempotent: marking a paid payout paid again with the same reference changes nothing and
says so; another reference is refused, so a second payment is never recorded over the first."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from referrals.models import Payout


@dataclass(frozen=True)
class PaidOutcome:
    payout: Payout
    changed: bool


def payout_mark_paid(*, payout_id: int, staff, reference: str, now=None) -> PaidOutcome:
    reference = reference.strip()
    if not reference:
        raise DomainError(_("Give the payment's reference."), field="reference", code="reference_required")
    with transaction.atomic():
        payout = Payout.objects.select_for_update().get(pk=payout_id)
        if payout.state == Payout.State.PAID:
            if payout.reference == reference:
                return PaidOutcome(payout=payout, changed=False)
            raise DomainError(
                _("This payout was already paid with reference %(reference)s.") % {"reference": payout.reference},
                field="reference", code="already_paid",
            )
        if payout.state != Payout.State.REQUESTED:
            raise DomainError(
                _("A payout that is %(state)s cannot be paid.") % {"state": payout.get_state_display()},
                field="state", code="not_requested",
            )
        payout.state = Payout.State.PAID
        payout.paid_at = now or timezone.now()
        payout.paid_by = staff
        payout.reference = reference[:100]
        payout.save(update_fields=["state", "paid_at", "paid_by", "reference"])
    return PaidOutcome(payout=payout, changed=True)
