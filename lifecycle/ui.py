"""What the lifecycle app adds to the shared pages (core.registry): the Value link and the
customer page's value panel."""

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from core.registry import register_customer_panel, register_nav_item
from core.roles import Role
from lifecycle.selectors import customer_value_get


def customer_value_panel(*, customer, user) -> dict:
    """The customer's computed value with its run (one query), or None inside when not computed yet."""
    return {"value": customer_value_get(customer_id=customer.pk), "currency": settings.DEFAULT_CURRENCY}


def register() -> None:
    register_nav_item(
        key="value", label=_("Value"), url_name="lifecycle:dashboard", role=Role.AGENT, order=30, section="lifecycle"
    )
    register_customer_panel(
        key="value", template="lifecycle/_customer_value_panel.html", load=customer_value_panel, order=10
    )
