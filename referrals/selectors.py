"""Reads of the referral programme for the portal and the staff pages. Every selector runs a fixed
number of queries whatever the number of rows (aggregates in SQL, related rows joined), which the
tests assert."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from core.times import month_starts
from referrals.models import FraudRule, Payout, Referral, ReferralCode, ShareVisit
from referrals.models import Reward as ReferralReward
from referrals.services.program import program_get

S = Referral.State
# Referrals that reached qualification (the bottom of the share -> sign-up -> qualified funnel).
QUALIFIED_OR_LATER = [S.QUALIFIED, S.HELD, S.APPROVED, S.REWARDED, S.CLAWED_BACK]
TOP_REFERRERS = 10


def name_masked(first_name: str, last_name: str) -> str:
    """"Jane Doe" -> "J*** D.": enough for the referrer to recognise a friend, not to identify a stranger."""
    first = (first_name or "").strip()
    last = (last_name or "").strip()
    parts = []
    if first:
        parts.append(f"{first[0]}***")
    if last:
        parts.append(f"{last[0]}.")
    return " ".join(parts) or "***"


def _with_masked_referees(referrals: list[Referral]) -> list[Referral]:
    for referral in referrals:
        referral.referee_masked = name_masked(referral.referee.first_name, referral.referee.last_name)
    return referrals


def portal_referrals(*, customer_id: int, limit: int = 100) -> list[Referral]:
    """The customer's referrals, newest first, with only the referee's masked name loaded (1 query)."""
    rows = list(
        Referral.objects.filter(referrer_id=customer_id)
        .select_related("referee")
        .only("pk", "state", "created_at", "referee__first_name", "referee__last_name")
        .order_by("-created_at", "-pk")[:limit]
    )
    return _with_masked_referees(rows)


def customer_rewards(*, customer_id: int, limit: int = 100) -> list[ReferralReward]:
    """The customer's rewards with their payout (if any), newest first (1 query)."""
    return list(
        ReferralReward.objects.filter(customer_id=customer_id)
        .select_related("payout")
        .order_by("-created_at", "-pk")[:limit]
    )


def reward_claimable(reward: ReferralReward, *, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    return (
        reward.state == ReferralReward.State.AVAILABLE
        and reward.kind != ReferralReward.Kind.DISCOUNT
        and (reward.expires_at is None or reward.expires_at > now)
    )


def customer_referral_summary(*, customer_id: int, referrals: int = 10, rewards: int = 10) -> dict:
    """The staff customer panel: the code, referrals made (counts by state and the latest), who
    referred the customer, and their rewards (5 queries)."""
    code = ReferralCode.objects.filter(customer_id=customer_id).first()
    by_state = dict(
        Referral.objects.filter(referrer_id=customer_id).values_list("state").annotate(n=Count("pk")).order_by()
    )
    made = list(
        Referral.objects.filter(referrer_id=customer_id)
        .select_related("referee")
        .only("pk", "state", "created_at", "risk_score", "referee__first_name", "referee__last_name", "referee__email")
        .order_by("-created_at", "-pk")[:referrals]
    )
    referred_by = (
        Referral.objects.filter(referee_id=customer_id)
        .exclude(state=S.REJECTED)
        .select_related("referrer")
        .only("pk", "state", "created_at", "referrer__first_name", "referrer__last_name", "referrer__email")
        .first()
    )
    return {
        "code": code,
        "by_state": [(S(state).label, state, n) for state, n in sorted(by_state.items())],
        "made_total": sum(by_state.values()),
        "made": made,
        "referred_by": referred_by,
        "rewards": customer_rewards(customer_id=customer_id, limit=rewards),
    }


def referral_list(*, state: str = "", verdict: str = "", referrer_id: int | None = None,
                  before: int | None = None) -> QuerySet[Referral]:
    """Referrals for the staff list, newest first (keyset by id), filtered."""
    rows = Referral.objects.select_related("referrer", "referee").order_by("-pk")
    if state:
        rows = rows.filter(state=state)
    if verdict:
        rows = rows.filter(verdict=verdict)
    if referrer_id is not None:
        rows = rows.filter(referrer_id=referrer_id)
    if before is not None:
        rows = rows.filter(pk__lt=before)
    return rows


def _signals_explained(signals: list, labels: dict) -> list[dict]:
    explained = []
    for signal in signals or []:
        code = signal.get("code", "")
        explained.append({
            "code": code,
            "label": labels.get(code, code),
            "weight": signal.get("weight", 0),
            "action": signal.get("action", ""),
            "detail": signal.get("detail") or {},
        })
    return explained


def review_queue(*, now: dt.datetime | None = None, limit: int = 200) -> list[Referral]:
    """Flagged referrals, the nearest deadline first, each with its signals explained (their rule's
    name and weight) and whether it is overdue (2 queries: the referrals and the rule names)."""
    now = now or timezone.now()
    rows = list(
        Referral.objects.filter(state=S.FLAGGED)
        .select_related("referrer", "referee")
        .order_by("review_deadline", "pk")[:limit]
    )
    labels = {code: str(label) for code, label in FraudRule.Code.choices}
    for referral in rows:
        referral.signals_explained = _signals_explained(referral.signals, labels)
        referral.overdue = referral.review_deadline is not None and referral.review_deadline < now
    return rows


def referral_detail(*, referral_id: int) -> Referral:
    referral = (
        Referral.objects.select_related("referrer", "referee", "code", "qualifying_order")
        .prefetch_related("events__staff", "rewards")
        .get(pk=referral_id)
    )
    labels = {code: str(label) for code, label in FraudRule.Code.choices}
    referral.signals_explained = _signals_explained(referral.signals, labels)
    return referral


def payout_list(*, state: str = "", before: int | None = None) -> QuerySet[Payout]:
    rows = Payout.objects.select_related("customer", "reward", "paid_by").order_by("-pk")
    if state:
        rows = rows.filter(state=state)
    if before is not None:
        rows = rows.filter(pk__lt=before)
    return rows


def _as_date(value) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def programme_figures(*, now: dt.datetime | None = None, months: int = 12) -> dict:
    """The programme dashboard: referrals by state, the funnel from share-link visits to sign-ups to
    qualified referrals over the window, rewards and payouts against the budget, the top referrers
    and fraud flags per month. Eight aggregate queries whatever the number of rows."""
    now = now or timezone.now()
    program = program_get()
    starts = month_starts(now, months)
    since = timezone.make_aware(dt.datetime.combine(starts[0], dt.time.min))

    by_state = dict(Referral.objects.values_list("state").annotate(n=Count("pk")).order_by())
    states = [{"state": value, "label": label, "count": by_state.get(value, 0)} for value, label in S.choices]

    visits = ShareVisit.objects.filter(day__gte=starts[0]).aggregate(total=Sum("visits"))["total"] or 0
    window = Referral.objects.filter(created_at__gte=since).aggregate(
        signups=Count("pk"), qualified=Count("pk", filter=Q(state__in=QUALIFIED_OR_LATER) | Q(qualified_at__isnull=False)),
    )
    funnel = {
        "visits": visits,
        "signups": window["signups"],
        "qualified": window["qualified"],
        "signup_rate": Decimal(window["signups"]) / Decimal(visits) if visits else None,
        "qualified_rate": Decimal(window["qualified"]) / Decimal(window["signups"]) if window["signups"] else None,
    }

    live = ~Q(state__in=[ReferralReward.State.VOID, ReferralReward.State.CLAWED_BACK])
    rewards = ReferralReward.objects.aggregate(
        given=Sum("value", filter=live, default=Decimal("0")),
        clawed_back=Sum("value", filter=Q(state=ReferralReward.State.CLAWED_BACK), default=Decimal("0")),
        available=Count("pk", filter=Q(state=ReferralReward.State.AVAILABLE)),
    )
    payouts = Payout.objects.aggregate(
        paid=Sum("amount", filter=Q(state=Payout.State.PAID), default=Decimal("0")),
        paid_n=Count("pk", filter=Q(state=Payout.State.PAID)),
        requested=Sum("amount", filter=Q(state=Payout.State.REQUESTED), default=Decimal("0")),
        requested_n=Count("pk", filter=Q(state=Payout.State.REQUESTED)),
    )
    budget = {
        "total": program.budget_total,
        "spent": program.budget_spent,
        "left": program.budget_total - program.budget_spent if program.budget_total is not None else None,
        "percent": (program.budget_spent * 100 / program.budget_total).quantize(Decimal("0.1"))
        if program.budget_total else None,
        "currency": program.currency,
        **rewards,
        **payouts,
    }

    top = list(
        Referral.objects.values("referrer_id", "referrer__first_name", "referrer__last_name", "referrer__email")
        .annotate(
            total=Count("pk"),
            approved=Count("pk", filter=Q(state__in=[S.APPROVED, S.REWARDED])),
            flagged=Count("pk", filter=Q(state=S.FLAGGED)),
            rejected=Count("pk", filter=Q(state=S.REJECTED)),
        )
        .order_by("-approved", "-total", "referrer_id")[:TOP_REFERRERS]
    )

    for row in top:
        full = f"{row['referrer__first_name']} {row['referrer__last_name']}".strip()
        row["name"] = full or row["referrer__email"]

    per_month = {start: {"review": 0, "rejected": 0} for start in starts}
    flagged_rows = (
        Referral.objects.filter(created_at__gte=since, verdict__in=[Referral.Verdict.REVIEW, Referral.Verdict.REJECTED])
        .annotate(month=TruncMonth("created_at"))
        .values("month", "verdict")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in flagged_rows:
        month = _as_date(row["month"])
        if month in per_month:
            per_month[month][row["verdict"]] = row["n"]
    return {
        "states": states,
        "total": sum(by_state.values()),
        "funnel": funnel,
        "budget": budget,
        "top": top,
        "flags": [{"label": start.strftime("%Y-%m"), "month": start, **per_month[start]} for start in starts],
        "since": starts[0],
    }


def home_figures(*, with_money: bool, now: dt.datetime | None = None) -> dict | None:
    """The home dashboard's referrals panel: referrals waiting for review (and how many are past their
    deadline) and the rewards made this month; `with_money` adds the budget spent against its total
    and the cash payouts waiting to be paid. None while the programme has no referral and no reward.
    Three queries (four with money) whatever the number of rows."""
    now = now or timezone.now()
    month_start = timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    referrals = Referral.objects.aggregate(
        total=Count("pk"),
        review=Count("pk", filter=Q(state=S.FLAGGED)),
        overdue=Count("pk", filter=Q(state=S.FLAGGED, review_deadline__lt=now)),
    )
    live = ~Q(state__in=[ReferralReward.State.VOID, ReferralReward.State.CLAWED_BACK])
    this_month = Q(created_at__gte=month_start, created_at__lte=now)
    rewards = ReferralReward.objects.aggregate(
        any=Count("pk"),
        month=Count("pk", filter=this_month & live),
        month_value=Sum("value", filter=this_month & live, default=Decimal("0.00")),
    )
    if not referrals["total"] and not rewards["any"]:
        return None
    program = program_get()
    figures = {
        "review": referrals["review"],
        "overdue": referrals["overdue"],
        "rewards_month": rewards["month"],
        "rewards_month_value": rewards["month_value"],
        "currency": program.currency,
        "month_start": month_start.date(),
    }
    if with_money:
        payouts = Payout.objects.filter(state=Payout.State.REQUESTED).aggregate(
            n=Count("pk"), amount=Sum("amount", default=Decimal("0.00"))
        )
        figures.update({
            "budget_total": program.budget_total,
            "budget_spent": program.budget_spent,
            "budget_percent": (program.budget_spent * 100 / program.budget_total).quantize(Decimal("0.1"))
            if program.budget_total else None,
            "payouts_requested": payouts["n"],
            "payouts_requested_amount": payouts["amount"],
        })
    return figures
