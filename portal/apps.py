from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def drop_portal_identity(sender, request, user, **kwargs):
    """A staff login in a browser that had a portal session ends the customer's session: a session
    is never both (django's login keeps the session's other keys)."""
    from portal.access import SESSION_KEY

    if request is not None and hasattr(request, "session"):
        request.session.pop(SESSION_KEY, None)
        request._portal_customer = None


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = _("Customer portal")

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from portal import ui

        user_logged_in.connect(drop_portal_identity, dispatch_uid="portal.drop_portal_identity")
        ui.register()
