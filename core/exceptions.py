"""Domain errors and the API's exception handler."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class DomainError(Exception):
    """A rule of the business was broken; the message is safe to show to the user."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


class ItemErrors(DomainError):
    """Some items of a bulk write broke a rule; nothing was written.

    `errors` maps the position of each bad item to its field errors: {3: {"customer": ["..."]}}."""

    def __init__(self, errors: dict[int, dict[str, list[str]]]):
        super().__init__(_("Some items are invalid; nothing was saved."))
        self.errors = errors


def api_exception_handler(exc, context):
    """DRF's handler, plus domain, model-validation, integrity and permission errors as 4xx, never 500s."""
    if isinstance(exc, ItemErrors):
        return Response({str(i): errs for i, errs in sorted(exc.errors.items())}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DomainError):
        key = exc.field or "non_field_errors"
        return Response({key: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, PermissionError):
        # Services raise the built-in PermissionError for ownership rules (an Agent writing for
        # another agent's customer); its message is written for the user.
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, IntegrityError):
        exc = exceptions.ValidationError({"non_field_errors": [_("This conflicts with an existing record.")]})
    return exception_handler(exc, context)
