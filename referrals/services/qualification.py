"""Referrals' reader of the order feed (customers.order_feed, consumer "referrals"): the referee's
first paid order qualifies a pending referral, a refund of the qualifying order voids it (during
the hold) or claws its rewards back (after approval).

Set-based per batch: one query finds the pending referrals of every referee paid in the batch, one
the referrals whose qualifying order the batch refunds; only those referrals (a handful in an
import of a million orders) go through referral_transition, each event naming the order.

- The referee's first paid order (the first the feed reports after the referral was made) at or
  above programme.min_order_amount: pending -> qualified -> held, hold_until = the moment it was
  paid + hold_days. Below the minimum: rejected, because the first order decides (the event's rule
  is "below_minimum", which does not count towards the referrer's suspension).
- The qualifying order refunded or cancelled: qualified / held / flagged -> void; approved /
  rewarded -> clawed_back (services.rewards.referral_claw_back). A lowered amount that stays paid
  changes nothing (refunds are whole-order)."""

from __future__ import annotations

import datetime as dt

from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext as _

from core.sql import ids_clause
from customers.models import Customer, Order
from customers.order_feed import order_changes_drain, order_changes_values
from referrals.models import FraudRule, Referral
from referrals.services.fraud import fraud_check_order_timing, fraud_rules_load
from referrals.services.program import program_get
from referrals.services.review import BELOW_MINIMUM
from referrals.services.rewards import referral_claw_back
from referrals.services.transitions import referral_transition

CONSUMER = "referrals"
FEED_BATCH_SIZE = 25_000
LOOKUP_CHUNK = 5_000
PAID = Order.Status.PAID
S = Referral.State
# What is read of every change. The amount and time are read only for the few changes that touch
# a referral (order_changes_values): loading a Decimal and a datetime for each of an import's
# million changes was about half of this consumer's Python time.
CHANGE_FIELDS = ("order_id", "customer_id", "old_status", "new_status")
BEFORE_QUALIFYING = (S.QUALIFIED, S.HELD, S.FLAGGED)
AFTER_APPROVAL = (S.APPROVED, S.REWARDED)


def _chunks(ids: list[int]):
    for start in range(0, len(ids), LOOKUP_CHUNK):
        yield ids[start : start + LOOKUP_CHUNK]


def _in(column: str, ids: list[int]) -> RawSQL:
    """`column` of referrals is one of `ids`: ranges or one list parameter (core.sql.ids_clause), not
    a parameter per id that Django prepares and psycopg splits out of the statement one by one."""
    clause, params = ids_clause(f"{Referral._meta.db_table}.{column}", ids)
    return RawSQL(clause, params, output_field=BooleanField())


def _held_or_flagged(*, referral: Referral, program, rules, ordered_at, signed_up_at, data: dict, now) -> None:
    """After qualifying: the fast-order signal (the first order came implausibly soon after the
    sign-up) joins the referral's signals; past the review score the referral goes to the review
    queue instead of the hold, and a rule set to reject rejects it."""
    signal = fraud_check_order_timing(referral=referral, ordered_at=ordered_at, signed_up_at=signed_up_at, rules=rules)
    if signal is not None:
        referral.signals = [*referral.signals, signal.as_dict()]
        referral.risk_score = min(referral.risk_score + signal.weight, 32767)
        reason = _("The referee's first order came %(minutes)s minutes after signing up.") % {
            "minutes": signal.detail["minutes"]
        }
        fields = {"signals": referral.signals, "risk_score": referral.risk_score}
        if signal.action == FraudRule.Action.REJECT:
            referral_transition(
                referral=referral, to_state=S.REJECTED, actor="system", reason=reason, data={**data, "rule": signal.code},
                fields={**fields, "verdict": Referral.Verdict.REJECTED, "decided_at": now},
            )
            return
        if referral.risk_score >= program.review_score:
            referral_transition(
                referral=referral, to_state=S.FLAGGED, actor="system", reason=reason, data={**data, "rule": signal.code},
                fields={**fields, "verdict": Referral.Verdict.REVIEW, "hold_until": referral.hold_until,
                        "review_deadline": now + dt.timedelta(hours=program.review_deadline_hours)},
            )
            return
        Referral.objects.filter(pk=referral.pk).update(**fields)
    referral_transition(
        referral=referral, to_state=S.HELD, actor="system",
        reason=_("Held for the refund window of order #%(order)s.") % {"order": data["order_id"]}, data=data,
        fields={"hold_until": referral.hold_until},
    )


def _qualify(first_paid: dict) -> None:
    """`first_paid`: customer id -> the batch's first change that paid one of their orders."""
    program = rules = None
    for ids in _chunks(sorted(first_paid)):
        pending = list(Referral.objects.select_for_update().filter(_in("referee_id", ids), state=S.PENDING).order_by("pk"))
        if not pending:
            continue
        # With the fast-order signal's inputs: when each qualifying order was placed (here) and its
        # referee signed up (below).
        details = order_changes_values(
            [first_paid[r.referee_id] for r in pending], "new_amount", "changed_at", "order__ordered_at"
        )
        signed_up_at = dict(
            Customer.objects.filter(pk__in=[r.referee_id for r in pending]).values_list("pk", "signed_up_at")
        )
        for referral in pending:
            program = program or program_get()
            rules = rules if rules is not None else fraud_rules_load()
            change = first_paid[referral.referee_id]
            amount, paid_at, ordered_at = details[change.id]
            data = {"order_id": change.order_id, "amount": str(amount)}
            if amount < program.min_order_amount:
                referral_transition(
                    referral=referral, to_state=S.REJECTED, actor="system",
                    reason=_("The referee's first paid order #%(order)s (%(amount)s) is below the minimum of %(minimum)s.")
                    % {"order": change.order_id, "amount": amount, "minimum": program.min_order_amount},
                    data={**data, "rule": BELOW_MINIMUM},
                    fields={"qualifying_order_id": None, "order_amount": amount, "decided_at": paid_at},
                )
                continue
            referral_transition(
                referral=referral, to_state=S.QUALIFIED, actor="system",
                reason=_("The referee's first paid order #%(order)s.") % {"order": change.order_id}, data=data,
                fields={"qualifying_order_id": change.order_id, "order_amount": amount, "qualified_at": paid_at},
            )
            referral.hold_until = paid_at + dt.timedelta(days=program.hold_days)
            _held_or_flagged(
                referral=referral, program=program, rules=rules, ordered_at=ordered_at,
                signed_up_at=signed_up_at.get(referral.referee_id), data=data, now=paid_at,
            )


def _refund(refunded: dict) -> None:
    """`refunded`: order id -> the change that took it out of paid."""
    for ids in _chunks(sorted(refunded)):
        hit = list(
            Referral.objects.select_for_update()
            .filter(_in("qualifying_order_id", ids), state__in=[*BEFORE_QUALIFYING, *AFTER_APPROVAL])
            .order_by("pk")
        )
        if not hit:
            continue
        details = order_changes_values([refunded[r.qualifying_order_id] for r in hit], "changed_at")
        for referral in hit:
            change = refunded[referral.qualifying_order_id]
            (refunded_at,) = details[change.id]
            data = {"order_id": change.order_id, "status": change.new_status}
            if referral.state in BEFORE_QUALIFYING:
                referral_transition(
                    referral=referral, to_state=S.VOID, actor="system",
                    reason=_("The qualifying order #%(order)s was refunded during the hold.") % {"order": change.order_id},
                    data=data,
                )
            else:
                referral_claw_back(
                    referral=referral, data=data, now=refunded_at,
                    reason=_("The qualifying order #%(order)s was refunded after approval.") % {"order": change.order_id},
                )


def order_changes_handle(changes: list) -> None:
    """`changes`: the feed's rows (named tuples of CHANGE_FIELDS), oldest first."""
    first_paid: dict = {}
    refunded: dict = {}
    for change in changes:
        if change.new_status == PAID and change.old_status != PAID:
            first_paid.setdefault(change.customer_id, change)
        elif change.old_status == PAID and change.new_status != PAID:
            refunded[change.order_id] = change
    # Qualify first: an order paid and refunded in one batch leaves its referral void.
    if first_paid:
        _qualify(first_paid)
    if refunded:
        _refund(refunded)


def referrals_feed_consume(*, batch_size: int = FEED_BATCH_SIZE, progress=None) -> int:
    """Handle every order change ready in the feed; how many were handled."""
    return order_changes_drain(
        consumer=CONSUMER, handle=order_changes_handle, batch_size=batch_size, fields=CHANGE_FIELDS, progress=progress
    )
