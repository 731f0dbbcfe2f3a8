"""Rows for the referral page tests: a referral in any state and a reward of any kind, written
directly (the services that make them in production are tested in their own files)."""

import secrets
from decimal import Decimal

from django.utils import timezone

from referrals.models import Referral, Reward
from referrals.services.codes import referral_code_for
from tests.factories import CustomerFactory


def make_referral(*, referrer=None, referee=None, state="pending", **fields) -> Referral:
    referrer = referrer or CustomerFactory()
    referee = referee or CustomerFactory()
    code = referral_code_for(customer_id=referrer.pk)
    return Referral.objects.create(referrer=referrer, referee=referee, code=code, state=state, **fields)


def make_reward(customer, *, kind="cash", state="available", role="referrer", referral=None, **fields) -> Reward:
    if referral is None:
        referral = make_referral(referrer=customer, state="rewarded") if role == "referrer" else make_referral(
            referee=customer, state="rewarded"
        )
    values = {
        "cash": {"amount": Decimal("12.50"), "value": Decimal("12.50")},
        "points": {"points": 300, "value": Decimal("3.00")},
        "discount": {"percent": Decimal("10.00"), "value": Decimal("5.00"), "discount_code": secrets.token_hex(6).upper()},
    }[kind]
    return Reward.objects.create(
        customer=customer, referral=referral, role=role, kind=kind, state=state, currency="USD",
        period_start=timezone.localdate().replace(day=1), **{**values, **fields},
    )
