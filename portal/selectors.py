"""What the portal reads about the logged-in customer."""

from __future__ import annotations

from django.db.models import QuerySet

from customers.models import Customer

# The portal lists the most recent e-mails only; older ones stay in the staff send log.
MESSAGE_LIST_LIMIT = 50


def sent_messages() -> QuerySet:
    """E-mails that were actually sent, newest first, with their templates (for the subject). Views
    narrow it to the logged-in customer with portal.access.customer_object_or_404."""
    from messaging.models import Message

    return Message.objects.filter(state=Message.State.SENT).select_related("template").order_by("-sent_at", "-id")


def customer_messages(*, customer: Customer) -> QuerySet:
    return sent_messages().filter(customer=customer)


def message_rendered(*, message, customer: Customer) -> dict:
    """Subject and text of a sent message as the customer received them (rendered again from its
    template and stored context)."""
    from messaging.rendering import customer_context, render_parts

    subject, text, _html = render_parts(
        message.template, language=message.language, customer=customer_context(customer), context=message.context
    )
    return {"message": message, "subject": subject, "text": text}
