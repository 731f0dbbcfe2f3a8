"""The stage rules in the admin site: one row, and a contradiction is refused with its reason."""

import pytest
from django.urls import reverse

from lifecycle.models_stages import StageRules
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def root_client(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def _form(**changes):
    data = {
        "activation_events": "login,page_view,cart_add",
        "activation_count": 3,
        "activation_days": 7,
        "repeat_orders": 2,
        "repeat_days": 30,
        "loyal_orders": 5,
        "loyal_segments": "champions,loyal",
        "loyal_feedback": 90,
        "loyal_advocates": "on",
        "at_risk_days": 60,
        "churn_days": 120,
    }
    return {**data, **changes}


def test_one_row_no_second_and_no_delete(root_client):
    response = root_client.get(reverse("admin:lifecycle_stagerules_changelist"))
    assert list(response.context["cl"].result_list) == [StageRules.objects.get()]
    assert root_client.get(reverse("admin:lifecycle_stagerules_add")).status_code == 403
    assert root_client.get(reverse("admin:lifecycle_stagerules_delete", args=[1])).status_code == 403


def test_contradicting_windows_are_refused_with_a_reason(root_client):
    url = reverse("admin:lifecycle_stagerules_change", args=[1])
    response = root_client.post(url, _form(churn_days=50))
    assert response.status_code == 200
    assert "Churned must come after at risk" in response.content.decode()
    assert StageRules.objects.get().churn_days == 120


def test_valid_rules_are_saved(root_client):
    url = reverse("admin:lifecycle_stagerules_change", args=[1])
    form = _form(at_risk_days=45, churn_days=90, loyal_feedback=80)
    del form["loyal_advocates"]  # an unticked box
    response = root_client.post(url, form)
    assert response.status_code == 302
    rules = StageRules.objects.get()
    assert (rules.at_risk_days, rules.churn_days, rules.loyal_feedback, rules.loyal_advocates) == (45, 90, 80, False)
