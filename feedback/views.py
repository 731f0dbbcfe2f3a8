"""Staff pages of the feedback app: the surveys, the builder, a survey's results with charts,
inviting a filtered list, the exports, and a response with its replies (closing the loop).

Every role reads; building, opening, closing and inviting need a Manager; replying to a response
needs a Manager or the Agent who owns the customer."""

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.auth import role_required
from core.csv import csv_row
from core.exceptions import DomainError
from core.roles import Role, role_at_least
from customers.forms import CustomerFilterForm
from customers.rules import customer_write_permitted
from customers.selectors import customer_filter
from feedback import selectors
from feedback.charts import survey_charts
from feedback.forms import QuestionFormSet, ReplyForm, SurveyForm, SurveyImportForm
from feedback.models import Response, Survey
from feedback.services.invitations import refusal_message, survey_invite_bulk
from feedback.services.responses import response_reply
from feedback.services.surveys import (
    survey_close,
    survey_create,
    survey_duplicate,
    survey_export,
    survey_import,
    survey_open,
)


@role_required(Role.AGENT)
def survey_list(request):
    return render(request, "feedback/list.html", {"surveys": selectors.survey_list_with_results()})


@role_required(Role.MANAGER)
def survey_new(request):
    form = SurveyForm(request.POST or None)
    questions = QuestionFormSet(request.POST or None, prefix="q")
    import_form = SurveyImportForm()
    error = None
    if request.method == "POST" and form.is_valid() and questions.is_valid():
        specs = [spec for spec in (row.spec() for row in questions) if spec is not None]
        try:
            survey = survey_create(questions=specs, created_by=request.user, **form.cleaned_data)
        except DomainError as exc:
            error = exc.message
        else:
            messages.success(request, _("Survey created as a draft. Open it to start inviting."))
            return HttpResponseRedirect(reverse("feedback:detail", args=[survey.pk]))
    return render(
        request, "feedback/new.html", {"form": form, "questions": questions, "import_form": import_form, "error": error}
    )


@role_required(Role.MANAGER)
@require_POST
def survey_import_upload(request):
    form = SurveyImportForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            data = json.loads(form.cleaned_data["file"].read(1_000_000).decode("utf-8"))
            survey = survey_import(data=data, created_by=request.user)
        except (ValueError, UnicodeDecodeError):
            messages.error(request, _("The file is not valid JSON."))
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Survey imported as a draft."))
            return HttpResponseRedirect(reverse("feedback:detail", args=[survey.pk]))
    return HttpResponseRedirect(reverse("feedback:new"))


@role_required(Role.AGENT)
def survey_detail(request, pk: int):
    survey = get_object_or_404(Survey, pk=pk)
    q = request.GET.get("q", "")[:100]
    context = {"survey": survey, "q": q, "text_answers": selectors.survey_text_answers(survey=survey, q=q)}
    if request.htmx and not request.htmx.history_restore_request and request.GET.get("fragment") == "text-answers":
        response = render(request, "feedback/detail.html#text-answers", context)
        patch_vary_headers(response, ("HX-Request",))
        return response
    results = selectors.survey_results(survey=survey)
    context.update(
        results=results,
        question_stats=selectors.survey_question_stats(survey=survey),
        nps_groups=[
            (_("NPS by acquisition channel"), _("Channel"), _("No channel"), selectors.survey_nps_by(survey=survey, dimension="channel")),
            (_("NPS by lifecycle stage"), _("Stage (now)"), _("Not evaluated yet"), selectors.survey_nps_by(survey=survey, dimension="stage")),
            (_("NPS by loyalty tier"), _("Tier (now)"), _("No tier"), selectors.survey_nps_by(survey=survey, dimension="tier")),
        ],
        charts=survey_charts(survey=survey),
        may_manage=role_at_least(request.user, Role.MANAGER),
        recent=selectors.survey_recent_responses(survey=survey),
    )
    response = render(request, "feedback/detail.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@role_required(Role.MANAGER)
@require_POST
def survey_action(request, pk: int, action: str):
    survey = get_object_or_404(Survey, pk=pk)
    if action == "open":
        survey_open(survey=survey)
        messages.success(request, _("The survey is open."))
    elif action == "close":
        survey_close(survey=survey)
        messages.success(request, _("The survey is closed: its links no longer take answers."))
    elif action == "duplicate":
        copy = survey_duplicate(survey=survey, created_by=request.user)
        messages.success(request, _("Survey duplicated as a draft."))
        return HttpResponseRedirect(reverse("feedback:detail", args=[copy.pk]))
    return HttpResponseRedirect(reverse("feedback:detail", args=[survey.pk]))


@role_required(Role.AGENT)
def survey_export_json(request, pk: int):
    survey = get_object_or_404(Survey, pk=pk)
    response = HttpResponse(json.dumps(survey_export(survey=survey), ensure_ascii=False, indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="survey-{survey.pk}-{slugify(survey.name) or "export"}.json"'
    return response


@role_required(Role.AGENT)
def survey_export_csv(request, pk: int):
    """Every submitted response, one row each, one column per question; cells are formula-safe."""
    survey = get_object_or_404(Survey, pk=pk)
    questions, responses = selectors.survey_responses_export(survey=survey)
    def rows():
        header = [_("response"), _("customer id"), _("customer e-mail"), _("submitted"), _("NPS score"), _("CSAT score")]
        yield csv_row(header + [q.text for q in questions])
        for response in responses:
            answers = {a.question_id: a for a in response.answers.all()}
            cells = [response.pk, response.customer_id, response.customer.email, response.submitted_at, response.nps_score, response.csat_score]
            for question in questions:
                answer = answers.get(question.pk)
                if answer is None:
                    cells.append(None)
                elif answer.score is not None:
                    cells.append(answer.score)
                elif answer.choices:
                    cells.append("; ".join(answer.choices))
                else:
                    cells.append(answer.text)
            yield csv_row(cells)

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="survey-{survey.pk}-responses.csv"'
    return response


@role_required(Role.MANAGER)
def survey_invite_list(request, pk: int):
    """Invite the customers a customer-list filter selects (the same filters as the list page)."""
    survey = get_object_or_404(Survey, pk=pk)
    form = CustomerFilterForm(request.POST or request.GET or None)
    summary = None
    if request.method == "POST":
        filters = form.filters() if form.is_bound else {}
        summary = survey_invite_bulk(survey=survey, customers=customer_filter(**filters), now=timezone.now())
        summary.reasons = [(refusal_message(reason), n) for reason, n in summary.refused.items()]
    return render(request, "feedback/invite.html", {"survey": survey, "form": form, "summary": summary})


def _may_reply(user, response: Response) -> bool:
    """Replying is writing for the customer: the customers app's one rule."""
    return customer_write_permitted(user=user, customer=response.customer)


@role_required(Role.AGENT)
def response_detail(request, pk: int):
    response = get_object_or_404(Response.objects.select_related("survey", "customer", "customer__owner"), pk=pk)
    form = ReplyForm(request.POST or None)
    if request.method == "POST":
        if not _may_reply(request.user, response):
            raise PermissionDenied(_("Your role does not allow this action."))
        if form.is_valid():
            try:
                response_reply(
                    response=response,
                    author=request.user,
                    body=form.cleaned_data["body"],
                    outcome=form.cleaned_data["outcome"] or None,
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("Saved."))
                return HttpResponseRedirect(reverse("feedback:response", args=[response.pk]))
    context = {
        "response": response,
        "answers": selectors.response_answer_rows(response=response),
        "replies": response.replies.select_related("author"),
        "form": form,
        "may_reply": _may_reply(request.user, response),
    }
    return render(request, "feedback/response.html", context)
