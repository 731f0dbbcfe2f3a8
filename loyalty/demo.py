"""Loyalty's part of the demo data (core.registry.register_demo_step): a sensible programme when
none is configured (one point per unit of the default currency, four tiers, two bonus rules), then
the points the demo's orders earn, read from the order feed like any other orders'."""

from decimal import Decimal

from django.conf import settings
from django.utils.translation import gettext as _

from core.registry import register_demo_step
from loyalty.models import BonusRule, EarningRule, Tier
from loyalty.services.feed import loyalty_feed_consume

DEMO_TIERS = (
    ("Bronze", Decimal("0"), Decimal("1.00"), "Points on every order."),
    ("Silver", Decimal("500"), Decimal("1.25"), "25% more points; early access to sales."),
    ("Gold", Decimal("2000"), Decimal("1.50"), "50% more points; free shipping."),
    ("Platinum", Decimal("5000"), Decimal("2.00"), "Double points; a personal shopper."),
)


def loyalty_demo(*, seed: int) -> str:
    if not EarningRule.objects.exists():
        EarningRule.objects.create(currency=settings.DEFAULT_CURRENCY, points_per_unit=Decimal("1"))
    if not Tier.objects.exists():
        Tier.objects.bulk_create(
            [Tier(name=name, threshold=threshold, multiplier=multiplier, benefits=benefits)
             for name, threshold, multiplier, benefits in DEMO_TIERS]
        )
    if not BonusRule.objects.exists():
        BonusRule.objects.bulk_create([
            BonusRule(action=BonusRule.Action.SURVEY, points=50, limit_per_month=1),
            BonusRule(action=BonusRule.Action.REFERRAL, points=200),
        ])
    handled = loyalty_feed_consume()
    return _("Loyalty: points earned for %(count)d order changes.") % {"count": handled}


def register() -> None:
    register_demo_step(key="loyalty", run=loyalty_demo, order=20)
