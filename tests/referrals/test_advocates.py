import pytest

from lifecycle.health_hooks import advocate_sources
from lifecycle.models_stages import CustomerStage
from lifecycle.services.stages import lifecycle_evaluate
from tests.factories import CustomerFactory, OrderFactory
from tests.referrals.helpers import referral_make

pytestmark = pytest.mark.django_db


def test_the_referrals_app_registers_its_source():
    assert "referrals" in advocate_sources()


@pytest.mark.parametrize("state, loyal", [("approved", True), ("rewarded", True), ("held", False), ("rejected", False)])
def test_a_referrer_with_an_approved_referral_becomes_loyal(state, loyal):
    referrer = CustomerFactory()
    OrderFactory(customer=referrer, status="paid")  # a buyer: loyal needs a purchase, as for promoters
    referral = referral_make(referrer=referrer, state=state)
    lifecycle_evaluate()
    stages = dict(CustomerStage.objects.values_list("customer_id", "stage"))
    assert (stages[referral.referrer_id] == "loyal") is loyal
    assert stages[referral.referee_id] != "loyal"
