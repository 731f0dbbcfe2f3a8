"""The demo data's referrals: seed_demo adds them through customers.signals.demo_seeded (codes,
visits, referrals in several states, rewards, claimed payouts) and --reset deletes them with the
demo customers."""

import pytest
from django.core.management import call_command

from customers.models import Customer
from customers.services.demo import demo_reset
from messaging.models import Message
from referrals.models import Payout, Referral, ReferralCode, Reward, ShareVisit

pytestmark = pytest.mark.django_db


def test_seed_demo_adds_referrals_in_several_states_and_reset_removes_them(capsys, mailoutbox):
    call_command("seed_demo", customers=300, seed=7, no_progress=True)
    assert "Demo referrals: 12 codes" in capsys.readouterr().out
    assert ReferralCode.objects.count() == 12 and ShareVisit.objects.exists()
    states = set(Referral.objects.values_list("state", flat=True))
    assert {"rewarded", "flagged"} <= states and len(states) >= 4
    assert Reward.objects.filter(state="claimed").exists() and Payout.objects.exists()
    # The rewards' e-mails are in the outbox to look at, recorded as the demo's: none was sent.
    assert mailoutbox == []
    rewarded = Message.objects.filter(template__key="referral_rewarded")
    assert rewarded.count() == Reward.objects.exclude(role=Reward.Role.REFEREE).count() > 0
    assert set(Message.objects.values_list("state", "suppressed_reason")) == {("suppressed", "demo")}
    demo_reset()
    assert not Customer.objects.exists()
    assert not Referral.objects.exists() and not Reward.objects.exists() and not ReferralCode.objects.exists()
