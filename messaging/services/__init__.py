"""The outbox's public services: what other apps call to send e-mail (see README, "Outbox")."""

from messaging.services.delivery import messages_deliver_due
from messaging.services.sending import message_send, message_template_ensure, messages_queue_bulk
from messaging.services.suppression import (
    message_for_token,
    outbox_resume,
    resubscribe_by_token,
    suppression_add,
    suppression_remove,
    unsubscribe_by_token,
)

__all__ = [
    "message_for_token",
    "message_send",
    "message_template_ensure",
    "messages_deliver_due",
    "messages_queue_bulk",
    "outbox_resume",
    "resubscribe_by_token",
    "suppression_add",
    "suppression_remove",
    "unsubscribe_by_token",
]
