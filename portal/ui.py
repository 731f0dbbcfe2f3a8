"""The portal's own navigation links (portal.registry; other apps add theirs the same way) and the
e-mail template it ships to the outbox."""

from django.utils.translation import gettext_lazy as _

from portal import emails
from portal.registry import register_portal_page


def register() -> None:
    emails.register()
    register_portal_page(key="home", label=_("Overview"), url_name="portal:home", order=10)
    register_portal_page(
        key="messages", label=_("Your e-mails"), url_name="portal:message_list", order=80,
        current=("portal:message_detail",),
    )
    register_portal_page(key="preferences", label=_("E-mail preferences"), url_name="portal:preferences", order=90)
