"""What the feedback app adds to the shared pages (core.registry): the Surveys link and the
customer page's panel of survey answers."""

from django.utils.translation import gettext_lazy as _

from core.registry import register_customer_panel, register_nav_item
from core.roles import Role
from feedback import emails
from feedback.selectors import customer_responses, invitation_pending_for


def customer_feedback_panel(*, customer, user) -> dict:
    """The customer's latest responses and unanswered invitations: two queries."""
    return {
        "responses": customer_responses(customer_id=customer.pk),
        "pending": invitation_pending_for(customer_id=customer.pk).count(),
    }


def register() -> None:
    emails.register()
    register_nav_item(key="surveys", label=_("Surveys"), url_name="feedback:list", role=Role.AGENT, order=60, section="feedback")
    register_customer_panel(key="feedback", template="feedback/_customer_panel.html", load=customer_feedback_panel, order=50)
