"""Reads of the feedback app: a survey's results (NPS with its 95% confidence interval, CSAT,
response rate) from the running day totals, its trend by month and by channel, answers per question,
drop-off per question, searchable free-text answers, and a customer's responses."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth

from feedback.models import Answer, Invitation, Question, Response, Survey, SurveyDayTotals

SMALL_SAMPLE = 30  # fewer responses than this: the interval is wide, and the page says so
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Results:
    invitations: int
    responses: int
    promoters: int
    passives: int
    detractors: int
    csat_answers: int
    csat_satisfied: int

    @property
    def scored(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def nps(self) -> float | None:
        """% promoters minus % detractors, -100..100; None without NPS answers."""
        if not self.scored:
            return None
        return (self.promoters - self.detractors) * 100 / self.scored

    @property
    def nps_interval(self) -> tuple[float, float] | None:
        """The 95% confidence interval of the NPS (normal approximation of the difference of two
        proportions of one multinomial sample), clipped to -100..100."""
        n = self.scored
        if not n:
            return None
        p, d = self.promoters / n, self.detractors / n
        variance = (p + d - (p - d) ** 2) / n
        half = Z_95 * math.sqrt(max(variance, 0.0)) * 100
        nps = self.nps
        return max(-100.0, nps - half), min(100.0, nps + half)

    @property
    def small_sample(self) -> bool:
        return self.scored < SMALL_SAMPLE

    @property
    def csat(self) -> float | None:
        """Share of 4-5 answers among the CSAT answers, in %."""
        return self.csat_satisfied * 100 / self.csat_answers if self.csat_answers else None

    @property
    def response_rate(self) -> float | None:
        return min(100.0, self.responses * 100 / self.invitations) if self.invitations else None


def survey_results(*, survey: Survey, date_from: dt.date | None = None, date_to: dt.date | None = None) -> Results:
    """Results over the days from..to (shop calendar days, inclusive): one aggregate over the day
    totals, whatever the number of responses."""
    rows = SurveyDayTotals.objects.filter(survey=survey)
    if date_from:
        rows = rows.filter(day__gte=date_from)
    if date_to:
        rows = rows.filter(day__lte=date_to)
    names = ["invitations", "responses", "promoters", "passives", "detractors", "csat_answers", "csat_satisfied"]
    totals = rows.aggregate(**{name: Sum(name) for name in names})
    return Results(**{name: totals[name] or 0 for name in names})


def survey_trend_by_month(*, survey: Survey) -> list[tuple[dt.date, Results]]:
    rows = (
        SurveyDayTotals.objects.filter(survey=survey)
        .annotate(month=TruncMonth("day"))
        .values("month")
        .annotate(
            invitations=Sum("invitations"),
            responses=Sum("responses"),
            promoters=Sum("promoters"),
            passives=Sum("passives"),
            detractors=Sum("detractors"),
            csat_answers=Sum("csat_answers"),
            csat_satisfied=Sum("csat_satisfied"),
        )
        .order_by("month")
    )
    return [(row.pop("month"), Results(**row)) for row in rows]


# The groups results can be split by: the customer's acquisition channel, their current lifecycle
# stage and their current loyalty tier (reached by relation name: feedback imports neither app).
NPS_DIMENSIONS = {
    "channel": "customer__channel__name",
    "stage": "customer__stage__stage",
    "tier": "customer__loyalty_account__tier__name",
}


def survey_nps_by(*, survey: Survey, dimension: str) -> list[dict]:
    """NPS of the submitted responses per channel, current stage or current tier: one GROUP BY.
    Customers without one are the group None."""
    column = NPS_DIMENSIONS[dimension]
    rows = (
        Response.objects.filter(survey=survey, submitted_at__isnull=False, nps_score__isnull=False)
        .values(group=F(column))
        .annotate(
            promoters=Count("pk", filter=Q(nps_score__gte=9)),
            passives=Count("pk", filter=Q(nps_score__gte=7, nps_score__lte=8)),
            detractors=Count("pk", filter=Q(nps_score__lte=6)),
        )
        .order_by(F(column).asc(nulls_last=True))
    )
    labels = _stage_labels() if dimension == "stage" else {}
    return [
        {
            "group": labels.get(row["group"], row["group"]),
            "results": Results(0, 0, row["promoters"], row["passives"], row["detractors"], 0, 0),
        }
        for row in rows
    ]


def _stage_labels() -> dict:
    from lifecycle.models_stages import Stage

    return {stage.value: stage.label for stage in Stage}


@dataclass(frozen=True)
class QuestionStats:
    question: Question
    answered: int
    reached: int  # responses that were shown the question (started ones included)
    distribution: list[tuple[str, int]]

    @property
    def drop_off(self) -> float | None:
        """Share of the responses that reached this question and left it unanswered, in %."""
        return (self.reached - self.answered) * 100 / self.reached if self.reached else None


def survey_question_stats(*, survey: Survey) -> list[QuestionStats]:
    """Answers per question (counts per score or choice) and drop-off that stays right with
    branching: a follow-up counts only the responses whose score showed it. A fixed number of
    queries: one per scored follow-up parent, plus three."""
    questions = list(survey.questions.order_by("position"))
    total = Response.objects.filter(survey=survey).count()
    answered = dict(
        Answer.objects.filter(question__survey=survey).values("question").annotate(n=Count("pk")).values_list("question", "n")
    )
    scores: dict[int, dict[int, int]] = {}
    for question_id, score, n in (
        Answer.objects.filter(question__survey=survey, score__isnull=False)
        .values_list("question", "score")
        .annotate(n=Count("pk"))
    ):
        scores.setdefault(question_id, {})[score] = n
    choice_counts: dict[int, dict[str, int]] = {}
    for question_id, picked in Answer.objects.filter(
        question__survey=survey, question__type__in=[Question.Type.SINGLE, Question.Type.MULTIPLE]
    ).values_list("question", "choices"):
        counter = choice_counts.setdefault(question_id, {})
        for choice in picked:
            counter[choice] = counter.get(choice, 0) + 1
    stats = []
    for question in questions:
        if question.show_if_question_id:
            parent_scores = scores.get(question.show_if_question_id, {})
            low = question.show_if_min if question.show_if_min is not None else -(10**6)
            high = question.show_if_max if question.show_if_max is not None else 10**6
            reached = sum(n for score, n in parent_scores.items() if low <= score <= high)
        else:
            reached = total
        if question.type in (Question.Type.NPS, Question.Type.RATING, Question.Type.YES_NO):
            low, high = {"nps": (0, 10), "rating": (1, 5), "yes_no": (0, 1)}[question.type]
            counts = scores.get(question.pk, {})
            distribution = [(str(score), counts.get(score, 0)) for score in range(low, high + 1)]
        elif question.type in (Question.Type.SINGLE, Question.Type.MULTIPLE):
            counts = choice_counts.get(question.pk, {})
            distribution = [(choice, counts.get(choice, 0)) for choice in question.choices]
        else:
            distribution = []
        stats.append(QuestionStats(question, answered.get(question.pk, 0), reached, distribution))
    return stats


def survey_text_answers(*, survey: Survey, q: str = "", limit: int = 50) -> QuerySet[Answer]:
    answers = Answer.objects.filter(question__survey=survey, question__type=Question.Type.TEXT).exclude(text="")
    if q.strip():
        answers = answers.filter(text__icontains=q.strip())
    return answers.select_related("response__customer", "question").order_by("-response_id", "question__position")[:limit]


def survey_list() -> QuerySet[Survey]:
    return Survey.objects.annotate(
        n_questions=Count("questions", distinct=True),
    ).order_by("-id")


def survey_responses_export(*, survey: Survey):
    """Rows of the CSV export: one per submitted response, one column per question (iterator)."""
    questions = list(survey.questions.order_by("position"))
    responses = (
        Response.objects.filter(survey=survey, submitted_at__isnull=False)
        .select_related("customer")
        .prefetch_related("answers")
        .order_by("pk")
    )
    return questions, responses.iterator(chunk_size=2000)


def customer_responses(*, customer_id: int, limit: int = 10) -> list[Response]:
    return list(
        Response.objects.filter(customer_id=customer_id, submitted_at__isnull=False)
        .select_related("survey")
        .order_by("-submitted_at")[:limit]
    )


def invitation_pending_for(*, customer_id: int) -> QuerySet[Invitation]:
    return Invitation.objects.filter(customer_id=customer_id, answered_at__isnull=True)


def survey_list_with_results() -> list[tuple[Survey, Results]]:
    """Every survey with its all-time results: two queries whatever the number of surveys."""
    surveys = list(survey_list())
    names = ["invitations", "responses", "promoters", "passives", "detractors", "csat_answers", "csat_satisfied"]
    totals = {
        row["survey"]: row
        for row in SurveyDayTotals.objects.filter(survey__in=surveys)
        .values("survey")
        .annotate(**{name + "_sum": Sum(name) for name in names})
    }
    empty = Results(0, 0, 0, 0, 0, 0, 0)
    return [
        (survey, Results(**{name: totals[survey.pk][name + "_sum"] or 0 for name in names}) if survey.pk in totals else empty)
        for survey in surveys
    ]


def survey_recent_responses(*, survey: Survey, limit: int = 20) -> list[Response]:
    return list(
        Response.objects.filter(survey=survey, submitted_at__isnull=False)
        .select_related("customer")
        .order_by("-submitted_at", "-id")[:limit]
    )


def response_answer_rows(*, response: Response) -> list[tuple[Question, Answer | None]]:
    """Each question of the response's survey with its answer (None when skipped or not shown)."""
    answers = {a.question_id: a for a in response.answers.all()}
    return [(q, answers.get(q.pk)) for q in response.survey.questions.order_by("position")]
