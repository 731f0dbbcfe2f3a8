"""The home dashboard's referrals panel (referrals.ui, registered with core.registry): the review
queue's size with its overdue part and a link to it, the month's rewards for every staff member, the
budget and the payouts to pay for managers; hidden before the first referral; a fixed number of
queries; translated."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from referrals.models import Payout, Reward
from referrals.selectors import home_figures
from referrals.services.program import program_get
from tests.referrals.ui_helpers import make_referral, make_reward

pytestmark = pytest.mark.django_db


def _panel(response):
    return next((s["panel"] for s in response.context["sections"] if s["key"] == "referrals"), None)


@pytest.fixture
def programme():
    now = timezone.now()
    make_referral(state="flagged", review_deadline=now + dt.timedelta(hours=20))
    make_referral(state="flagged", review_deadline=now - dt.timedelta(hours=3))  # overdue
    make_referral(state="pending")
    cash = make_reward(make_referral(state="rewarded").referrer, kind="cash", state="claimed")  # 12.50
    Payout.objects.create(reward=cash, customer_id=cash.customer_id, amount=cash.amount, currency="USD",
                          state=Payout.State.REQUESTED)
    points = make_reward(make_referral(state="rewarded").referrer, kind="points")  # 3.00
    make_reward(make_referral(state="rewarded").referrer, kind="cash", state="clawed_back")  # not counted
    old = make_reward(make_referral(state="rewarded").referrer, kind="cash")
    month_start = timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    Reward.objects.filter(pk=old.pk).update(created_at=month_start - dt.timedelta(days=2))  # last month
    program = program_get()
    program.budget_total, program.budget_spent, program.currency = Decimal("200.00"), Decimal("50.00"), "USD"
    program.save()
    return {"cash": cash, "points": points}


def test_agents_see_the_review_queue_and_the_months_rewards_not_the_money(client, agent, programme):
    client.force_login(agent)
    response = client.get(reverse("home"))
    panel = _panel(response)
    assert panel["may_manage"] is False
    figures = panel["figures"]
    assert (figures["review"], figures["overdue"], figures["rewards_month"]) == (2, 1, 2)
    assert figures["rewards_month_value"] == Decimal("15.50") and "budget_total" not in figures
    html = response.content.decode()
    assert f'href="{reverse("referrals:review")}" data-testid="home-referrals-review">2</a>' in html
    assert "1 overdue" in html and "2 rewards" in html
    assert 'data-testid="home-referrals-budget"' not in html and 'data-testid="home-referrals-payouts"' not in html
    assert "Open the review queue" in html


def test_managers_also_see_the_budget_and_the_payouts_to_pay(client, manager, programme):
    client.force_login(manager)
    response = client.get(reverse("home"))
    figures = _panel(response)["figures"]
    assert (figures["budget_spent"], figures["budget_total"], figures["budget_percent"]) == (
        Decimal("50.00"), Decimal("200.00"), Decimal("25.0"))
    assert (figures["payouts_requested"], figures["payouts_requested_amount"]) == (1, Decimal("12.50"))
    html = response.content.decode()
    assert 'data-testid="home-referrals-budget">USD\xa050.00 of USD\xa0200.00 (25.0%)' in html
    assert f'href="{reverse("referrals:payouts")}?state=requested" data-testid="home-referrals-payouts">1</a>' in html
    assert "Decide in the review queue" in html


def test_no_budget_set_says_so(client, manager, programme):
    program = program_get()
    program.budget_total = None
    program.save()
    client.force_login(manager)
    html = client.get(reverse("home")).content.decode()
    assert 'data-testid="home-referrals-budget">USD\xa050.00; no budget set' in html


def test_hidden_before_the_first_referral(client, manager):
    client.force_login(manager)
    response = client.get(reverse("home"))
    assert _panel(response) is None and 'data-testid="home-referrals"' not in response.content.decode()


@pytest.mark.parametrize(("with_money", "queries"), [(False, 3), (True, 4)])
def test_the_selector_runs_a_fixed_number_of_queries(programme, with_money, queries):
    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert home_figures(with_money=with_money) is not None
        return len(ctx.captured_queries)

    assert count() == queries
    for _n in range(5):
        make_reward(make_referral(state="rewarded").referrer, kind="points")
        make_referral(state="flagged", review_deadline=timezone.now())
    assert count() == queries


def test_the_panel_is_translated(client, manager, programme):
    client.force_login(manager)
    with translation.override("zh-hans"):
        html = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    for english in ("Waiting for review", "Payouts to pay", "Decide in the review queue", "1 overdue", "Rewards in"):
        assert english not in html
    assert "等待审核" in html and "1 条已逾期" in html and "待支付的付款" in html
