from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from core.auth import role_required
from core.dashboard import charts_context
from core.roles import Role
from customers.chart_selectors import dashboard_charts, dashboard_charts_cached
from customers.selectors import dashboard_figures


@role_required(Role.AGENT)
def home(request):
    """The dashboard: the shop's key figures, the signed-in user's open tasks, and the revenue and
    signups charts of the last 12 months.

    The charts read a year of orders (seconds at millions of orders) and are cached. When the cache
    has them they are in the page; otherwise the page comes at once with loading cards whose htmx
    request (?charts=1) fetches them, and only that fragment waits for the queries."""
    if request.htmx and request.GET.get("charts"):
        response = render(request, "core/home.html#dashboard-charts", charts_context(dashboard_charts()))
    else:
        charts = dashboard_charts_cached()
        context = {"figures": dashboard_figures(user=request.user), "charts_pending": charts is None}
        response = render(request, "core/home.html", {**context, **(charts_context(charts) if charts else {})})
    patch_vary_headers(response, ("HX-Request",))
    return response
