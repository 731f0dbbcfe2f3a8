"""A manager's decisions on referrals, and the automatic suspension of a referrer.

Approve (flagged referrals only) continues the normal path from where the flag stopped it:
- no qualifying order yet (flagged at sign-up): back to pending, to qualify on the first paid order;
- qualified and still in its hold: to held, approved by the hold task when the hold ends;
- the hold is over: approved, its rewards made and rewarded at once.
The approval is logged with the manager and the note whichever way it goes.

Reject: any referral that is not decided yet (pending, qualified, held or flagged). When a
referrer's rejected referrals reach programme.suspend_after_rejections (0: never), their code is
suspended (ReferralCode.suspended_at) and attributes nothing new. Rejections because the first
order was below the minimum are not the referrer's doing and do not count."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from core.roles import Role, role_at_least
from customers.models import Task
from referrals.models import Referral, ReferralCode, ReferralEvent
from referrals.services.program import program_get
from referrals.services.rewards import referral_reward
from referrals.services.transitions import referral_transition

S = Referral.State
NOTE_MAX = 500
# Marks a rejection the referrer could not help (the event's data "rule"): not counted for suspension.
BELOW_MINIMUM = "below_minimum"


class NotInReview(DomainError):
    def __init__(self, *, state: str):
        super().__init__(
            _("Only a referral flagged for review can be approved; this one is %(state)s.") % {"state": S(state).label},
            field="state", code="not_in_review",
        )


def _check(staff, note: str, *, required: bool) -> str:
    if not role_at_least(staff, Role.MANAGER):
        raise PermissionError(_("Only a manager may decide on referrals."))
    note = (note or "").strip()
    if required and not note:
        raise DomainError(_("Say why in a note."), field="note", code="required")
    if len(note) > NOTE_MAX:
        raise DomainError(_("The note is too long (at most %(max)d characters).") % {"max": NOTE_MAX}, field="note",
                          code="max_length")
    return note


def _locked(referral_id: int) -> Referral:
    return Referral.objects.select_for_update().get(pk=referral_id)


def _hold_end(referral: Referral) -> dt.datetime:
    """The end of the refund window: flagged before it was held, a referral has none yet."""
    if referral.hold_until is not None:
        return referral.hold_until
    return (referral.qualified_at or timezone.now()) + dt.timedelta(days=program_get().hold_days)


def referral_approve(*, referral_id: int, staff, note: str, now: dt.datetime | None = None) -> Referral:
    """A manager approves a flagged referral (note optional); see the module for where it goes."""
    note = _check(staff, note, required=False)
    now = now or timezone.now()
    reason = _("Approved by a manager: %(note)s") % {"note": note} if note else _("Approved by a manager.")
    with transaction.atomic():
        referral = _locked(referral_id)
        if referral.state != S.FLAGGED:
            raise NotInReview(state=referral.state)
        data = {"note": note}
        fields = {"decided_at": now}
        if referral.qualifying_order_id is None:
            referral_transition(referral=referral, to_state=S.PENDING, actor="staff", staff=staff, reason=reason,
                                data=data, fields=fields)
        elif _hold_end(referral) > now:
            referral_transition(referral=referral, to_state=S.HELD, actor="staff", staff=staff, reason=reason,
                                data=data, fields={**fields, "hold_until": _hold_end(referral)})
        else:
            referral_reward(referral=referral, actor="staff", staff=staff, reason=reason, now=now, data=data,
                            fields=fields)
    return referral


def referral_reject(*, referral_id: int, staff, note: str, now: dt.datetime | None = None) -> Referral:
    """A manager rejects a referral that is not decided yet, with a note (required)."""
    note = _check(staff, note, required=True)
    now = now or timezone.now()
    with transaction.atomic():
        referral = _locked(referral_id)
        referral_transition(
            referral=referral, to_state=S.REJECTED, actor="staff", staff=staff,
            reason=_("Rejected by a manager: %(note)s") % {"note": note}, data={"note": note},
            fields={"decided_at": now},
        )
        referrer_suspend_if_due(code_id=referral.code_id, now=now)
    return referral


def referrer_suspend_if_due(*, code_id: int, now: dt.datetime | None = None) -> bool:
    """Suspend the code when its referrer's rejected referrals reach the programme's limit; whether
    it was suspended now. Call it in the transaction that rejected a referral (intake's
    auto-rejections too)."""
    limit = program_get().suspend_after_rejections
    if not limit:
        return False
    rejected = (
        Referral.objects.filter(code_id=code_id, state=S.REJECTED)
        .exclude(events__to_state=S.REJECTED, events__data__rule=BELOW_MINIMUM)
        .count()
    )
    if rejected < limit:
        return False
    return bool(
        ReferralCode.objects.filter(pk=code_id, suspended_at__isnull=True).update(
            suspended_at=now or timezone.now(),
            suspended_reason=_("%(count)d rejected referrals (the limit is %(limit)d).") % {"count": rejected, "limit": limit},
        )
    )


def reviews_escalate(*, now: dt.datetime | None = None) -> int:
    """Escalate every flagged referral whose review deadline has passed: escalated_at set, an event
    logged and a task for the managers (on the referrer's customer page and in the tasks inbox). It
    stays flagged: a lapsed deadline never approves or pays anything. How many were escalated."""
    now = now or timezone.now()
    escalated = 0
    due = Referral.objects.filter(state=S.FLAGGED, review_deadline__lte=now, escalated_at__isnull=True)
    for referral_id in list(due.order_by("pk").values_list("pk", flat=True)):
        with transaction.atomic():
            referral = due.select_for_update().filter(pk=referral_id).first()
            if referral is None:
                continue  # decided or escalated meanwhile
            referral.escalated_at = now
            referral.save(update_fields=["escalated_at", "updated_at"])
            # Not a change of state (so not referral_transition): flagged -> flagged, logged alike.
            ReferralEvent.objects.create(
                referral=referral, from_state=S.FLAGGED, to_state=S.FLAGGED, actor="system",
                reason=_("The review deadline passed: escalated to the managers."),
                data={"escalated": True, "deadline": referral.review_deadline.isoformat()},
            )
            Task.objects.create(
                customer_id=referral.referrer_id, due_at=now,
                title=_("Overdue review of referral #%(id)d: approve or reject it") % {"id": referral.pk},
            )
            escalated += 1
    return escalated
