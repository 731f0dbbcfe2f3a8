"""Claiming referral rewards: the service (cash -> one payout request, points -> one loyalty ledger
entry, discounts need no claim, claimed/void/expired refused) and the portal's claim POST (CSRF,
the same outcome page however often it is repeated, another customer's reward a 404)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from loyalty.models import LedgerEntry, LoyaltyAccount
from referrals.models import Payout, Reward
from referrals.services.claims import RewardNotClaimable, reward_claim, reward_points_key
from tests.factories import CustomerFactory
from tests.portal.conftest import portal_login_as
from tests.referrals.ui_helpers import make_reward

pytestmark = pytest.mark.django_db


def test_a_cash_claim_makes_one_payout_request_and_repeating_it_makes_none():
    customer = CustomerFactory()
    reward = make_reward(customer, kind="cash")
    first = reward_claim(reward_id=reward.pk, customer_id=customer.pk)
    assert first.created and first.payout.amount == reward.amount and first.payout.state == Payout.State.REQUESTED
    again = reward_claim(reward_id=reward.pk, customer_id=customer.pk)
    assert not again.created and again.payout.pk == first.payout.pk
    reward.refresh_from_db()
    assert reward.state == Reward.State.CLAIMED and reward.claimed_at is not None
    assert Payout.objects.count() == 1


def test_a_points_claim_posts_once_to_the_loyalty_account():
    customer = CustomerFactory()
    reward = make_reward(customer, kind="points", role="referee")
    first = reward_claim(reward_id=reward.pk, customer_id=customer.pk)
    again = reward_claim(reward_id=reward.pk, customer_id=customer.pk)
    entry = LedgerEntry.objects.get(idempotency_key=reward_points_key(reward.pk))
    assert first.ledger_entry_id == again.ledger_entry_id == entry.pk
    assert (entry.points, entry.source, entry.kind) == (300, "referral", "earn")
    assert LoyaltyAccount.objects.get(customer=customer).entries.count() == 1
    assert not Payout.objects.exists()


def test_a_discount_needs_no_claim_and_stays_available():
    customer = CustomerFactory()
    reward = make_reward(customer, kind="discount", role="referee")
    with pytest.raises(RewardNotClaimable) as caught:
        reward_claim(reward_id=reward.pk, customer_id=customer.pk)
    assert caught.value.code == "discount_needs_no_claim"
    reward.refresh_from_db()
    assert reward.state == Reward.State.AVAILABLE


@pytest.mark.parametrize("state", ["void", "clawed_back"])
def test_a_reward_that_is_no_longer_available_cannot_be_claimed(state):
    customer = CustomerFactory()
    reward = make_reward(customer, kind="cash", state=state)
    with pytest.raises(RewardNotClaimable):
        reward_claim(reward_id=reward.pk, customer_id=customer.pk)
    assert not Payout.objects.exists()


def test_an_expired_reward_cannot_be_claimed():
    customer = CustomerFactory()
    reward = make_reward(customer, kind="points", expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(RewardNotClaimable) as caught:
        reward_claim(reward_id=reward.pk, customer_id=customer.pk)
    assert caught.value.code == "expired"
    assert not LedgerEntry.objects.exists()


def test_the_service_does_not_find_another_customers_reward():
    owner, other = CustomerFactory(), CustomerFactory()
    reward = make_reward(owner, kind="cash")
    with pytest.raises(Reward.DoesNotExist):
        reward_claim(reward_id=reward.pk, customer_id=other.pk)
    assert not Payout.objects.exists()


# The portal's claim.


def test_the_claim_post_redirects_to_the_same_outcome_page_every_time(client):
    customer = CustomerFactory()
    reward = make_reward(customer, kind="cash")
    portal_login_as(client, customer)
    url = reverse("portal:referral_rewards:claim", args=[reward.pk])
    outcome = reverse("portal:referral_rewards:detail", args=[reward.pk])
    responses = [client.post(url) for _ in range(3)]
    assert [(r.status_code, r["Location"]) for r in responses] == [(303, outcome)] * 3
    assert Payout.objects.filter(reward=reward).count() == 1
    page = client.get(outcome).content.decode()
    assert 'data-state="claimed"' in page and "Payout requested" in page
    assert f'data-testid="claim-{reward.pk}"' not in page  # no button once claimed


def test_the_claim_needs_the_csrf_token():
    customer = CustomerFactory()
    reward = make_reward(customer, kind="cash")
    client = Client(enforce_csrf_checks=True)
    client.cookies = portal_login_as(Client(), customer).cookies  # the same portal session, now checked
    url = reverse("portal:referral_rewards:claim", args=[reward.pk])
    assert client.post(url).status_code == 403
    assert not Payout.objects.exists()
    page = client.get(reverse("portal:referrals:overview")).content.decode()
    token = client.cookies["csrftoken"].value
    assert f'action="{url}"' in page
    response = client.post(url, {"csrfmiddlewaretoken": token})
    assert response.status_code == 303
    assert Payout.objects.filter(reward=reward).count() == 1


def test_a_customer_cannot_claim_another_customers_reward(client):
    owner, other = CustomerFactory(), CustomerFactory()
    reward = make_reward(owner, kind="cash")
    portal_login_as(client, other)
    assert client.post(reverse("portal:referral_rewards:claim", args=[reward.pk])).status_code == 404
    assert client.get(reverse("portal:referral_rewards:detail", args=[reward.pk])).status_code == 404
    assert not Payout.objects.exists()
    reward.refresh_from_db()
    assert reward.state == Reward.State.AVAILABLE


def test_claiming_a_discount_in_the_portal_says_why_and_changes_nothing(client):
    customer = CustomerFactory()
    reward = make_reward(customer, kind="discount", role="referee")
    portal_login_as(client, customer)
    response = client.post(reverse("portal:referral_rewards:claim", args=[reward.pk]), follow=True)
    assert "A discount needs no claim" in response.content.decode()
    reward.refresh_from_db()
    assert reward.state == "available"


def test_anonymous_claims_go_to_the_portal_login(client):
    reward = make_reward(CustomerFactory(), kind="cash")
    response = client.post(reverse("portal:referral_rewards:claim", args=[reward.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("portal:login")
    assert not Payout.objects.exists()
