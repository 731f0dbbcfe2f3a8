"""Staff roles. Each role is a Django group created by a migration; roles are ranked, so a
Manager may do everything an Agent may, and an Admin everything a Manager may."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    AGENT = "Agent", _("Agent")
    MANAGER = "Manager", _("Manager")
    ADMIN = "Admin", _("Admin")


ROLE_RANK = {Role.AGENT: 1, Role.MANAGER: 2, Role.ADMIN: 3}


def user_role(user) -> Role | None:
    """The highest role of a user, or None for a user without any (e.g. a portal customer).

    Cached on the user object so a request asks the database once."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    cached = getattr(user, "_crm_role", False)
    if cached is not False:
        return cached
    names = set(user.groups.filter(name__in=list(ROLE_RANK)).values_list("name", flat=True))
    role = max((Role(n) for n in names), key=ROLE_RANK.__getitem__, default=None)
    user._crm_role = role
    return role


def role_at_least(user, required: Role) -> bool:
    role = user_role(user)
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[Role(required)]
