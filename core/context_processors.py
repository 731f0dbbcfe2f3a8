from .roles import Role, role_at_least, user_role


def roles(request):
    """Expose the user's role to templates so menus show only what the user may do."""
    user = getattr(request, "user", None)
    if user is None:
        return {}
    return {
        "crm_role": user_role(user),
        "is_agent": role_at_least(user, Role.AGENT),
        "is_manager": role_at_least(user, Role.MANAGER),
        "is_admin": role_at_least(user, Role.ADMIN),
    }
