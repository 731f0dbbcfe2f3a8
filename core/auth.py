"""Role checks for the staff web UI.

Every staff page is wrapped in `role_required` (function views) or `RoleRequiredMixin` (class
views): an anonymous visitor is sent to the login page, a signed-in user without the role gets 403.
Pages meant for people without a staff login (e.g. a customer's survey link) say so explicitly with
`public_view`, which the URL-walking test in tests/core/test_views.py honours.
"""

from functools import wraps

from django.contrib.auth.mixins import AccessMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _
from django_htmx.http import HttpResponseClientRedirect

from .roles import Role, role_at_least

ROLE_DENIED_MESSAGE = _("Your role does not allow this action.")


def _login_redirect(request):
    response = redirect_to_login(request.get_full_path())
    if getattr(request, "htmx", False):
        # An htmx request would swap the login page into a fragment; reload the whole page instead.
        return HttpResponseClientRedirect(response["Location"])
    return response


def role_required(role: Role = Role.AGENT):
    """Decorator: the signed-in user must hold `role` or a higher one."""

    def decorator(view_func):
        @wraps(view_func)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return _login_redirect(request)
            if not role_at_least(request.user, role):
                raise PermissionDenied(ROLE_DENIED_MESSAGE)
            return view_func(request, *args, **kwargs)

        wrapper.crm_required_role = Role(role)
        return wrapper

    return decorator


class RoleRequiredMixin(AccessMixin):
    """Class-based twin of `role_required`; set `required_role` on the view."""

    required_role: Role = Role.AGENT

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return _login_redirect(request)
        if not role_at_least(request.user, self.required_role):
            raise PermissionDenied(ROLE_DENIED_MESSAGE)
        return super().dispatch(request, *args, **kwargs)


def public_view(view_func):
    """Mark a view as deliberately reachable without a staff login."""
    view_func.crm_public = True
    return view_func
