"""The referrals API: filters, a referral with its events, decisions (Manager, 409), rewards."""

import datetime as dt

import pytest
from django.utils import timezone

from referrals.models import Referral, Reward
from referrals.services.rewards import holds_release
from tests.factories import CustomerFactory
from tests.referrals.helpers import program_set, referral_make

pytestmark = pytest.mark.django_db


def ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_the_list_needs_a_staff_role(api_client, no_role_user):
    assert api_client.get("/api/v1/referrals/").status_code == 401
    api_client.force_authenticate(no_role_user)
    assert api_client.get("/api/v1/referrals/").status_code == 403


def test_the_list_filters_by_state_people_verdict_and_time(agent_api):
    referrer = CustomerFactory()
    pending = referral_make(referrer=referrer)
    flagged = referral_make(state="flagged", verdict="review")
    held = referral_make(referrer=referrer, state="held")
    Referral.objects.filter(pk=pending.pk).update(created_at=timezone.now() - dt.timedelta(days=10))
    assert ids(agent_api.get("/api/v1/referrals/")) == [held.pk, flagged.pk, pending.pk]
    assert ids(agent_api.get("/api/v1/referrals/?state=held&state=flagged")) == [held.pk, flagged.pk]
    assert ids(agent_api.get(f"/api/v1/referrals/?referrer={referrer.pk}")) == [held.pk, pending.pk]
    assert ids(agent_api.get(f"/api/v1/referrals/?referee={flagged.referee_id}")) == [flagged.pk]
    assert ids(agent_api.get("/api/v1/referrals/?verdict=review")) == [flagged.pk]
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()
    assert ids(agent_api.get("/api/v1/referrals/", {"created_at_after": since})) == [held.pk, flagged.pk]
    assert ids(agent_api.get("/api/v1/referrals/", {"created_at_before": since})) == [pending.pk]
    row = agent_api.get(f"/api/v1/referrals/?referee={held.referee_id}").json()["results"][0]
    assert (row["code"], row["state"], row["referrer"], row["order_amount"]) == (held.code.code, "held", referrer.pk, "100.00")


@pytest.mark.parametrize("query", ["state=lost", "referrer=abc", "referrer=0", "verdict=maybe",
                                   "created_at_after=soon", "referee=99999999999999999999"])
def test_bad_filters_are_400(agent_api, query):
    response = agent_api.get(f"/api/v1/referrals/?{query}")
    assert response.status_code == 400
    assert response.json()


def test_the_list_reads_a_fixed_number_of_queries(agent_api, django_assert_max_num_queries):
    for _ in range(3):
        referral_make(state="held")
    agent_api.get("/api/v1/referrals/")  # warm the role cache of the user
    with django_assert_max_num_queries(3) as captured:
        first = agent_api.get("/api/v1/referrals/")
    for _ in range(20):
        referral_make(state="flagged")
    with django_assert_max_num_queries(len(captured)):
        assert len(ids(agent_api.get("/api/v1/referrals/"))) == 23
    assert len(first.json()["results"]) == 3


def test_a_referral_comes_with_its_events(agent_api, django_assert_max_num_queries):
    program_set(referee_reward="none")
    referral = referral_make(state="held")
    holds_release()
    with django_assert_max_num_queries(4):
        response = agent_api.get(f"/api/v1/referrals/{referral.pk}/")
    assert response.status_code == 200
    events = response.json()["events"]
    assert [(e["from_state"], e["to_state"], e["actor"]) for e in events] == [
        ("held", "approved", "system"), ("approved", "rewarded", "system")]
    assert agent_api.get("/api/v1/referrals/999999/").status_code == 404


def test_an_agent_may_not_decide(agent_api):
    referral = referral_make(state="flagged")
    assert agent_api.post(f"/api/v1/referrals/{referral.pk}/approve/", {"note": "ok"}).status_code == 403
    assert agent_api.post(f"/api/v1/referrals/{referral.pk}/reject/", {"note": "no"}).status_code == 403
    assert Referral.objects.get(pk=referral.pk).state == "flagged"


def test_a_manager_approves_a_flagged_referral(manager_api, manager):
    referral = referral_make(state="flagged", hold_ended=False)
    response = manager_api.post(f"/api/v1/referrals/{referral.pk}/approve/", {"note": "known customer"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "held"
    assert body["events"][-1]["staff"] == manager.pk and "known customer" in body["events"][-1]["reason"]


def test_approving_what_is_not_flagged_is_a_409_with_a_clear_error(manager_api):
    referral = referral_make(state="held")
    response = manager_api.post(f"/api/v1/referrals/{referral.pk}/approve/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "not_in_review" and response.json()["state"] == "held"
    assert "flagged" in response.json()["detail"]


def test_rejecting_needs_a_note_and_a_decided_referral_is_a_409(manager_api):
    referral = referral_make(state="flagged")
    url = f"/api/v1/referrals/{referral.pk}/reject/"
    assert manager_api.post(url, {}, format="json").json() == {"note": ["This field is required."]}
    assert manager_api.post(url, {"note": "x" * 501}, format="json").status_code == 400
    assert manager_api.post(url, {"note": "   "}, format="json").status_code == 400
    assert manager_api.post(url, {"note": ["a"]}, format="json").status_code == 400
    response = manager_api.post(url, {"note": "stolen card"}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "rejected"
    again = manager_api.post(url, {"note": "again"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "transition_refused"
    assert manager_api.post("/api/v1/referrals/999999/reject/", {"note": "x"}, format="json").status_code == 404


def test_rewards_list_filters_and_detail(agent_api, django_assert_max_num_queries):
    program_set(referee_reward="discount")
    referral = referral_make(state="held")
    referral_make(state="held")
    holds_release()
    referrer_reward = Reward.objects.get(referral=referral, role="referrer")
    with django_assert_max_num_queries(3):
        response = agent_api.get("/api/v1/referral-rewards/")
    assert len(response.json()["results"]) == 4
    assert ids(agent_api.get(f"/api/v1/referral-rewards/?customer={referral.referrer_id}")) == [referrer_reward.pk]
    assert len(ids(agent_api.get("/api/v1/referral-rewards/?kind=discount"))) == 2
    assert agent_api.get("/api/v1/referral-rewards/?role=boss").status_code == 400
    detail = agent_api.get(f"/api/v1/referral-rewards/{referrer_reward.pk}/").json()
    assert (detail["role"], detail["kind"], detail["value"], detail["referral"]) == (
        "referrer", "cash", "10.00", referral.pk)
    assert agent_api.get("/api/v1/referral-rewards/999999/").status_code == 404
