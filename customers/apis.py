"""REST API of the customers app (/api/v1/). Thin views: validate with an Input serializer, call a
service, answer with an Output serializer. Channels and their spend are plain CRUD (ModelViewSet).

Roles (core.permissions.StaffRolePermission): every staff role reads; writes need a Manager, except
notes and tasks, which an Agent may write for the customers they own (the service checks that)."""

from collections.abc import Callable

from django.shortcuts import get_object_or_404
from django.utils.functional import cached_property
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema, extend_schema_view
from rest_framework import generics, mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from core.exceptions import ItemErrors
from core.ids import ID_REGEX
from core.parsers import JSONParser
from core.roles import Role
from customers.filters import ChannelSpendFilter, CustomerFilter, EventFilter, OrderFilter
from customers.models import AcquisitionChannel, ActivityEvent, ChannelSpend, Customer, Note, Order, Task
from customers.serializers import (
    ChannelSerializer,
    ChannelSpendSerializer,
    CustomerInputSerializer,
    CustomerOutputSerializer,
    EventInputSerializer,
    EventOutputSerializer,
    EventUpsertOutputSerializer,
    NoteInputSerializer,
    NoteOutputSerializer,
    OrderInputSerializer,
    OrderOutputSerializer,
    OrderUpsertOutputSerializer,
    TaskInputSerializer,
    TaskOutputSerializer,
)
from customers.services.customers import customer_create, customer_update, note_create, task_complete, task_create
from customers.services.orders import BULK_MAX_ITEMS, UpsertResult, event_bulk_upsert, order_bulk_upsert

WRITE_METHODS = ["get", "post", "put", "patch", "head", "options"]  # no DELETE through the API


class IdLookupMixin:
    lookup_value_regex = ID_REGEX  # anything else is a 404 from the router

# --- Customers ------------------------------------------------------------------------------------


@extend_schema_view(
    create=extend_schema(request=CustomerInputSerializer, responses={201: CustomerOutputSerializer}),
    update=extend_schema(request=CustomerInputSerializer, responses=CustomerOutputSerializer),
    partial_update=extend_schema(request=CustomerInputSerializer, responses=CustomerOutputSerializer),
)
class CustomerViewSet(IdLookupMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Customers. PUT and PATCH both change only the fields sent (no customer field is required)."""

    # stage and health: the lifecycle app's one-to-one rows, in the same query (no N+1).
    queryset = Customer.objects.select_related("channel", "stage", "health").prefetch_related("tags")
    serializer_class = CustomerOutputSerializer
    filterset_class = CustomerFilter
    http_method_names = WRITE_METHODS

    def create(self, request, *args, **kwargs):
        serializer = CustomerInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        customer = customer_create(tag_names=data.pop("tags", None), **data)
        return Response(CustomerOutputSerializer(customer).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, partial=False, **kwargs):
        customer = self.get_object()
        serializer = CustomerInputSerializer(customer, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        customer = customer_update(customer=customer, tag_names=data.pop("tags", None), **data)
        return Response(CustomerOutputSerializer(customer).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)


# --- Orders and events: one object or a list of them ----------------------------------------------


def _single_or_list(name: str, item_serializer) -> PolymorphicProxySerializer:
    return PolymorphicProxySerializer(
        component_name=name,
        serializers=[item_serializer, item_serializer(many=True)],
        resource_type_field_name=None,
        many=False,
    )


def _bulk_upsert(request, *, input_serializer, upsert, output_serializer) -> Response:
    """Validate one item or a list of items completely, then write them all with one service call.

    Errors of a list are keyed by the position of the item ({"3": {"amount": [...]}}); errors of a
    single object are its field errors. 201 when anything was created, else 200."""
    payload = request.data
    many = isinstance(payload, list)
    if not many and not isinstance(payload, dict):
        raise ValidationError({"non_field_errors": [_("Send a JSON object or a list of JSON objects.")]})
    if many and not payload:
        raise ValidationError({"non_field_errors": [_("The list is empty.")]})
    if many and len(payload) > BULK_MAX_ITEMS:
        raise ValidationError(
            {"non_field_errors": [_("At most %(max)d items per request.") % {"max": BULK_MAX_ITEMS}]}
        )
    serializer = input_serializer(data=payload, many=many)
    if not serializer.is_valid():
        errors = serializer.errors
        if many and isinstance(errors, list):
            errors = {str(position): item_errors for position, item_errors in enumerate(errors) if item_errors}
        raise ValidationError(errors)
    items = serializer.validated_data if many else [serializer.validated_data]
    try:
        result = upsert(items=items)
    except ItemErrors as exc:
        if many:
            raise
        raise ValidationError(exc.errors[0]) from exc
    code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    return Response(output_serializer(result).data, status=code)


BULK_DESCRIPTION = format_lazy(
    gettext_lazy(
        "Send one object or a list of up to {max} objects. Every item is validated first; if any is "
        "invalid the answer is 400 with the errors keyed by item position and nothing is saved. Items "
        "are identified by their natural key, so sending them again updates instead of duplicating. "
        "An unknown customer_external_id creates that customer."
    ),
    max=BULK_MAX_ITEMS,
)


def _bulk_create_schema(noun: str, input_serializer, output_serializer):
    return extend_schema_view(
        create=extend_schema(
            request=_single_or_list(f"{noun}InputOrList", input_serializer),
            responses={
                201: OpenApiResponse(output_serializer, description=gettext_lazy("At least one item was new.")),
                200: OpenApiResponse(output_serializer, description=gettext_lazy("All items existed and were updated.")),
            },
            description=BULK_DESCRIPTION,
        )
    )


class _BulkUpsertViewSet(IdLookupMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """List and retrieve; create takes one object or a list and upserts them through `upsert`."""

    parser_classes = [JSONParser]
    input_serializer_class: type
    upsert_output_serializer_class: type
    upsert: Callable[..., UpsertResult]  # a service from customers.services.orders

    def create(self, request, *args, **kwargs):
        return _bulk_upsert(
            request,
            input_serializer=self.input_serializer_class,
            upsert=self.upsert,
            output_serializer=self.upsert_output_serializer_class,
        )


@_bulk_create_schema("Order", OrderInputSerializer, OrderUpsertOutputSerializer)
class OrderViewSet(_BulkUpsertViewSet):
    """Orders, identified by external_id."""

    queryset = Order.objects.select_related("customer")
    serializer_class = OrderOutputSerializer
    filterset_class = OrderFilter
    input_serializer_class = OrderInputSerializer
    upsert_output_serializer_class = OrderUpsertOutputSerializer
    upsert = staticmethod(order_bulk_upsert)


@_bulk_create_schema("Event", EventInputSerializer, EventUpsertOutputSerializer)
class EventViewSet(_BulkUpsertViewSet):
    """Activity events, identified by (customer, name, occurred_at)."""

    queryset = ActivityEvent.objects.select_related("customer")
    serializer_class = EventOutputSerializer
    filterset_class = EventFilter
    input_serializer_class = EventInputSerializer
    upsert_output_serializer_class = EventUpsertOutputSerializer
    upsert = staticmethod(event_bulk_upsert)


# --- Channels: plain CRUD -------------------------------------------------------------------------


class ChannelViewSet(IdLookupMixin, viewsets.ModelViewSet):
    queryset = AcquisitionChannel.objects.all()
    serializer_class = ChannelSerializer
    http_method_names = WRITE_METHODS


class ChannelSpendViewSet(IdLookupMixin, viewsets.ModelViewSet):
    """Marketing spend of a channel per month; `month` is the first day of the month."""

    queryset = ChannelSpend.objects.select_related("channel")
    serializer_class = ChannelSpendSerializer
    filterset_class = ChannelSpendFilter
    http_method_names = WRITE_METHODS


# --- Notes and tasks of a customer ----------------------------------------------------------------


class _CustomerChildApi(mixins.ListModelMixin, generics.GenericAPIView):
    """A customer's notes or tasks. An Agent may write them for the customers they own."""

    write_role = Role.AGENT
    filter_backends = []

    @cached_property
    def customer(self) -> Customer:
        return get_object_or_404(Customer.objects.only("pk", "owner_id"), pk=self.kwargs["customer_id"])

    def get(self, request, *args, **kwargs):
        self.customer  # noqa: B018 -- a missing customer is a 404, not an empty list
        return self.list(request, *args, **kwargs)


class CustomerNoteListApi(_CustomerChildApi):
    serializer_class = NoteOutputSerializer

    def get_queryset(self):
        return Note.objects.filter(customer_id=self.kwargs["customer_id"]).select_related("author")

    @extend_schema(request=NoteInputSerializer, responses={201: NoteOutputSerializer})
    def post(self, request, *args, **kwargs):
        serializer = NoteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        note = note_create(customer=self.customer, author=request.user, **serializer.validated_data)
        return Response(NoteOutputSerializer(note).data, status=status.HTTP_201_CREATED)


class CustomerTaskListApi(_CustomerChildApi):
    serializer_class = TaskOutputSerializer

    def get_queryset(self):
        return Task.objects.filter(customer_id=self.kwargs["customer_id"])

    @extend_schema(request=TaskInputSerializer, responses={201: TaskOutputSerializer})
    def post(self, request, *args, **kwargs):
        serializer = TaskInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task = task_create(customer=self.customer, created_by=request.user, **serializer.validated_data)
        return Response(TaskOutputSerializer(task).data, status=status.HTTP_201_CREATED)


class TaskCompleteApi(APIView):
    write_role = Role.AGENT

    @extend_schema(request=None, responses=TaskOutputSerializer)
    def post(self, request, pk: int):
        task = get_object_or_404(Task.objects.select_related("customer"), pk=pk)
        task = task_complete(task=task, user=request.user)
        return Response(TaskOutputSerializer(task).data)
