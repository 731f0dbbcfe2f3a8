"""What the messaging app adds to the shared pages (core.registry): the Outbox link, the customer
page's send-log panel, and a home-page banner while marketing mail is paused."""

from django.utils.translation import gettext_lazy as _

from core.registry import register_customer_panel, register_home_section, register_nav_item
from core.roles import Role
from messaging.selectors import customer_message_list, outbox_state_get


def customer_messages_panel(*, customer, user) -> dict:
    """The customer's last 20 messages (one query)."""
    return {"messages": customer_message_list(customer_id=customer.pk)}


def outbox_paused_section(*, user) -> dict | None:
    """A banner on the home page while marketing mail is paused (one query); nothing otherwise."""
    state = outbox_state_get()
    return {"state": state} if state.paused else None


def register() -> None:
    register_nav_item(
        key="outbox", label=_("Outbox"), url_name="messaging:outbox", role=Role.AGENT, order=60, section="messaging"
    )
    register_customer_panel(
        key="messages", template="messaging/_customer_messages_panel.html", load=customer_messages_panel, order=40
    )
    register_home_section(
        key="outbox_paused", template="messaging/_paused_banner.html", load=outbox_paused_section, order=1
    )
