"""A survey's charts as static/js/charts.js draws them: NPS by month, promoters / passives /
detractors by month, and each scored or choice question's answers (detractor scores flagged)."""

from django.utils.formats import date_format
from django.utils.translation import gettext as _

from feedback import selectors
from feedback.models import Question, Survey


def survey_charts(*, survey: Survey) -> dict:
    trend = selectors.survey_trend_by_month(survey=survey)
    labels = [date_format(month, "YEAR_MONTH_FORMAT") for month, _results in trend]
    charts = {}
    if any(results.scored for _month, results in trend):
        charts["nps_trend"] = {
            "type": "bar",
            "labels": labels,
            "datasets": [
                {
                    "label": _("NPS"),
                    "data": [round(r.nps, 1) if r.nps is not None else 0 for _m, r in trend],
                    "flags": [r.nps is not None and r.nps < 0 for _m, r in trend],
                }
            ],
            "x_title": _("Month"),
            "y_title": _("NPS"),
        }
        charts["categories"] = {
            "type": "bar",
            "stacked": True,
            "legend": True,
            "labels": labels,
            "datasets": [
                {"label": _("Promoters"), "data": [r.promoters for _m, r in trend], "color": "series-1"},
                {"label": _("Passives"), "data": [r.passives for _m, r in trend], "color": "series-7"},
                {"label": _("Detractors"), "data": [r.detractors for _m, r in trend], "color": "flag"},
            ],
            "x_title": _("Month"),
            "y_title": _("Responses"),
        }
    return charts


def question_chart(stats: selectors.QuestionStats) -> dict | None:
    if not stats.distribution:
        return None
    question = stats.question
    flags = [question.type == Question.Type.NPS and int(label) <= 6 for label, _n in stats.distribution]
    return {
        "type": "bar",
        "horizontal": question.type in (Question.Type.SINGLE, Question.Type.MULTIPLE),
        "labels": [label for label, _n in stats.distribution],
        "datasets": [{"label": _("Answers"), "data": [n for _label, n in stats.distribution], "flags": flags}],
        "compact": True,
    }
