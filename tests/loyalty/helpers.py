"""Shared set-up of the loyalty tests: an account with spendable points, a programme without
hold or expiry unless a test wants them."""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from loyalty.models import EarningRule, LedgerEntry, LoyaltyProgram
from loyalty.services.ledger import points_earn
from loyalty.services.program import program_get


def program_set(**fields) -> LoyaltyProgram:
    program = program_get()
    for name, value in fields.items():
        setattr(program, name, value)
    program.save()
    return program


def earn_spendable(customer, points: int, key: str = "seed", *, days_ago: int = 30, expires_in_days: int | None = None):
    """Earn `points` that are spendable now (the lot's hold already over)."""
    result = points_earn(customer_id=customer.pk, points=points, idempotency_key=key, source=LedgerEntry.Source.CAMPAIGN)
    lot = result.entry.lot
    lot.available_at = timezone.now() - dt.timedelta(days=days_ago)
    if expires_in_days is not None:
        lot.expires_at = timezone.now() + dt.timedelta(days=expires_in_days)
    lot.save()
    return result.entry


def usd_rule(rate: str = "1") -> EarningRule:
    return EarningRule.objects.create(currency="USD", points_per_unit=Decimal(rate))
