"""Shared set-up of the referral tests: a referral in a given state, the programme's settings."""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from referrals.models import GroupRewardStep, Referral, ReferralProgram
from referrals.services.codes import referral_code_for
from referrals.services.program import program_get
from tests.factories import CustomerFactory, OrderFactory


def program_set(**fields) -> ReferralProgram:
    program = program_get()
    for name, value in fields.items():
        setattr(program, name, value)
    program.save()
    return program


def referral_make(*, referrer=None, state: str = "pending", amount: str = "100.00", hold_ended: bool = True,
                  **fields) -> Referral:
    """A referral in `state`; with a paid qualifying order of `amount` unless pending. Built
    directly (the states' paths have their own tests)."""
    referrer = referrer or CustomerFactory()
    referee = CustomerFactory()
    code = referral_code_for(customer_id=referrer.pk)
    now = timezone.now()
    if state != "pending" and "qualifying_order" not in fields:
        order = OrderFactory(customer=referee, amount=Decimal(amount), status="paid")
        fields = {
            "qualifying_order": order, "order_amount": order.amount, "qualified_at": now - dt.timedelta(days=31),
            "hold_until": now - dt.timedelta(minutes=1) if hold_ended else now + dt.timedelta(days=10), **fields,
        }
    return Referral.objects.create(referrer=referrer, referee=referee, code=code, state=state, **fields)


def default_group_steps() -> None:
    """The shipped steps (3 -> 30%, 5 -> 50%): a transactional test earlier in the run flushes the
    rows the data migration made."""
    for referrals, percent in ((3, Decimal("30.00")), (5, Decimal("50.00"))):
        GroupRewardStep.objects.get_or_create(referrals=referrals, defaults={"percent": percent})
