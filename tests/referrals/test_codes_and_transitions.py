import pytest
from django.db import IntegrityError, transaction

from referrals.models import FraudRule, GroupRewardStep, Referral, ReferralEvent
from referrals.services.codes import ALPHABET, CODE_LENGTH, code_normalise, referral_code_for
from referrals.services.transitions import TransitionRefused, referral_transition
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_a_customer_gets_one_code_of_the_unambiguous_alphabet():
    customer = CustomerFactory()
    code = referral_code_for(customer_id=customer.pk)
    assert referral_code_for(customer_id=customer.pk).pk == code.pk
    assert len(code.code) == CODE_LENGTH and set(code.code) <= set(ALPHABET)
    assert referral_code_for(customer_id=CustomerFactory().pk).code != code.code


def test_typed_codes_are_normalised_to_the_stored_form():
    assert code_normalise(" ab1o-xyzl ") == "AB10XYZ1"


def test_the_defaults_ship_every_fraud_signal_and_the_two_group_steps():
    assert set(FraudRule.objects.values_list("code", flat=True)) == set(FraudRule.Code.values)
    assert list(GroupRewardStep.objects.values_list("referrals", "percent")) == [(3, 30), (5, 50)]


def _referral():
    referrer, referee = CustomerFactory(), CustomerFactory()
    code = referral_code_for(customer_id=referrer.pk)
    return Referral.objects.create(referrer=referrer, referee=referee, code=code)


def test_a_transition_updates_the_state_and_logs_who_and_why():
    referral = _referral()
    referral_transition(referral=referral, to_state="qualified", actor="system", reason="first order", data={"order": 1})
    referral.refresh_from_db()
    assert referral.state == "qualified"
    event = ReferralEvent.objects.get(referral=referral)
    assert (event.from_state, event.to_state, event.actor, event.data) == ("pending", "qualified", "system", {"order": 1})


def test_a_move_the_state_machine_does_not_allow_is_refused_and_logs_nothing():
    referral = _referral()
    with pytest.raises(TransitionRefused):
        referral_transition(referral=referral, to_state="rewarded", actor="system", reason="skip")
    assert not ReferralEvent.objects.exists()


def test_the_database_refuses_self_referral_and_a_second_live_referral_of_one_referee():
    referral = _referral()
    with pytest.raises(IntegrityError), transaction.atomic():
        Referral.objects.create(referrer=referral.referrer, referee=referral.referrer, code=referral.code)
    other = CustomerFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Referral.objects.create(
            referrer=other, referee=referral.referee, code=referral_code_for(customer_id=other.pk)
        )
    # A rejected referral does not hold the referee: the next valid referrer may be attributed.
    Referral.objects.filter(pk=referral.pk).update(state="rejected")
    Referral.objects.create(referrer=other, referee=referral.referee, code=referral_code_for(customer_id=other.pk))
