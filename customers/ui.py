"""What the customers app adds to the shared pages (core.registry): its navigation links, the
kinds of import job, and the home dashboard's key figures, charts and next tasks."""

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.registry import register_home_section, register_job_kind, register_nav_item
from core.roles import Role
from customers.chart_selectors import dashboard_charts, dashboard_charts_cached
from customers.dashboard import charts_context
from customers.selectors import dashboard_figures, user_next_tasks

# The counters an import reports in Job.result, in the order the job page lists them.
IMPORT_RESULT_LABELS = {
    "rows": pgettext_lazy("job result count", "Rows read"),
    "created": pgettext_lazy("job result count", "Created"),
    "updated": pgettext_lazy("job result count", "Updated"),
    "unchanged": pgettext_lazy("job result count", "Unchanged"),
    "skipped": pgettext_lazy("job result count", "Skipped"),
    "rejected": pgettext_lazy("job result count", "Rejected"),
    "customers_created": pgettext_lazy("job result count", "Customers created"),
    "channels_created": pgettext_lazy("job result count", "Channels created"),
}


def _figures(*, user):
    return {"figures": dashboard_figures(user=user)}


def _next_tasks(*, user):
    return {"next_tasks": user_next_tasks(user=user)}


def _charts(*, user):
    return charts_context(dashboard_charts())


def _charts_cached(*, user):
    charts = dashboard_charts_cached()
    return charts_context(charts) if charts is not None else None


def register() -> None:
    register_nav_item(
        key="customers", label=_("Customers"), url_name="customers:list", role=Role.AGENT, order=20, section="customers"
    )
    register_nav_item(
        key="import",
        label=_("Import"),
        url_name="customers:import",
        role=Role.MANAGER,
        order=25,
        section="customers",
        current_url_names=("import",),
    )
    register_job_kind(kind="import_customers", label=_("Customer import"), result_labels=IMPORT_RESULT_LABELS)
    register_job_kind(kind="import_orders", label=_("Order import"), result_labels=IMPORT_RESULT_LABELS)
    register_job_kind(kind="import_events", label=_("Activity event import"), result_labels=IMPORT_RESULT_LABELS)
    register_home_section(key="figures", template="customers/home/_figures.html", load=_figures, order=10)
    register_home_section(
        key="charts",
        template="customers/home/_charts.html",
        load=_charts,
        cached=_charts_cached,
        order=20,
        title=_("Revenue and new customers per month"),
    )
    register_home_section(key="tasks", template="customers/home/_tasks.html", load=_next_tasks, order=90)
