from django.shortcuts import render

from core.auth import role_required
from core.roles import Role
from customers.selectors import dashboard_figures


@role_required(Role.AGENT)
def home(request):
    """The dashboard: the shop's key figures and the signed-in user's open tasks."""
    return render(request, "core/home.html", {"figures": dashboard_figures(user=request.user)})
