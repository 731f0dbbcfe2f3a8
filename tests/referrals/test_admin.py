"""The programme in the admin site: settings edited, referrals read only with their events."""

from decimal import Decimal

import pytest
from django.urls import reverse

from referrals.models import ReferralProgram
from referrals.services.program import program_get
from tests.factories import UserFactory
from tests.referrals.helpers import referral_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_a_referral_shows_its_events_and_cannot_be_changed(admin_client):
    referral = referral_make(state="flagged")
    referral.events.create(from_state="pending", to_state="flagged", actor="system", reason="same device")
    response = admin_client.get(reverse("admin:referrals_referral_change", args=[referral.pk]))
    assert response.status_code == 200
    assert b"same device" in response.content
    assert b'name="_save"' not in response.content
    assert admin_client.get(reverse("admin:referrals_referral_add")).status_code == 403


def test_the_programme_is_edited_but_its_spent_budget_is_not(admin_client):
    program = program_get()
    program.budget_spent = Decimal("12.00")
    program.budget_total = Decimal("100.00")
    program.save()
    url = reverse("admin:referrals_referralprogram_change", args=[1])
    form = admin_client.get(url).context["adminform"].form
    data = {name: ("" if value is None else value) for name, value in form.initial.items() if name in form.fields}
    data.update({"active": "on", "hold_days": "14", "budget_spent": "0"})
    data = {k: v for k, v in data.items() if v is not False}
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    program = ReferralProgram.objects.get()
    assert (program.hold_days, program.budget_spent) == (14, Decimal("12.00"))
