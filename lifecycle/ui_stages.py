"""What lifecycle stages add to the shared pages (core.registry): the evaluation's job kind, the
Stages link and the customer page's stage panel."""

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.registry import register_job_kind
from lifecycle.models_stages import TransitionRule
from lifecycle.services.stages import JOB_KIND


def register() -> None:
    from lifecycle import emails

    emails.register()
    register_job_kind(
        kind=JOB_KIND,
        label=_("Lifecycle evaluation"),
        result_labels={
            "customers": pgettext_lazy("job result count", "Customers evaluated"),
            "transitions": pgettext_lazy("job result count", "Stage changes"),
            **{rule.value: rule.label for rule in TransitionRule if rule != TransitionRule.MANUAL},
        },
    )
