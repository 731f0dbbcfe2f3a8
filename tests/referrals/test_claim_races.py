"""The claim under real concurrency on PostgreSQL: 50 requests of one customer's session (double
clicks, tabs) post the claim of one reward at the same moment, each on its own thread and database
connection, through the portal's view. Exactly one payout (or one ledger entry) is written and every
request lands on the same outcome page."""

import pytest
from django.test import Client
from django.urls import reverse

from loyalty.models import LedgerEntry, LoyaltyAccount
from referrals.models import Payout, Reward
from referrals.services.claims import reward_claim
from tests.factories import CustomerFactory
from tests.portal.conftest import portal_login_as
from tests.races import race
from tests.referrals.ui_helpers import make_reward

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

REQUESTS = 50


def _tabs(customer, n: int) -> list[Client]:
    """n clients sharing one portal session, as n tabs of one browser."""
    cookies = portal_login_as(Client(), customer).cookies
    tabs = []
    for _ in range(n):
        tab = Client()
        tab.cookies = cookies.__class__(cookies)
        tabs.append(tab)
    return tabs


def test_50_concurrent_claims_of_a_cash_reward_make_exactly_one_payout():
    customer = CustomerFactory()
    reward = make_reward(customer, kind="cash")
    url = reverse("portal:referral_rewards:claim", args=[reward.pk])
    outcome = reverse("portal:referral_rewards:detail", args=[reward.pk])

    def claim(tab):
        response = tab.post(url)
        return response.status_code, response["Location"]

    results, errors = race(*[lambda tab=tab: claim(tab) for tab in _tabs(customer, REQUESTS)])
    assert errors == []
    assert results == [(303, outcome)] * REQUESTS
    payout = Payout.objects.get(reward=reward)
    assert payout.amount == reward.amount and payout.customer_id == customer.pk
    assert Reward.objects.get(pk=reward.pk).state == Reward.State.CLAIMED


def test_concurrent_claims_of_a_points_reward_post_one_ledger_entry():
    customer = CustomerFactory()
    reward = make_reward(customer, kind="points")
    results, errors = race(*[lambda: reward_claim(reward_id=reward.pk, customer_id=customer.pk)] * 20)
    assert errors == []
    assert sum(result.created for result in results) == 1
    assert len({result.ledger_entry_id for result in results}) == 1
    account = LoyaltyAccount.objects.get(customer=customer)
    assert LedgerEntry.objects.filter(account=account).count() == 1
