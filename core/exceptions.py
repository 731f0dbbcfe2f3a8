"""Domain errors and the API's exception handler."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
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


def api_exception_handler(exc, context):
    """DRF's handler, plus domain, model-validation and integrity errors as 400s, never 500s."""
    if isinstance(exc, DomainError):
        key = exc.field or "non_field_errors"
        return Response({key: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, IntegrityError):
        exc = exceptions.ValidationError({"non_field_errors": ["This conflicts with an existing record."]})
    return exception_handler(exc, context)
