"""API authentication: exchange a username and password for a token."""

from django.conf import settings
from django.contrib.auth import authenticate, user_logged_in
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView


class AuthTokenApi(APIView):
    """POST username and password, get the token for `Authorization: Token <token>`.

    Goes through django-axes: after AXES_FAILURE_LIMIT failures the (username, IP) pair is locked
    out for AXES_COOLOFF_HOURS, even with the right password. Throttled by the "auth" rate."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=128, trim_whitespace=False, style={"input_type": "password"})

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(description=gettext_lazy("Missing fields or wrong username / password.")),
            429: OpenApiResponse(
                response=inline_serializer("LockedOut", {"detail": serializers.CharField()}),
                description=gettext_lazy("Too many attempts: throttled or locked out."),
            ),
        },
        auth=[],
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # Axes needs the request (its backend refuses to work without one). It is the DRF request,
        # so axes' lockout flag lands here and not on the HttpRequest its middleware would turn
        # into an HTML page: the API answers in JSON itself.
        user = authenticate(request=request, **serializer.validated_data)
        if getattr(request, "axes_locked_out", False):
            return Response(
                {"detail": _("Too many failed login attempts. This account is locked for now; try again later.")},
                status=getattr(settings, "AXES_HTTP_RESPONSE_CODE", status.HTTP_429_TOO_MANY_REQUESTS),
            )
        if user is None:
            raise ValidationError({"non_field_errors": [_("Unable to log in with the given username and password.")]})
        # Counts as a login: last_login moves and axes forgets the earlier failures.
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        token, _created = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
