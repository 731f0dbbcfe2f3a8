"""The portal's own navigation links (portal.registry); other apps add theirs the same way."""

from django.utils.translation import gettext_lazy as _

from portal.registry import register_portal_page


def register() -> None:
    register_portal_page(key="home", label=_("Overview"), url_name="portal:home", order=10)
    register_portal_page(key="messages", label=_("Your e-mails"), url_name="portal:message_list", order=80)
    register_portal_page(key="preferences", label=_("E-mail preferences"), url_name="portal:preferences", order=90)
