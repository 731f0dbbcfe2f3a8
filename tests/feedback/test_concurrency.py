"""Single use under concurrency on PostgreSQL: concurrent submits of one link make one response,
and concurrent invitations of one customer make one invitation."""

import pytest
from django.db import close_old_connections

from core.exceptions import DomainError
from feedback.models import Invitation, Response, SurveyDayTotals
from feedback.services.invitations import survey_invite
from feedback.services.responses import response_save
from tests.feedback.factories import consenting_customer, invited, open_survey
from tests.races import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_submits_of_one_link_make_one_response():
    invitation = invited()
    nps = invitation.survey.questions.get(position=0)

    def submit(score):
        def work():
            close_old_connections()
            try:
                return response_save(token=invitation.token, answers={nps.pk: score}, submit=True).nps_score
            except DomainError as exc:
                return exc.code

        return work

    results, errors = race(*(submit(score) for score in range(10)))
    assert errors == []
    scores = [r for r in results if isinstance(r, int)]
    assert len(scores) == 1 and results.count("already_submitted") == 9
    response = Response.objects.get()
    assert response.nps_score == scores[0] and response.answers.count() == 1
    assert SurveyDayTotals.objects.get().responses == 1


def test_concurrent_invitations_of_one_customer_make_one():
    survey = open_survey()
    customer = consenting_customer()

    def invite():
        try:
            return survey_invite(survey=survey, customer=customer).pk
        except DomainError as exc:
            return exc.code

    results, errors = race(*([invite] * 8))
    assert errors == []
    assert Invitation.objects.count() == 1 and results.count("refused") == 7
