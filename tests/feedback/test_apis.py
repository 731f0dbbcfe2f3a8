"""The survey API: create with questions, invite (token and url), answer by token without login
(201, then 409; unknown 404; expired 410; bad answers 400 by question), results by date range."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from feedback.models import Invitation, Survey
from tests.factories import CustomerFactory
from tests.feedback.factories import consenting_customer, invited, open_survey

pytestmark = pytest.mark.django_db

SURVEYS = "/api/v1/surveys/"
RESPONSES = "/api/v1/surveys/responses/"


def test_create_a_survey_with_its_questions(manager_api):
    body = {
        "name": "Onboarding NPS",
        "kind": "nps",
        "questions": [
            {"type": "nps", "text": "Recommend us?", "required": True},
            {"type": "multiple", "text": "What do you use?", "required": False, "choices": ["Shop", "App", "API"]},
        ],
    }
    response = manager_api.post(SURVEYS, body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["status"] == "open" and [q["type"] for q in data["questions"]] == ["nps", "multiple"]
    assert all(isinstance(q["id"], int) for q in data["questions"])
    assert manager_api.get(SURVEYS).json()["results"][0]["id"] == data["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "kind": "nps", "questions": []}, "questions"),
        ({"name": "x", "kind": "poll", "questions": [{"type": "nps", "text": "a"}]}, "kind"),
        ({"name": "x", "kind": "nps", "questions": [{"type": "text", "text": "a"}]}, "questions"),
        ({"kind": "nps", "questions": [{"type": "nps", "text": "a"}]}, "name"),
    ],
)
def test_bad_surveys_are_400_with_field_errors(manager_api, body, field):
    response = manager_api.post(SURVEYS, body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not Survey.objects.exists()


def test_agents_read_but_do_not_create(agent_api):
    assert agent_api.get(SURVEYS).status_code == 200
    assert agent_api.post(SURVEYS, {"name": "x", "kind": "nps", "questions": [{"type": "nps", "text": "a"}]}, format="json").status_code == 403


def test_invite_returns_the_token_and_link(manager_api):
    survey = open_survey()
    customer = consenting_customer()
    response = manager_api.post(f"{SURVEYS}{survey.pk}/invitations/", {"customer": customer.pk}, format="json")
    assert response.status_code == 201
    data = response.json()
    invitation = Invitation.objects.get()
    assert data["token"] == invitation.token and data["url"].endswith(reverse("feedback-public:answer", args=[invitation.token]))
    again = manager_api.post(f"{SURVEYS}{survey.pk}/invitations/", {"customer": customer.pk}, format="json")
    assert again.status_code == 400 and "already invited" in str(again.json())
    refused = manager_api.post(f"{SURVEYS}{survey.pk}/invitations/", {"customer": CustomerFactory().pk}, format="json")
    assert refused.status_code == 400 and "opted in" in str(refused.json())
    missing = manager_api.post(f"{SURVEYS}{survey.pk}/invitations/", {"customer": 999999}, format="json")
    assert missing.status_code == 400 and "customer" in missing.json()


def test_answer_by_token_without_login(api_client):
    invitation = invited()
    nps = invitation.survey.questions.get(position=0)
    body = {"token": invitation.token, "answers": [{"question": nps.pk, "value": 9}]}
    first = api_client.post(RESPONSES, body, format="json")
    assert first.status_code == 201 and first.json()["category"] == "promoter"
    assert api_client.post(RESPONSES, body, format="json").status_code == 409
    assert api_client.post(RESPONSES, {**body, "token": "unknown"}, format="json").status_code == 404


def test_answer_errors_are_400_by_question_and_expired_is_410(api_client):
    invitation = invited()
    nps = invitation.survey.questions.get(position=0)
    bad = api_client.post(RESPONSES, {"token": invitation.token, "answers": [{"question": nps.pk, "value": 42}]}, format="json")
    assert bad.status_code == 400 and str(nps.pk) in bad.json()["answers"]
    junk = api_client.post(RESPONSES, {"token": invitation.token, "answers": "nope"}, format="json")
    assert junk.status_code == 400
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    late = api_client.post(RESPONSES, {"token": invitation.token, "answers": [{"question": nps.pk, "value": 1}]}, format="json")
    assert late.status_code == 410


def test_results_by_date_range(agent_api, api_client):
    survey = open_survey()
    nps = survey.questions.get(position=0)
    for score in (0, 8, 9, 10):
        api_client.post(RESPONSES, {"token": invited(survey).token, "answers": [{"question": nps.pk, "value": score}]}, format="json")
    today = timezone.localdate()
    data = agent_api.get(f"{SURVEYS}{survey.pk}/results/", {"from": str(today), "to": str(today)}).json()
    assert (data["responses"], data["promoters"], data["passives"], data["detractors"]) == (4, 2, 1, 1)
    assert data["nps"] == 25.0 and data["response_rate"] == 100.0 and data["small_sample"] is True
    assert data["nps_ci_low"] < 25.0 < data["nps_ci_high"]
    yesterday = today - dt.timedelta(days=1)
    assert agent_api.get(f"{SURVEYS}{survey.pk}/results/", {"to": str(yesterday)}).json()["responses"] == 0
    bad = agent_api.get(f"{SURVEYS}{survey.pk}/results/", {"from": "soon"})
    assert bad.status_code == 400 and "from" in bad.json()
    assert agent_api.get(f"{SURVEYS}999999/results/").status_code == 404
