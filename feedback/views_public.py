"""The public answer page: no login, bound to its token, works without JavaScript.

The page shows the questions that apply given the answers saved so far: first the main ones, then,
after "Next", the follow-ups a score opened (e.g. "what could we do better?" for 0-6). "Save for
later" keeps the answers; the link resumes them until the response is submitted."""

from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from core.auth import public_view
from core.exceptions import DomainError
from feedback.services.responses import (
    AnswerErrors,
    invitation_for_token,
    response_answers,
    response_save,
)

ERROR_STATUS = {"not_found": 404, "expired": 410, "closed": 410, "already_submitted": 409}


def _shown(questions, answers) -> list:
    scores = {pk: value.score for pk, value in answers.items() if value.score is not None}
    return [q for q in questions if q.shown_for(scores)]


def _form_answers(request, questions) -> dict:
    answers = {}
    for question in questions:
        name = f"q{question.pk}"
        if question.type == question.Type.MULTIPLE:
            answers[question.pk] = request.POST.getlist(name)
        else:
            answers[question.pk] = request.POST.get(name, "")
    return answers


@public_view
@require_http_methods(["GET", "POST"])
def survey_answer(request, token: str):
    try:
        invitation = invitation_for_token(token=token)
    except DomainError as exc:
        return render(request, "feedback/public/unavailable.html", {"reason": exc.code, "message": exc.message}, status=ERROR_STATUS.get(exc.code, 400))
    survey = invitation.survey
    response = getattr(invitation, "response", None) if hasattr(invitation, "response") else None
    if response is not None and response.submitted_at is not None:
        return render(request, "feedback/public/thanks.html", {"survey": survey, "already": True}, status=409 if request.method == "POST" else 200)
    questions = list(survey.questions.order_by("position"))
    saved = response_answers(response) if response is not None else {}
    errors: dict[str, str] = {}
    values: dict = {}
    if request.method == "POST":
        posted_ids = {int(pk) for pk in request.POST.getlist("shown") if pk.isdigit()}
        posted = [q for q in questions if q.pk in posted_ids]
        values = _form_answers(request, posted)
        action = request.POST.get("action", "submit")
        try:
            response = response_save(token=token, answers=values, submit=False)
            saved = response_answers(response)
            newly_shown = [q for q in _shown(questions, saved) if q.pk not in posted_ids]
            if action == "submit" and not newly_shown:
                response_save(token=token, answers={}, submit=True)
                return render(request, "feedback/public/thanks.html", {"survey": survey})
        except AnswerErrors as exc:
            errors = exc.errors
        except DomainError as exc:
            if exc.code == "already_submitted":
                return render(request, "feedback/public/thanks.html", {"survey": survey, "already": True}, status=409)
            return render(request, "feedback/public/unavailable.html", {"reason": exc.code, "message": exc.message}, status=ERROR_STATUS.get(exc.code, 400))
        if action == "save" and not errors:
            return render(request, "feedback/public/answer.html", _page(survey, questions, saved, {}, {}, saved_note=True))
    return render(request, "feedback/public/answer.html", _page(survey, questions, saved, values, errors), status=400 if errors else 200)


def _page(survey, questions, saved, posted_values, errors, saved_note=False) -> dict:
    items = []
    for question in _shown(questions, saved):
        value = saved.get(question.pk)
        if question.pk in posted_values:
            current = posted_values[question.pk]
        elif value is None:
            current = [] if question.type == question.Type.MULTIPLE else ""
        elif value.score is not None:
            current = str(value.score)
        elif question.type == question.Type.MULTIPLE:
            current = list(value.choices)
        elif value.choices:
            current = value.choices[0]
        else:
            current = value.text
        items.append(
            {
                "question": question,
                "current": current,
                "error": errors.get(str(question.pk)),
                "scale": _scale(question),
            }
        )
    return {"survey": survey, "items": items, "has_errors": bool(errors), "saved_note": saved_note}


def _scale(question) -> list[str]:
    if question.type == question.Type.NPS:
        return [str(n) for n in range(11)]
    if question.type == question.Type.RATING:
        return [str(n) for n in range(1, 6)]
    return []
