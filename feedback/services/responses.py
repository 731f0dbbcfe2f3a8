"""Answering a survey by its link, and closing the loop on what the customer said.

An invitation gets exactly one response. The response row is created once (a unique invitation)
and locked while answers are saved, so a refresh, a double submit, two tabs or concurrent requests
never make a second one; answers saved before submitting are kept and the page resumes them. The
submit moves the survey's running totals in the same transaction and then:

- a detractor's answer (0-6) opens a follow-up task for the customer's owner, due within
  FEEDBACK_DETRACTOR_SLA_HOURS;
- `response_submitted` (feedback.signals) is sent after commit with the response and its NPS
  category: the lifecycle app (churn signal, loyal stage, health score) and the referral programme
  (inviting promoters) listen there."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from core.times import shop_day
from customers.models import Task
from feedback.models import Answer, Invitation, Question, Response, ResponseReply, Survey, SurveyDayTotals, nps_category
from feedback.services.surveys import SCORE_RANGES
from feedback.signals import response_submitted


@dataclass(frozen=True)
class AnswerValue:
    score: int | None = None
    choices: tuple[str, ...] = ()
    text: str = ""

    @property
    def is_empty(self) -> bool:
        return self.score is None and not self.choices and not self.text


def invitation_for_token(*, token: str, now=None, for_update: bool = False) -> Invitation:
    """The invitation of a link, or a DomainError: code "not_found", "expired" or "closed"."""
    now = now or timezone.now()
    invitations = Invitation.objects.select_related("survey", "customer")
    if for_update:
        invitations = invitations.select_for_update(of=("self",))
    invitation = invitations.filter(token=str(token)[:64]).first() if token else None
    if invitation is None:
        raise DomainError(_("This survey link is not valid."), code="not_found")
    if invitation.survey.status != Survey.Status.OPEN:
        raise DomainError(_("This survey is closed."), code="closed")
    if invitation.expires_at <= now and invitation.answered_at is None:
        raise DomainError(_("This survey link has expired."), code="expired")
    return invitation


def parse_answer(question: Question, raw: Any) -> AnswerValue:
    """Turn what a form or the API sent for a question into its stored value, or a DomainError."""
    if raw is None or raw == "" or raw == []:
        return AnswerValue()
    if question.type in SCORE_RANGES:
        if question.type == Question.Type.YES_NO and isinstance(raw, str) and raw.lower() in ("yes", "no"):
            raw = 1 if raw.lower() == "yes" else 0
        if isinstance(raw, bool):
            raw = int(raw)
        try:
            score = int(str(raw).strip())
        except ValueError:
            score = None
        low, high = SCORE_RANGES[question.type]
        if score is None or not low <= score <= high:
            raise DomainError(_("Choose a value from %(low)d to %(high)d.") % {"low": low, "high": high}, field=str(question.pk))
        return AnswerValue(score=score)
    if question.type in (Question.Type.SINGLE, Question.Type.MULTIPLE):
        picked = raw if isinstance(raw, list | tuple) else [raw]
        picked = tuple(str(choice) for choice in picked)
        if any(choice not in question.choices for choice in picked) or len(set(picked)) != len(picked):
            raise DomainError(_("Choose among the choices given."), field=str(question.pk))
        if question.type == Question.Type.SINGLE and len(picked) != 1:
            raise DomainError(_("Choose one answer."), field=str(question.pk))
        return AnswerValue(choices=picked)
    text = str(raw).strip()
    if len(text) > 5000:
        raise DomainError(_("Keep the answer under 5,000 characters."), field=str(question.pk))
    return AnswerValue(text=text)


def _score_map(answers: dict[int, AnswerValue]) -> dict[int, object]:
    return {pk: value.score for pk, value in answers.items() if value.score is not None}


def response_save(*, token: str, answers: dict[Any, Any], submit: bool, now=None) -> Response:
    """Save the answers given (question id -> raw value) to the invitation's one response, and
    submit it when asked. A submitted response is final: DomainError code "already_submitted"."""
    now = now or timezone.now()
    with transaction.atomic():
        invitation = invitation_for_token(token=token, now=now, for_update=True)
        response = _response_locked(invitation)
        if response.submitted_at is not None:
            raise DomainError(_("This survey has already been answered. Thank you!"), code="already_submitted")
        questions = {q.pk: q for q in invitation.survey.questions.order_by("position")}
        parsed: dict[int, AnswerValue] = {}
        errors: dict[str, str] = {}
        for key, raw in answers.items():
            try:
                question = questions[int(key)]
            except (KeyError, TypeError, ValueError):
                errors[str(key)] = _("This question is not part of the survey.")
                continue
            try:
                parsed[question.pk] = parse_answer(question, raw)
            except DomainError as exc:
                errors[str(question.pk)] = exc.message
        if errors:
            raise AnswerErrors(errors)
        _answers_store(response, parsed)
        if submit:
            _response_submit(response=response, invitation=invitation, questions=questions, now=now)
    if submit:
        transaction.on_commit(lambda: response_submitted.send(sender=Response, response=response, category=response.category))
    return response


class AnswerErrors(DomainError):
    """Some answers are invalid; nothing was saved. `errors` maps question ids to messages."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(_("Some answers need another look."), code="invalid")
        self.errors = errors


def _response_locked(invitation: Invitation) -> Response:
    """The invitation's response, created if this is the first save, locked until commit.

    The invitation row is already locked (invitation_for_token), so concurrent saves of one link
    queue here; the unique invitation is the last guard."""
    response = Response.objects.select_for_update().filter(invitation=invitation).first()
    if response is None:
        try:
            with transaction.atomic():
                response = Response.objects.create(
                    invitation=invitation, survey_id=invitation.survey_id, customer_id=invitation.customer_id
                )
        except IntegrityError:
            response = Response.objects.select_for_update().get(invitation=invitation)
    return response


def _answers_store(response: Response, parsed: dict[int, AnswerValue]) -> None:
    """Replace the answers of the questions given; an empty value removes a kept answer."""
    if not parsed:
        return
    Answer.objects.filter(response=response, question_id__in=list(parsed)).delete()
    Answer.objects.bulk_create(
        [
            Answer(response=response, question_id=pk, score=value.score, choices=list(value.choices), text=value.text)
            for pk, value in parsed.items()
            if not value.is_empty
        ]
    )


def response_answers(response: Response) -> dict[int, AnswerValue]:
    return {
        a.question_id: AnswerValue(score=a.score, choices=tuple(a.choices), text=a.text)
        for a in Answer.objects.filter(response=response)
    }


def _response_submit(*, response: Response, invitation: Invitation, questions: dict[int, Question], now) -> None:
    stored = response_answers(response)
    scores = _score_map(stored)
    missing = {
        str(pk): _("Please answer this question.")
        for pk, question in questions.items()
        if question.required and question.shown_for(scores) and pk not in stored
    }
    if missing:
        raise AnswerErrors(missing)
    # Answers to follow-ups that no longer apply (the score changed) are not part of the response.
    hidden = [pk for pk, question in questions.items() if pk in stored and not question.shown_for(scores)]
    if hidden:
        Answer.objects.filter(response=response, question_id__in=hidden).delete()
    ordered = list(questions.values())
    nps_question = next((q for q in ordered if q.type == Question.Type.NPS), None)
    csat_question = next((q for q in ordered if q.type == Question.Type.RATING), None)
    response.nps_score = scores.get(nps_question.pk) if nps_question else None
    response.csat_score = scores.get(csat_question.pk) if csat_question else None
    response.submitted_at = now
    response.save(update_fields=["nps_score", "csat_score", "submitted_at"])
    Invitation.objects.filter(pk=invitation.pk).update(answered_at=now)
    _totals_add(response=response, now=now)
    if response.category == Response.Category.DETRACTOR:
        _detractor_task(response=response, invitation=invitation, now=now)


def _totals_add(*, response: Response, now) -> None:
    day = shop_day(now)
    category = response.category
    SurveyDayTotals.objects.get_or_create(survey_id=response.survey_id, day=day)
    SurveyDayTotals.objects.filter(survey_id=response.survey_id, day=day).update(
        responses=F("responses") + 1,
        promoters=F("promoters") + int(category == Response.Category.PROMOTER),
        passives=F("passives") + int(category == Response.Category.PASSIVE),
        detractors=F("detractors") + int(category == Response.Category.DETRACTOR),
        csat_answers=F("csat_answers") + int(response.csat_score is not None),
        csat_satisfied=F("csat_satisfied") + int((response.csat_score or 0) >= 4),
    )


def _detractor_task(*, response: Response, invitation: Invitation, now) -> Task:
    customer = invitation.customer
    with translation.override(settings.LANGUAGE_CODE):  # staff read it, whatever the customer's language
        title = _("Follow up on survey feedback: %(survey)s (score %(score)d)") % {
            "survey": invitation.survey.name,
            "score": response.nps_score,
        }
    return Task.objects.create(
        customer=customer,
        assignee_id=customer.owner_id,
        title=title[:200],
        due_at=now + dt.timedelta(hours=int(settings.FEEDBACK_DETRACTOR_SLA_HOURS)),
    )


def response_reply(*, response: Response, author, body: str = "", outcome: str | None = None):
    """A staff reply to a response, and/or the outcome of the follow-up."""
    body = (body or "").strip()
    if not body and outcome is None:
        raise DomainError(_("Write a reply or an outcome."), field="body")
    with transaction.atomic():
        reply = ResponseReply.objects.create(response=response, author=author, body=body) if body else None
        if outcome is not None:
            Response.objects.filter(pk=response.pk).update(outcome=outcome.strip())
            response.outcome = outcome.strip()
    return reply


__all__ = ["AnswerErrors", "invitation_for_token", "nps_category", "response_reply", "response_save"]
