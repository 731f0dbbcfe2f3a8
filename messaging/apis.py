"""The suppression list by API (Manager role, reads included: it is a list of people's addresses).

POST adds an address (idempotent: an address already on the list is returned, its reason raised to a
hard bounce or complaint when that is the new reason); PATCH changes the reason or note; DELETE lifts it."""

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from core.ids import ID_REGEX
from core.roles import Role
from messaging.models import Suppression, normalise_address
from messaging.serializers import SuppressionInputSerializer, SuppressionOutputSerializer, SuppressionUpdateSerializer
from messaging.services import suppression_add


class SuppressionFilter(django_filters.FilterSet):
    address = django_filters.CharFilter(method="filter_address")
    reason = django_filters.ChoiceFilter(choices=Suppression.Reason.choices)

    class Meta:
        model = Suppression
        fields = ["address", "reason"]

    def filter_address(self, queryset, name, value):
        return queryset.filter(address=normalise_address(value))


@extend_schema_view(
    create=extend_schema(request=SuppressionInputSerializer, responses={201: SuppressionOutputSerializer}),
    partial_update=extend_schema(request=SuppressionUpdateSerializer, responses=SuppressionOutputSerializer),
)
class SuppressionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Suppression.objects.all()
    serializer_class = SuppressionOutputSerializer
    filterset_class = SuppressionFilter
    read_role = Role.MANAGER
    write_role = Role.MANAGER
    lookup_value_regex = ID_REGEX
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def create(self, request, *args, **kwargs):
        serializer = SuppressionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        suppression = suppression_add(**serializer.validated_data)
        return Response(SuppressionOutputSerializer(suppression).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        suppression = self.get_object()
        serializer = SuppressionUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        for name, value in serializer.validated_data.items():
            setattr(suppression, name, value)
        suppression.save(update_fields=list(serializer.validated_data) or None)
        return Response(SuppressionOutputSerializer(suppression).data)
