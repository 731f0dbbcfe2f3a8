"""The one way a referral changes state: check the move is allowed, update the row, append the
event that says who or what moved it and why. Call it inside the transaction that locked the
referral (select_for_update), so two moves of one referral cannot interleave."""

from __future__ import annotations

from django.utils.translation import gettext as _

from core.exceptions import DomainError
from referrals.models import Referral, ReferralEvent

S = Referral.State

ALLOWED = {
    S.PENDING: {S.QUALIFIED, S.FLAGGED, S.REJECTED},
    S.QUALIFIED: {S.HELD, S.FLAGGED, S.REJECTED, S.VOID},
    S.HELD: {S.APPROVED, S.FLAGGED, S.REJECTED, S.VOID},
    # A manager's approval continues the normal path: back to pending (no qualifying order yet) or
    # held (hold not over); approved once it is. A refund of the qualifying order voids it.
    S.FLAGGED: {S.APPROVED, S.REJECTED, S.PENDING, S.HELD, S.VOID},
    S.APPROVED: {S.REWARDED, S.CLAWED_BACK},
    S.REWARDED: {S.CLAWED_BACK},
    S.REJECTED: set(),
    S.VOID: set(),
    S.CLAWED_BACK: set(),
}


class TransitionRefused(DomainError):
    def __init__(self, *, current: str, wanted: str):
        super().__init__(
            _("A referral that is %(current)s cannot become %(wanted)s.")
            % {"current": S(current).label, "wanted": S(wanted).label},
            field="state",
            code="transition_refused",
        )


def referral_transition(
    *, referral: Referral, to_state: str, actor: str, reason: str, staff=None, data: dict | None = None,
    fields: dict | None = None,
) -> ReferralEvent:
    """Move `referral` (locked by the caller) to `to_state`, setting `fields` on it too, and log it.
    `reason` is stored as text for people to read: pass a translated string or a rule's name."""
    if to_state not in ALLOWED[S(referral.state)]:
        raise TransitionRefused(current=referral.state, wanted=to_state)
    from_state = referral.state
    referral.state = to_state
    for name, value in (fields or {}).items():
        setattr(referral, name, value)
    referral.save(update_fields=["state", "updated_at", *(fields or {})])
    return ReferralEvent.objects.create(
        referral=referral, from_state=from_state, to_state=to_state, actor=actor, staff=staff, reason=reason[:500],
        data=data or {},
    )


def referral_created_event(*, referral: Referral, actor: str, reason: str, staff=None, data: dict | None = None):
    """The first event of a new referral (from_state empty)."""
    return ReferralEvent.objects.create(
        referral=referral, from_state="", to_state=referral.state, actor=actor, staff=staff, reason=reason[:500],
        data=data or {},
    )
