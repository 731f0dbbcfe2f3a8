"""NPS and CSAT arithmetic at the boundaries (6, 7, 8, 9), the confidence interval, the small-sample
flag, response rates, and the day totals the results read."""

import pytest

from feedback.models import Response, nps_category
from feedback.selectors import Results, survey_results
from feedback.services.responses import response_save
from tests.feedback.factories import invited, open_survey

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("score", "category"),
    [(0, "detractor"), (6, "detractor"), (7, "passive"), (8, "passive"), (9, "promoter"), (10, "promoter"), (None, None)],
)
def test_nps_categories_at_their_boundaries(score, category):
    assert nps_category(score) == category


def test_nps_is_promoters_minus_detractors_in_percent():
    results = Results(invitations=10, responses=4, promoters=2, passives=1, detractors=1, csat_answers=0, csat_satisfied=0)
    assert results.nps == 25.0
    low, high = results.nps_interval
    # n=4, p=.5, d=.25: variance (.75 - .0625) / 4 = .171875; half-width 1.96 * .4146 = 81.3 points
    assert low == pytest.approx(25 - 81.26, abs=0.1) and high == 100.0  # clipped
    assert results.small_sample and results.response_rate == 40.0


def test_nps_interval_narrows_with_the_sample():
    small = Results(0, 0, 50, 30, 20, 0, 0)
    large = Results(0, 0, 5000, 3000, 2000, 0, 0)
    assert small.nps == large.nps == 30.0
    assert (large.nps_interval[1] - large.nps_interval[0]) < (small.nps_interval[1] - small.nps_interval[0]) / 9
    assert not small.small_sample


def test_no_answers_no_figures():
    empty = Results(0, 0, 0, 0, 0, 0, 0)
    assert empty.nps is None and empty.nps_interval is None and empty.csat is None and empty.response_rate is None


def test_results_come_from_submitted_responses_only():
    survey = open_survey()
    nps = survey.questions.get(position=0)
    for score in (6, 7, 8, 9):
        response_save(token=invited(survey).token, answers={nps.pk: score}, submit=True)
    response_save(token=invited(survey).token, answers={nps.pk: 10}, submit=False)  # started, not submitted
    results = survey_results(survey=survey)
    assert (results.promoters, results.passives, results.detractors) == (1, 2, 1)
    assert results.nps == 0.0 and results.responses == 4 and results.invitations == 5
    assert results.response_rate == 80.0
    assert Response.objects.filter(survey=survey).count() == 5


def test_csat_is_the_share_of_four_and_five():
    survey = open_survey("csat")
    rating = survey.questions.get()
    for score in (3, 4, 5, 1):
        response_save(token=invited(survey).token, answers={rating.pk: score}, submit=True)
    results = survey_results(survey=survey)
    assert results.csat == 50.0 and results.nps is None


def test_results_take_one_query_whatever_the_responses(django_assert_num_queries):
    survey = open_survey()
    nps = survey.questions.get(position=0)
    for score in range(11):
        response_save(token=invited(survey).token, answers={nps.pk: score}, submit=True)
    with django_assert_num_queries(1):
        survey_results(survey=survey)


def test_nps_by_channel_stage_and_tier_in_one_group_by_each(django_assert_num_queries):
    from django.utils import timezone

    from feedback.selectors import survey_nps_by
    from lifecycle.models_stages import CustomerStage
    from loyalty.models import LoyaltyAccount, Tier

    survey = open_survey()
    nps = survey.questions.get(position=0)
    gold = Tier.objects.create(name="Gold", threshold=1000)
    invitations = [invited(survey) for _ in range(3)]
    for invitation, score in zip(invitations, (10, 9, 2), strict=True):
        response_save(token=invitation.token, answers={nps.pk: score}, submit=True)
    loyal, active, _none = (i.customer for i in invitations)
    CustomerStage.objects.create(customer=loyal, stage="loyal", changed_at=timezone.now())
    CustomerStage.objects.create(customer=active, stage="active", changed_at=timezone.now())
    LoyaltyAccount.objects.create(customer=loyal, tier=gold)
    with django_assert_num_queries(1):
        by_stage = survey_nps_by(survey=survey, dimension="stage")
    assert [(row["group"], row["results"].nps) for row in by_stage] == [("Active", 100.0), ("Loyal", 100.0), (None, -100.0)]
    by_tier = survey_nps_by(survey=survey, dimension="tier")
    assert sorted((row["group"] or "", row["results"].scored) for row in by_tier) == [("", 2), ("Gold", 1)]
