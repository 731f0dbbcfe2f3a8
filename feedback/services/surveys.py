"""Building surveys: create with questions, open, close, duplicate, export and import as JSON.

A survey's questions may change freely while it is a draft. Once it is open and has answers, only
what cannot break its results may change (wording, required, the order of choices' labels is kept):
a question's type, its choices' values or its removal would make old answers mean something else."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from feedback.models import Answer, Question, Survey

SCORE_RANGES = {Question.Type.NPS: (0, 10), Question.Type.RATING: (1, 5), Question.Type.YES_NO: (0, 1)}
CHOICE_TYPES = (Question.Type.SINGLE, Question.Type.MULTIPLE)
EXPORT_VERSION = 1


def _clean_questions(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check a list of question specs ({type, text, required, choices, show_if: {question, min, max}})
    and return them normalised; a DomainError names the first bad one."""
    if not questions:
        raise DomainError(_("A survey needs at least one question."), field="questions")
    cleaned = []
    for position, spec in enumerate(questions):
        where = _("Question %(number)d") % {"number": position + 1}
        kind = spec.get("type")
        if kind not in Question.Type.values:
            raise DomainError(_("%(where)s: unknown type %(type)r.") % {"where": where, "type": kind}, field="questions")
        text = str(spec.get("text") or "").strip()
        if not text or len(text) > 500:
            raise DomainError(_("%(where)s: the text must have 1 to 500 characters.") % {"where": where}, field="questions")
        choices = spec.get("choices") or []
        if kind in CHOICE_TYPES:
            if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c.strip() for c in choices):
                raise DomainError(_("%(where)s: give at least two choices.") % {"where": where}, field="questions")
            choices = [c.strip() for c in choices]
            if len(set(choices)) != len(choices):
                raise DomainError(_("%(where)s: the choices must differ.") % {"where": where}, field="questions")
        elif choices:
            raise DomainError(_("%(where)s: only choice questions have choices.") % {"where": where}, field="questions")
        show_if = spec.get("show_if") or None
        if show_if is not None:
            parent = show_if.get("question")
            if not isinstance(parent, int) or not 0 <= parent < position:
                raise DomainError(
                    _("%(where)s: a follow-up must come after the question it follows.") % {"where": where},
                    field="questions",
                )
            if cleaned[parent]["type"] not in SCORE_RANGES:
                raise DomainError(
                    _("%(where)s: a follow-up can only depend on a scored question.") % {"where": where},
                    field="questions",
                )
            low, high = show_if.get("min"), show_if.get("max")
            if (low is None and high is None) or (low is not None and high is not None and low > high):
                raise DomainError(_("%(where)s: give the score range that shows it.") % {"where": where}, field="questions")
        cleaned.append(
            {"type": kind, "text": text, "required": bool(spec.get("required", True)), "choices": choices, "show_if": show_if}
        )
    return cleaned


def _create_questions(survey: Survey, questions: list[dict[str, Any]]) -> list[Question]:
    created: list[Question] = []
    for position, spec in enumerate(questions):
        show_if = spec["show_if"]
        created.append(
            Question.objects.create(
                survey=survey,
                position=position,
                type=spec["type"],
                text=spec["text"],
                required=spec["required"],
                choices=spec["choices"],
                show_if_question=created[show_if["question"]] if show_if else None,
                show_if_min=show_if.get("min") if show_if else None,
                show_if_max=show_if.get("max") if show_if else None,
            )
        )
    return created


@transaction.atomic
def survey_create(*, name: str, kind: str, questions: list[dict[str, Any]], created_by=None, **options) -> Survey:
    name = (name or "").strip()
    if not name:
        raise DomainError(_("Give the survey a name."), field="name")
    if kind not in Survey.Kind.values:
        raise DomainError(_("Unknown survey kind."), field="kind")
    cleaned = _clean_questions(questions)
    if kind == Survey.Kind.NPS and cleaned[0]["type"] != Question.Type.NPS:
        raise DomainError(_("An NPS survey starts with an NPS question (0-10)."), field="questions")
    if kind == Survey.Kind.CSAT and cleaned[0]["type"] != Question.Type.RATING:
        raise DomainError(_("A CSAT survey starts with a rating question (1-5)."), field="questions")
    allowed = {
        "intro", "thank_you", "invitation_valid_days", "reminder_after_days", "invite_days_after_order", "invite_on_stage",
    }
    survey = Survey.objects.create(
        name=name, kind=kind, created_by=created_by, **{k: v for k, v in options.items() if k in allowed}
    )
    _create_questions(survey, cleaned)
    return survey


def survey_questions_replace(*, survey: Survey, questions: list[dict[str, Any]]) -> list[Question]:
    """Replace a survey's questions: only while no response has answered any of them."""
    with transaction.atomic():
        survey = Survey.objects.select_for_update().get(pk=survey.pk)
        if Answer.objects.filter(question__survey=survey).exists():
            raise DomainError(
                _("This survey has answers: its questions can no longer be replaced. Duplicate it instead."),
                code="conflict",
            )
        cleaned = _clean_questions(questions)
        survey.questions.all().delete()
        return _create_questions(survey, cleaned)


def question_update(*, question: Question, text: str | None = None, required: bool | None = None) -> Question:
    """Change what cannot change the meaning of old answers: the wording and whether it is required."""
    if text is not None:
        text = text.strip()
        if not text or len(text) > 500:
            raise DomainError(_("The text must have 1 to 500 characters."), field="text")
        question.text = text
    if required is not None:
        question.required = required
    question.save(update_fields=["text", "required"])
    return question


def survey_open(*, survey: Survey) -> Survey:
    with transaction.atomic():
        survey = Survey.objects.select_for_update().get(pk=survey.pk)
        if survey.status == Survey.Status.OPEN:
            return survey
        if not survey.questions.exists():
            raise DomainError(_("A survey needs at least one question."), field="questions")
        survey.status = Survey.Status.OPEN
        survey.opened_at = survey.opened_at or timezone.now()
        survey.closed_at = None
        survey.save(update_fields=["status", "opened_at", "closed_at", "updated_at"])
    return survey


def survey_close(*, survey: Survey) -> Survey:
    Survey.objects.filter(pk=survey.pk).exclude(status=Survey.Status.CLOSED).update(
        status=Survey.Status.CLOSED, closed_at=timezone.now(), updated_at=timezone.now()
    )
    survey.refresh_from_db()
    return survey


def survey_export(*, survey: Survey) -> dict[str, Any]:
    """The survey as JSON that `survey_import` reads back (answers are never exported)."""
    questions = list(survey.questions.order_by("position"))
    positions = {q.pk: q.position for q in questions}
    return {
        "version": EXPORT_VERSION,
        "name": survey.name,
        "kind": survey.kind,
        "intro": survey.intro,
        "thank_you": survey.thank_you,
        "invitation_valid_days": survey.invitation_valid_days,
        "reminder_after_days": survey.reminder_after_days,
        "questions": [
            {
                "type": q.type,
                "text": q.text,
                "required": q.required,
                "choices": q.choices,
                "show_if": (
                    {"question": positions[q.show_if_question_id], "min": q.show_if_min, "max": q.show_if_max}
                    if q.show_if_question_id
                    else None
                ),
            }
            for q in questions
        ],
    }


def survey_import(*, data: Any, created_by=None) -> Survey:
    """A new draft survey from `survey_export`'s JSON."""
    if not isinstance(data, dict) or data.get("version") != EXPORT_VERSION or not isinstance(data.get("questions"), list):
        raise DomainError(_("This is not a survey export this version can read."), field="file")
    options = {k: data[k] for k in ("intro", "thank_you", "invitation_valid_days", "reminder_after_days") if k in data}
    return survey_create(
        name=str(data.get("name", "")), kind=data.get("kind"), questions=data["questions"], created_by=created_by, **options
    )


def survey_duplicate(*, survey: Survey, created_by=None) -> Survey:
    data = survey_export(survey=survey)
    data["name"] = _("%(name)s (copy)") % {"name": survey.name}
    return survey_import(data=data, created_by=created_by)
