"""Template helpers of the survey results page."""

from django import template

from feedback.charts import question_chart as chart_spec

register = template.Library()


@register.simple_tag
def question_chart(stats):
    """The chart spec of a question's answers, with the id its json_script element takes."""
    spec = chart_spec(stats)
    if spec is not None:
        spec["element_id"] = f"chart-q{stats.question.pk}"
    return spec
