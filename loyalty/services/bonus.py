"""Bonus points for actions (first order, birthday, survey answered, referral), configured as
BonusRule rows with optional limits per day, month and lifetime. Other apps call `bonus_award`
(referrals.services -> loyalty.services.bonus.bonus_award(action="referral", ...)).

The limit is counted under the account's lock, after the entry is appended, so two awards at once
cannot both slip under it: the one over the limit raises and its entry is rolled back."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from loyalty.models import BonusRule, LedgerEntry
from loyalty.services.ledger import PostResult, account_for_customer, ledger_post

SOURCES = {
    BonusRule.Action.FIRST_ORDER: LedgerEntry.Source.ORDER,
    BonusRule.Action.BIRTHDAY: LedgerEntry.Source.CAMPAIGN,
    BonusRule.Action.SURVEY: LedgerEntry.Source.SURVEY,
    BonusRule.Action.REFERRAL: LedgerEntry.Source.REFERRAL,
}


class BonusLimitReached(DomainError):
    def __init__(self):
        super().__init__(_("The limit of this bonus has been reached."), code="bonus_limit")


def _period_starts(now: dt.datetime) -> dict[str, dt.datetime | None]:
    local = timezone.localtime(now)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return {"limit_per_day": day, "limit_per_month": day.replace(day=1), "limit_lifetime": None}


def bonus_award(*, customer_id: int, action: str, key: str, reason: str = "") -> PostResult | None:
    """Award the action's bonus once per `key` (e.g. the survey response's id); None when the
    action has no active rule. Raises BonusLimitReached when a limit is used up."""
    rule = BonusRule.objects.filter(action=action, active=True).first()
    if rule is None:
        return None
    prefix = f"bonus:{action}:"
    now = timezone.now()

    def check_limits(entry: LedgerEntry) -> None:
        awarded = LedgerEntry.objects.filter(account_id=entry.account_id, idempotency_key__startswith=prefix)
        for field, since in _period_starts(now).items():
            limit = getattr(rule, field)
            if limit is None:
                continue
            scope = awarded if since is None else awarded.filter(created_at__gte=since)
            if scope.count() > limit:
                raise BonusLimitReached()

    account = account_for_customer(customer_id=customer_id)
    return ledger_post(
        account_id=account.pk, kind=LedgerEntry.Kind.EARN, points=rule.points, idempotency_key=f"{prefix}{key}",
        source=SOURCES[action], reason=reason or rule.get_action_display(), on_created=check_limits, now=now,
    )


def retention_points_award(*, customer_id: int, points: int, key: str, reason: str) -> PostResult:
    """Lifecycle's retention offer in points (registered in lifecycle.health_hooks by LoyaltyConfig):
    credits `points` once per `key` (retention:<level>:<day>:<customer id>)."""
    account = account_for_customer(customer_id=customer_id)
    return ledger_post(
        account_id=account.pk, kind=LedgerEntry.Kind.EARN, points=points, idempotency_key=key,
        source=LedgerEntry.Source.CAMPAIGN, reason=reason,
    )
