from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import SAFE_METHODS, BasePermission

from .roles import Role, role_at_least


class StaffRolePermission(BasePermission):
    """Every staff role reads; writes need `view.write_role` (Manager unless the view says less).

    Views that let an Agent write (notes, tasks) still check ownership in their service."""

    message = _("Your role does not allow this action.")

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return role_at_least(request.user, getattr(view, "read_role", Role.AGENT))
        return role_at_least(request.user, getattr(view, "write_role", Role.MANAGER))
