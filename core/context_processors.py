from django.urls import NoReverseMatch, reverse

from .registry import nav_items
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


def navigation(request):
    """The main navigation: the links the apps registered (core.registry) that the user's role may
    follow, in order, and which of them is the current page (the link naming the page's URL wins
    over the link of its whole section)."""
    user = getattr(request, "user", None)
    if user is None or user_role(user) is None:
        return {"nav_links": []}
    match = getattr(request, "resolver_match", None)
    namespace, url_name = (match.namespace, match.url_name) if match else ("", "")
    links = []
    for item in nav_items():
        if not role_at_least(user, item.role):
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        if namespace == item.section and url_name in item.current_url_names:
            rank = 2
        elif namespace == item.section and not item.current_url_names and item.section:
            rank = 1
        elif not item.section and not namespace and url_name in item.current_url_names:
            rank = 2
        else:
            rank = 0
        links.append({"key": item.key, "label": item.label, "url": url, "rank": rank})
    best = max((link["rank"] for link in links), default=0)
    for link in links:
        link["current"] = best > 0 and link["rank"] == best
    return {"nav_links": links}
