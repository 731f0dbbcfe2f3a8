"""What lifecycle stages add to the shared pages (core.registry): the evaluation's job kind, the
Stages link and the customer page's stage panel."""

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.registry import register_customer_panel, register_job_kind, register_nav_item
from core.roles import Role, role_at_least
from lifecycle.forms_stages import StageChangeForm
from lifecycle.models_health import HealthRules
from lifecycle.models_stages import TransitionRule
from lifecycle.selectors_stages import customer_lifecycle_panel as panel_data
from lifecycle.services.stages import JOB_KIND


def customer_lifecycle_panel(*, customer, user) -> dict:
    """Stage, transitions, health with parts and history, churn risk and interventions (six queries);
    the manual stage form for Managers."""
    data = panel_data(customer_id=customer.pk)
    rules = HealthRules.objects.get_or_create(pk=1)[0]
    data["customer"] = customer
    data["rules"] = rules
    data["band"] = rules.band(data["health"].score if data["health"] else None)
    data["may_change"] = role_at_least(user, Role.MANAGER)
    data["form"] = StageChangeForm()
    return data


def register() -> None:
    from lifecycle import emails

    emails.register()
    register_nav_item(
        key="stages", label=_("Lifecycle"), url_name="lifecycle:stages", role=Role.AGENT, order=35,
        section="lifecycle", current_url_names=("stages", "stage_customers"),
    )
    register_nav_item(
        key="tasks", label=_("Tasks"), url_name="lifecycle:tasks", role=Role.AGENT, order=36,
        section="lifecycle", current_url_names=("tasks",),
    )
    register_customer_panel(key="lifecycle", template="lifecycle/stages/_customer_panel.html", load=customer_lifecycle_panel, order=5)
    register_job_kind(
        kind=JOB_KIND,
        label=_("Lifecycle evaluation"),
        result_labels={
            "customers": pgettext_lazy("job result count", "Customers evaluated"),
            "transitions": pgettext_lazy("job result count", "Stage changes"),
            **{rule.value: rule.label for rule in TransitionRule if rule != TransitionRule.MANUAL},
        },
    )
