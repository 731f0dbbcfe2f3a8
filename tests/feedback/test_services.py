"""Building surveys, inviting (consent, contact limit, bulk), answering (partial, resume, follow-ups,
single use, expiry) and closing the loop (detractor -> task, promoter -> signal)."""

import datetime as dt

import pytest
from django.utils import timezone

from core.exceptions import DomainError
from customers.models import Customer, Task
from feedback.models import Answer, Invitation, Response, Survey, SurveyDayTotals
from feedback.services.invitations import survey_invite, survey_invite_bulk, survey_remind_due
from feedback.services.responses import AnswerErrors, response_save
from feedback.services.surveys import (
    question_update,
    survey_close,
    survey_create,
    survey_duplicate,
    survey_export,
    survey_import,
    survey_questions_replace,
)
from feedback.signals import response_submitted
from messaging.models import Message
from tests.factories import CustomerFactory, UserFactory
from tests.feedback.factories import NPS_QUESTIONS, consenting_customer, invited, open_survey

pytestmark = pytest.mark.django_db


# --- Building ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "questions", "message"),
    [
        ("nps", [], "at least one question"),
        ("nps", [{"type": "text", "text": "Hi"}], "starts with an NPS question"),
        ("csat", [{"type": "nps", "text": "Hi"}], "starts with a rating"),
        ("custom", [{"type": "single", "text": "Pick", "choices": ["a"]}], "at least two choices"),
        ("custom", [{"type": "single", "text": "Pick", "choices": ["a", "a"]}], "must differ"),
        ("custom", [{"type": "text", "text": "Hi", "choices": ["a", "b"]}], "only choice questions"),
        ("custom", [{"type": "dance", "text": "Hi"}], "unknown type"),
        ("custom", [{"type": "text", "text": "A"}, {"type": "text", "text": "B", "show_if": {"question": 0, "min": 0}}], "scored question"),
        ("custom", [{"type": "text", "text": "A", "show_if": {"question": 0, "min": 0}}], "must come after"),
        ("custom", [{"type": "nps", "text": "A"}, {"type": "text", "text": "B", "show_if": {"question": 0, "min": 7, "max": 3}}], "score range"),
    ],
)
def test_a_bad_survey_is_refused_with_a_reason(kind, questions, message):
    with pytest.raises(DomainError, match=message):
        survey_create(name="S", kind=kind, questions=questions)
    assert not Survey.objects.exists()


def test_questions_can_be_replaced_until_answered_then_only_reworded():
    survey = open_survey()
    survey_questions_replace(survey=survey, questions=[{"type": "nps", "text": "New?"}])
    nps = survey.questions.get()
    response_save(token=invited(survey).token, answers={nps.pk: 9}, submit=True)
    with pytest.raises(DomainError, match="can no longer be replaced"):
        survey_questions_replace(survey=survey, questions=[{"type": "nps", "text": "Other"}])
    question_update(question=nps, text="How likely would you recommend us?", required=False)
    nps.refresh_from_db()
    assert nps.text == "How likely would you recommend us?" and Answer.objects.get().question_id == nps.pk


def test_export_import_and_duplicate_keep_the_questions_and_follow_ups():
    survey = open_survey()
    data = survey_export(survey=survey)
    assert [q["type"] for q in data["questions"]] == ["nps", "text", "single"]
    assert data["questions"][1]["show_if"] == {"question": 0, "min": 0, "max": 6}
    copy = survey_import(data=data)
    assert copy.status == Survey.Status.DRAFT and survey_export(survey=copy)["questions"] == data["questions"]
    dup = survey_duplicate(survey=survey)
    assert dup.name == "nps survey (copy)" and dup.questions.count() == 3
    with pytest.raises(DomainError):
        survey_import(data={"version": 99})


# --- Inviting ---------------------------------------------------------------------------------


def test_invitation_rules_say_why(settings):
    settings.FEEDBACK_CONTACT_LIMIT_DAYS = 30
    survey, other = open_survey(), open_survey()
    no_consent = CustomerFactory(email_opt_in=False)
    no_email = CustomerFactory(email=None, email_opt_in=True, email_opt_in_at=timezone.now())
    with pytest.raises(DomainError, match="not opted in"):
        survey_invite(survey=survey, customer=no_consent)
    with pytest.raises(DomainError, match="no e-mail"):
        survey_invite(survey=survey, customer=no_email)
    customer = consenting_customer()
    survey_invite(survey=survey, customer=customer)
    with pytest.raises(DomainError, match="already invited"):
        survey_invite(survey=survey, customer=customer)
    with pytest.raises(DomainError, match="in the last 30 days"):
        survey_invite(survey=other, customer=customer)
    survey_close(survey=other)
    with pytest.raises(DomainError, match="not open"):
        survey_invite(survey=other, customer=consenting_customer())


def test_the_contact_limit_ends_after_its_days(settings):
    settings.FEEDBACK_CONTACT_LIMIT_DAYS = 30
    customer = consenting_customer()
    first = survey_invite(survey=open_survey(), customer=customer)
    Invitation.objects.filter(pk=first.pk).update(created_at=timezone.now() - dt.timedelta(days=30, seconds=1))
    assert survey_invite(survey=open_survey(), customer=customer).customer_id == customer.pk


def test_bulk_invite_is_set_based_and_counts_refusals(django_assert_max_num_queries):
    survey = open_survey()
    eligible = [consenting_customer() for _ in range(5)]
    CustomerFactory.create_batch(2, email_opt_in=False)
    CustomerFactory(email="", email_opt_in=True, email_opt_in_at=timezone.now())
    already = consenting_customer()
    survey_invite(survey=survey, customer=already)
    recent = consenting_customer()
    survey_invite(survey=open_survey(), customer=recent)
    with django_assert_max_num_queries(12):
        summary = survey_invite_bulk(survey=survey, customers=Customer.objects.all())
    assert summary.invited == 5
    assert summary.refused == {"no_consent": 2, "no_email": 1, "already_invited": 1, "contact_limit": 1}
    assert set(Invitation.objects.filter(survey=survey).values_list("customer_id", flat=True)) == {c.pk for c in [*eligible, already]}
    tokens = list(Invitation.objects.values_list("token", flat=True))
    assert len(set(tokens)) == len(tokens) and all(len(t) >= 43 for t in tokens)
    assert SurveyDayTotals.objects.get(survey=survey).invitations == 6
    # the e-mails: one per new invitation, keyed per survey and customer; again queues nothing
    assert Message.objects.filter(key__startswith=f"survey:{survey.pk}:invitation:").count() == 6
    assert survey_invite_bulk(survey=survey, customers=Customer.objects.all()).invited == 0
    assert Message.objects.filter(key__startswith=f"survey:{survey.pk}:invitation:").count() == 6


def test_reminders_go_once_after_the_delay():
    survey = open_survey(reminder_after_days=3)
    waiting = invited(survey)
    answered = invited(survey)
    response_save(token=answered.token, answers={survey.questions.get(position=0).pk: 9}, submit=True)
    assert survey_remind_due() == 0  # too early
    later = timezone.now() + dt.timedelta(days=3, minutes=1)
    assert survey_remind_due(now=later) == 1
    assert survey_remind_due(now=later) == 0  # once
    assert Message.objects.filter(key=f"survey:{survey.pk}:reminder:{waiting.customer_id}").count() == 1


# --- Answering --------------------------------------------------------------------------------


def test_partial_answers_are_kept_and_resumed_then_submitted_once():
    invitation = invited()
    nps, follow_up, product = invitation.survey.questions.order_by("position")
    response = response_save(token=invitation.token, answers={product.pk: "App"}, submit=False)
    assert response.submitted_at is None and Answer.objects.get(response=response).choices == ["App"]
    with pytest.raises(AnswerErrors) as missing:
        response_save(token=invitation.token, answers={}, submit=True)
    assert missing.value.errors == {str(nps.pk): "Please answer this question."}
    response = response_save(token=invitation.token, answers={nps.pk: 3, follow_up.pk: "Faster shipping"}, submit=True)
    assert response.submitted_at and response.nps_score == 3 and response.category == "detractor"
    with pytest.raises(DomainError) as again:
        response_save(token=invitation.token, answers={nps.pk: 10}, submit=True)
    assert again.value.code == "already_submitted"
    assert Response.objects.count() == 1 and Response.objects.get().nps_score == 3


def test_a_follow_up_answer_no_longer_shown_is_dropped():
    invitation = invited()
    nps, follow_up, _product = invitation.survey.questions.order_by("position")
    response_save(token=invitation.token, answers={nps.pk: 2, follow_up.pk: "Slow"}, submit=False)
    response = response_save(token=invitation.token, answers={nps.pk: 9}, submit=True)
    assert list(response.answers.values_list("question_id", flat=True)) == [nps.pk]


@pytest.mark.parametrize("value", [11, -1, "ten", 3.5, [1]])
def test_out_of_range_answers_are_field_errors(value):
    invitation = invited()
    nps = invitation.survey.questions.get(position=0)
    with pytest.raises(AnswerErrors) as bad:
        response_save(token=invitation.token, answers={nps.pk: value}, submit=True)
    assert str(nps.pk) in bad.value.errors and not Response.objects.filter(submitted_at__isnull=False).exists()


def test_unknown_expired_and_closed_links():
    with pytest.raises(DomainError) as unknown:
        response_save(token="nope", answers={}, submit=True)
    assert unknown.value.code == "not_found"
    invitation = invited()
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(DomainError) as expired:
        response_save(token=invitation.token, answers={}, submit=True)
    assert expired.value.code == "expired"
    fresh = invited()
    survey_close(survey=fresh.survey)
    with pytest.raises(DomainError) as closed:
        response_save(token=fresh.token, answers={}, submit=True)
    assert closed.value.code == "closed"


# --- Closing the loop -------------------------------------------------------------------------


def test_a_detractor_opens_a_task_for_the_owner_due_within_the_sla(settings, django_capture_on_commit_callbacks):
    settings.FEEDBACK_DETRACTOR_SLA_HOURS = 48
    owner = UserFactory()
    invitation = invited(owner=owner)
    nps = invitation.survey.questions.get(position=0)
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        response_save(token=invitation.token, answers={nps.pk: 6}, submit=True)
    task = Task.objects.get(customer=invitation.customer)
    assert task.assignee == owner and "score 6" in task.title
    assert before + dt.timedelta(hours=48) <= task.due_at <= timezone.now() + dt.timedelta(hours=48)


def test_a_passive_opens_no_task_and_promoters_reach_the_listeners(django_capture_on_commit_callbacks):
    received = []

    def listener(sender, response, category, **kwargs):
        received.append((response.pk, category))

    response_submitted.connect(listener)
    try:
        survey = open_survey()
        nps = survey.questions.get(position=0)
        with django_capture_on_commit_callbacks(execute=True):
            passive = response_save(token=invited(survey).token, answers={nps.pk: 7}, submit=True)
            promoter = response_save(token=invited(survey).token, answers={nps.pk: 9}, submit=True)
    finally:
        response_submitted.disconnect(listener)
    assert not Task.objects.exists()
    assert received == [(passive.pk, "passive"), (promoter.pk, "promoter")]


def test_nps_questions_in_the_module_are_valid():
    assert survey_create(name="x", kind="nps", questions=NPS_QUESTIONS).questions.count() == 3


def test_answers_feed_the_health_score_feedback_part():
    """The lifecycle app's health score reads feedback positivity from the survey answers: a promoter's
    10 gives the full feedback weight, a detractor's 0 none, no answer the neutral half."""
    from lifecycle.models_health import CustomerHealth
    from lifecycle.services.stages import lifecycle_evaluate

    survey = open_survey()
    nps = survey.questions.get(position=0)
    promoter, detractor = invited(survey), invited(survey)
    response_save(token=promoter.token, answers={nps.pk: 10}, submit=True)
    response_save(token=detractor.token, answers={nps.pk: 0}, submit=True)
    silent = consenting_customer()
    lifecycle_evaluate()
    points = dict(CustomerHealth.objects.values_list("customer_id", "feedback_points"))
    assert points[promoter.customer_id] == 10 and points[detractor.customer_id] == 0
    assert points[silent.pk] == 5


def test_daily_triggers_invite_on_stage_entry_and_segments_once():
    from django.core.exceptions import ValidationError

    from feedback.services.triggers import surveys_invite_automatic
    from lifecycle.models_stages import StageTransition

    on_churn = open_survey(invite_on_stage="churned")
    churned, stayed = consenting_customer(), consenting_customer()
    StageTransition.objects.create(customer=churned, from_stage="at_risk", to_stage="churned", at=timezone.now(), rule="churned")
    StageTransition.objects.create(customer=stayed, from_stage="new", to_stage="active", at=timezone.now(), rule="active")
    old = consenting_customer()
    StageTransition.objects.create(
        customer=old, from_stage="at_risk", to_stage="churned", at=timezone.now() - dt.timedelta(days=5), rule="churned"
    )
    in_france = open_survey("csat")
    in_france.segment_filter = {"country": "FR"}
    in_france.full_clean()
    in_france.save()
    french = consenting_customer(country="FR")
    assert surveys_invite_automatic() == 2
    assert list(Invitation.objects.filter(survey=on_churn).values_list("customer_id", "trigger")) == [(churned.pk, "stage")]
    assert list(Invitation.objects.filter(survey=in_france).values_list("customer_id", "trigger")) == [(french.pk, "schedule")]
    assert surveys_invite_automatic() == 0  # again: nobody twice
    in_france.segment_filter = {"country": "France!", "colour": "red"}
    with pytest.raises(ValidationError) as bad:
        in_france.full_clean()
    assert "Unknown filter: colour." in str(bad.value) and "country" in str(bad.value)


def test_promoters_count_toward_the_loyal_stage():
    from lifecycle.models_stages import CustomerStage, StageRules
    from lifecycle.services.stages import lifecycle_evaluate, stage_rules_get
    from tests.factories import OrderFactory

    survey = open_survey()
    nps = survey.questions.get(position=0)
    promoter, passive = invited(survey), invited(survey)
    for invitation, score in ((promoter, 9), (passive, 8)):
        OrderFactory(customer=invitation.customer, ordered_at=timezone.now() - dt.timedelta(days=3))
        response_save(token=invitation.token, answers={nps.pk: score}, submit=True)
    rules = stage_rules_get()
    StageRules.objects.filter(pk=rules.pk).update(loyal_feedback=0)
    lifecycle_evaluate()
    assert CustomerStage.objects.get(customer=promoter.customer).stage == "new"  # the rule is off
    StageRules.objects.filter(pk=rules.pk).update(loyal_feedback=90)
    lifecycle_evaluate()
    stages = dict(CustomerStage.objects.values_list("customer_id", "stage"))
    assert stages[promoter.customer_id] == "loyal" and stages[passive.customer_id] == "new"


def test_the_order_trigger_invites_buyers_of_the_shop_day_n_days_ago(settings):
    from core.times import shop_day, shop_day_start
    from feedback.services.triggers import surveys_invite_after_orders
    from tests.factories import OrderFactory

    settings.TIME_ZONE = "Europe/Berlin"
    survey = open_survey(invite_days_after_order=3)
    day = shop_day() - dt.timedelta(days=3)
    first, last = shop_day_start(day), shop_day_start(day + dt.timedelta(days=1)) - dt.timedelta(seconds=1)
    early, late = consenting_customer(), consenting_customer()
    too_recent, cancelled = consenting_customer(), consenting_customer()
    OrderFactory(customer=early, ordered_at=first)
    OrderFactory(customer=late, ordered_at=last)
    OrderFactory(customer=too_recent, ordered_at=last + dt.timedelta(seconds=1))
    OrderFactory(customer=cancelled, ordered_at=first, status="cancelled")
    assert surveys_invite_after_orders() == 2
    assert set(Invitation.objects.filter(survey=survey).values_list("customer_id", flat=True)) == {early.pk, late.pk}
    assert surveys_invite_after_orders() == 0
