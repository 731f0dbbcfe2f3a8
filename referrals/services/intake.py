"""Taking in a referral: a code and a referee (from the API, the public sign-up page or the import)
become a Referral with its fraud verdict, its first event and the referee's fingerprints.

One path for every source (referral_intake), plus the import's set-based variant
(referrals_import_chunk) over the same rules. The first valid referrer wins: the database keeps one
referral that is not rejected per referee; when two referrers race, the second one's insert fails
on that index and the attempt is stored as rejected ("already referred"), like every auto-rejected
attempt, so the dashboard and the audit see it. A self-referral (the referee is the code's owner) is
refused without a row: the database forbids a referral of a customer by themselves."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from customers.models import Customer
from customers.services.customers import customer_create
from referrals.models import Fingerprint, FraudRule, Referral, ReferralCode, ReferralEvent
from referrals.services.codes import code_normalise
from referrals.services.fraud import (
    Assessment,
    Signal,
    Traits,
    assessment_of,
    facts_for_attempt,
    fraud_assess,
    fraud_rules_load,
    referee_queryset,
)
from referrals.services.program import program_get

Code = FraudRule.Code


class ReferralRefused(DomainError):
    """The attempt was auto-rejected (the API answers 422). `referral` is the stored rejected
    referral, or None for a self-referral (not storable)."""

    def __init__(self, message: str, *, assessment: Assessment, referral: Referral | None, field: str = "referee"):
        super().__init__(message, field=field, code="referral_rejected")
        self.assessment = assessment
        self.referral = referral


@dataclass
class IntakeResult:
    referral: Referral
    assessment: Assessment


def referral_code_find(code: str) -> ReferralCode:
    """The code's row with its owner, or DomainError (a field error on `code`): unknown, or suspended
    (a suspended referrer's code attributes nothing)."""
    found = ReferralCode.objects.select_related("customer").filter(code=code_normalise(code or "")).first()
    if found is None:
        raise DomainError(_("There is no referral code %(code)s.") % {"code": (code or "")[:32]}, field="code",
                          code="unknown_code")
    if found.suspended_at is not None:
        raise DomainError(_("This referral code is suspended."), field="code", code="suspended_code")
    return found


def rejection_message(assessment: Assessment) -> str:
    """The reason for people: the names of the rules that rejected it."""
    names = ", ".join(str(Code(signal.code).label) for signal in assessment.rejecting)
    return _("Referral rejected: %(reasons)s.") % {"reasons": names}


def referral_intake(
    *,
    code: str,
    referee_id: int,
    source: str,
    actor: str,
    ip: str | None = None,
    user_agent: str = "",
    device_id: str = "",
    phone: str | None = None,
    payment_fingerprint: str = "",
    address: str = "",
    staff=None,
    referee_existed: bool = False,
) -> IntakeResult:
    """Attribute `referee_id` to the owner of `code`, with every fraud signal checked.

    Returns the new referral (pending, or flagged for review) and its assessment. Raises
    DomainError for a bad code, an unknown referee or an inactive programme (nothing stored), and
    ReferralRefused when it is auto-rejected (stored as a rejected referral, except a self-referral).
    `referee_existed`: the sign-up page found the referee's record already there (see fraud.py).
    A fixed number of queries, whatever the size of the tables."""
    program = program_get()
    if not program.active:
        raise DomainError(_("The referral programme is not active."), code="programme_inactive")
    referral_code = referral_code_find(code)
    referrer = referral_code.customer
    referee = referee_queryset().filter(pk=referee_id).first()
    if referee is None:
        raise DomainError(_("There is no customer %(id)s.") % {"id": referee_id}, field="referee", code="unknown_referee")
    now = timezone.now()
    rules = fraud_rules_load()
    traits = Traits.of(
        ip=ip, user_agent=user_agent, device_id=device_id, phone=phone or referee.phone,
        payment_fingerprint=payment_fingerprint, address=address,
    )
    facts = facts_for_attempt(referrer=referrer, referee=referee, traits=traits, rules=rules, now=now, ip=ip)
    facts.record_existed = referee_existed
    assessment = fraud_assess(facts=facts, rules=rules, review_score=program.review_score)
    if referrer.pk == referee.pk:
        # Not storable (referral_not_self), even with the rule switched off; only the answer is kept.
        if not assessment.rejecting:
            own = Signal(code=Code.SELF_REFERRAL, weight=100, action=FraudRule.Action.REJECT, detail={"customer": referee.pk})
            assessment = assessment_of([*assessment.signals, own], review_score=program.review_score)
        raise ReferralRefused(rejection_message(assessment), assessment=assessment, referral=None)
    row = Referral(
        referrer=referrer, referee_id=referee.pk, code=referral_code, source=source, ip=ip or None,
        user_agent=(user_agent or "")[:512], device_id=(device_id or "")[:128],
    )
    with transaction.atomic():
        referral = referral_store(row, assessment=assessment, program=program, now=now, actor=actor, staff=staff)
        if referral is None:  # another referrer won the race for this referee
            winner = (
                Referral.objects.filter(referee_id=referee.pk).exclude(state=Referral.State.REJECTED)
                .values_list("pk", flat=True).first()
            )
            rule = rules.get(Code.ALREADY_REFERRED)
            lost = Signal(
                code=Code.ALREADY_REFERRED, weight=rule.weight if rule else 100, action=FraudRule.Action.REJECT,
                detail={"referral": winner, "race": True},
            )
            assessment = assessment_of([*assessment.signals, lost], review_score=program.review_score)
            referral = referral_store(row, assessment=assessment, program=program, now=now, actor=actor, staff=staff)
        fingerprints_record(customer_id=referee.pk, traits=traits, now=now)
    if referral.state == Referral.State.REJECTED:
        raise ReferralRefused(rejection_message(assessment), assessment=assessment, referral=referral)
    return IntakeResult(referral=referral, assessment=assessment)


def referral_fields_set(row: Referral, *, assessment: Assessment, program, now: dt.datetime) -> None:
    row.risk_score = assessment.score
    row.verdict = assessment.verdict
    row.signals = assessment.signals_json()
    if assessment.verdict == Referral.Verdict.REJECTED:
        row.state, row.decided_at = Referral.State.REJECTED, now
    elif assessment.verdict == Referral.Verdict.REVIEW:
        row.state = Referral.State.FLAGGED
        row.review_deadline = now + dt.timedelta(hours=program.review_deadline_hours)
    else:
        row.state = Referral.State.PENDING


def created_reason(assessment: Assessment, source: str) -> str:
    if assessment.verdict == Referral.Verdict.REJECTED:
        return rejection_message(assessment)
    if assessment.verdict == Referral.Verdict.REVIEW:
        return _("Flagged for review (risk score %(score)d): %(reasons)s.") % {
            "score": assessment.score, "reasons": ", ".join(str(Code(s.code).label) for s in assessment.signals),
        }
    return _("Referral recorded (%(source)s).") % {"source": Referral.Source(source).label}


def referral_store(row: Referral, *, assessment: Assessment, program, now, actor, staff) -> Referral | None:
    """Insert the referral and its first event; None when the referee got a live referral first
    (the partial unique index refused a live row; a rejected one always goes in)."""
    row.pk = None
    referral_fields_set(row, assessment=assessment, program=program, now=now)
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        if row.state == Referral.State.REJECTED:
            raise
        return None
    ReferralEvent.objects.create(
        referral=row, from_state="", to_state=row.state, actor=actor, staff=staff,
        reason=created_reason(assessment, row.source)[:500],
        data={"risk_score": assessment.score, "verdict": assessment.verdict, "signals": assessment.signals_json()},
    )
    return row


def fingerprints_record(*, customer_id: int, traits: Traits, now: dt.datetime | None = None) -> None:
    """Remember what a customer was seen with (one upsert; last_seen_at moves on a repeat)."""
    if not traits.hashes:
        return
    now = now or timezone.now()
    Fingerprint.objects.bulk_create(
        [Fingerprint(customer_id=customer_id, kind=kind, value=value, last_seen_at=now) for kind, value in sorted(traits.hashes.items())],
        update_conflicts=True, unique_fields=["kind", "value", "customer"], update_fields=["last_seen_at"],
    )


def customer_for_signup(*, first_name: str, last_name: str, email: str, marketing_opt_in: bool) -> tuple[Customer, bool]:
    """The referee of a sign-up and whether it is new: a new lead customer (no orders yet), or the
    customer who has this address already (then the referral is rejected as an existing customer,
    and the record is left unchanged). The page answers alike, so it tells nobody whether an address
    is known."""
    existing = Customer.objects.filter(email=email.strip().lower()).first()
    if existing is not None:
        return existing, False
    try:
        customer = customer_create(first_name=first_name, last_name=last_name, email=email,
                                   email_opt_in=marketing_opt_in, signed_up_at=timezone.now())
    except DomainError:
        # Created by a parallel sign-up with the same address a moment ago.
        existing = Customer.objects.filter(email=email.strip().lower()).first()
        if existing is None:
            raise
        return existing, False
    return customer, True
