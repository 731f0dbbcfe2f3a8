"""Surveys ready to answer, for the feedback tests."""

from django.utils import timezone

from feedback.models import Survey
from feedback.services.invitations import survey_invite
from feedback.services.surveys import survey_create, survey_open
from tests.factories import CustomerFactory

NPS_QUESTIONS = [
    {"type": "nps", "text": "How likely are you to recommend us?", "required": True},
    {"type": "text", "text": "What could we do better?", "required": False, "show_if": {"question": 0, "min": 0, "max": 6}},
    {"type": "single", "text": "Which product do you use?", "required": False, "choices": ["Shop", "App"]},
]


def open_survey(kind: str = "nps", questions=None, **options) -> Survey:
    if questions is None:
        questions = NPS_QUESTIONS if kind == "nps" else [{"type": "rating", "text": "How satisfied are you?"}]
    survey = survey_create(name=f"{kind} survey", kind=kind, questions=questions, **options)
    return survey_open(survey=survey)


def consenting_customer(**fields):
    return CustomerFactory(email_opt_in=True, email_opt_in_at=timezone.now(), **fields)


def invited(survey=None, **fields):
    survey = survey or open_survey()
    return survey_invite(survey=survey, customer=consenting_customer(**fields))
