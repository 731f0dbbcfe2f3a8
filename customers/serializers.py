"""API shapes of the customers app. Input serializers only check types and formats; the rules live
in the services. Output serializers read rows their API view has already joined or prefetched."""

import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from core.ids import MAX_BIGINT
from core.roles import ROLE_RANK
from customers.models import AcquisitionChannel, ActivityEvent, ChannelSpend, Customer, Note, Order, Task
from customers.rules import RuleError, birth_date_clean, country_clean, customer_new_error, order_item_errors
from customers.services.customers import CUSTOMER_EDITABLE_FIELDS


def staff_users():
    """Active users with a staff role: the people a customer or a task can be given to."""
    return (
        get_user_model()
        .objects.filter(Q(is_superuser=True) | Q(groups__name__in=list(ROLE_RANK)), is_active=True)
        .distinct()
    )


class IdRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key; one too large for a BIGINT is simply unknown (SQLite would overflow on it)."""

    def to_internal_value(self, data):
        try:
            out_of_range = not 0 < int(data) <= MAX_BIGINT
        except (TypeError, ValueError):
            out_of_range = False  # not a number at all: the parent says so
        if out_of_range:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)


class CodeRelatedField(serializers.SlugRelatedField):
    """A row named by a text column (a channel by its code). A value PostgreSQL cannot hold in text
    (a NUL character) names no row: refused as unknown, never sent to the database."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value="\\x00")
        return super().to_internal_value(data)


# --- Customers ------------------------------------------------------------------------------------


class CustomerInputSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, allow_null=True, allow_blank=True)
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    country = serializers.CharField(max_length=2, required=False, allow_blank=True)
    signed_up_at = serializers.DateTimeField(required=False, allow_null=True)
    birth_date = serializers.DateField(required=False, allow_null=True, help_text=_("Date of birth (YYYY-MM-DD)."))
    channel = CodeRelatedField(slug_field="code", queryset=AcquisitionChannel.objects.all(), required=False, allow_null=True)
    owner = IdRelatedField(queryset=staff_users(), required=False, allow_null=True)
    email_opt_in = serializers.BooleanField(required=False)
    language = serializers.ChoiceField(choices=settings.LANGUAGES, required=False, help_text=_("Language of e-mail."))
    tags = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, max_length=100, help_text=_("Tag names.")
    )

    def validate_country(self, value):
        try:
            return country_clean(value) if value.strip() else ""
        except RuleError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_birth_date(self, value):
        try:
            return None if value is None else birth_date_clean(value)
        except RuleError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate(self, attrs):
        error = customer_new_error(attrs) if self.instance is None else None
        if error:
            raise serializers.ValidationError(error)
        return attrs


def _lifecycle_row(customer, relation: str):
    """The customer's row of a lifecycle one-to-one (stage, health), or None before the first
    evaluation. The viewsets select_related both, so this costs no query."""
    try:
        return getattr(customer, relation)
    except ObjectDoesNotExist:
        return None


class CustomerOutputSerializer(serializers.ModelSerializer):
    channel = serializers.SlugRelatedField(slug_field="code", read_only=True)
    tags = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    stage = serializers.SerializerMethodField(help_text=_("Lifecycle stage; null before the first evaluation."))
    health_score = serializers.SerializerMethodField(help_text=_("0-100; null before the first evaluation."))
    churn_risk = serializers.SerializerMethodField(help_text=_("0-3; null before the first evaluation."))

    class Meta:
        model = Customer
        fields = [
            "id", *CUSTOMER_EDITABLE_FIELDS, "email_opt_in_at", "tags", "stage", "health_score", "churn_risk",
            "created_at", "updated_at",
        ]
        read_only_fields = fields

    def get_stage(self, customer) -> str | None:
        row = _lifecycle_row(customer, "stage")
        return row.stage if row else None

    def get_health_score(self, customer) -> int | None:
        row = _lifecycle_row(customer, "health")
        return row.score if row else None

    def get_churn_risk(self, customer) -> int | None:
        row = _lifecycle_row(customer, "health")
        return row.churn_risk if row else None


# --- Orders and events ----------------------------------------------------------------------------


class CustomerReferenceInputSerializer(serializers.Serializer):
    """An item names its customer by id or by external id; an unknown external id creates one."""

    customer = serializers.IntegerField(min_value=1, max_value=MAX_BIGINT, required=False, help_text=_("Customer id."))
    customer_external_id = serializers.CharField(
        max_length=64,
        required=False,
        help_text=_("The customer's id in the source system; an unknown one creates the customer."),
    )

    def validate(self, attrs):
        given = [name for name in ("customer", "customer_external_id") if attrs.get(name) not in (None, "")]
        if len(given) != 1:
            raise serializers.ValidationError(_("Give exactly one of customer and customer_external_id."))
        return attrs


class OrderInputSerializer(CustomerReferenceInputSerializer):
    """Types only: the rules of an order (amount, currency, status) are customers.rules', applied by
    the service for the API, the staff form and (per value) the import alike."""

    external_id = serializers.CharField(max_length=64)
    ordered_at = serializers.DateTimeField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField(max_length=100, default=settings.DEFAULT_CURRENCY)
    status = serializers.CharField(
        max_length=100, default=Order.Status.PAID, help_text=_("One of: paid, refunded, cancelled.")
    )

    def validate(self, attrs):
        # Here too, so a batch reports every item's broken rules next to other items' type errors.
        attrs = super().validate(attrs)
        errors = order_item_errors(attrs)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class OrderOutputSerializer(serializers.ModelSerializer):
    customer_external_id = serializers.CharField(source="customer.external_id", read_only=True, allow_null=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "external_id",
            "customer",
            "customer_external_id",
            "ordered_at",
            "amount",
            "currency",
            "status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class EventInputSerializer(CustomerReferenceInputSerializer):
    name = serializers.CharField(max_length=100)
    occurred_at = serializers.DateTimeField()
    properties = serializers.DictField(required=False, default=dict, help_text=_("A JSON object."))

    def validate_properties(self, value):
        # What PostgreSQL's jsonb refuses: NaN / Infinity (e.g. 1e400 decodes to inf) and NUL characters.
        try:
            text = json.dumps(value, allow_nan=False)
        except ValueError as exc:
            raise serializers.ValidationError(_("Numbers must be finite.")) from exc
        if "\\u0000" in text and _has_nul(value):
            raise serializers.ValidationError(_("Null characters are not allowed."))
        return value


class EventOutputSerializer(serializers.ModelSerializer):
    customer_external_id = serializers.CharField(source="customer.external_id", read_only=True, allow_null=True)
    properties = serializers.DictField(read_only=True)

    class Meta:
        model = ActivityEvent
        fields = ["id", "customer", "customer_external_id", "name", "occurred_at", "properties", "created_at"]
        read_only_fields = fields


class UpsertResultOutputSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text=_("Items that were new."))
    updated = serializers.IntegerField(help_text=_("Items that existed and were updated."))


class OrderUpsertOutputSerializer(UpsertResultOutputSerializer):
    results = OrderOutputSerializer(many=True, source="objects")


class EventUpsertOutputSerializer(UpsertResultOutputSerializer):
    results = EventOutputSerializer(many=True, source="objects")


# --- Channels -------------------------------------------------------------------------------------


class ChannelSerializer(serializers.ModelSerializer):
    class Meta:
        model = AcquisitionChannel
        fields = ["id", "code", "name", "status", "is_active", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class ChannelSpendSerializer(serializers.ModelSerializer):
    channel = CodeRelatedField(slug_field="code", queryset=AcquisitionChannel.objects.all())
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)
    currency = serializers.RegexField(
        r"^[A-Z]{3}$",
        default=settings.DEFAULT_CURRENCY,
        error_messages={"invalid": _("Use a three-letter ISO 4217 currency code in capitals.")},
    )

    class Meta:
        model = ChannelSpend
        fields = ["id", "channel", "month", "amount", "currency", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_month(self, value):
        if value.day != 1:
            raise serializers.ValidationError(_("Give the month as its first day, e.g. 2025-03-01."))
        return value


# --- Notes and tasks ------------------------------------------------------------------------------


class NoteInputSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=10_000)


class NoteOutputSerializer(serializers.ModelSerializer):
    author_username = serializers.CharField(source="author.username", read_only=True, allow_null=True)

    class Meta:
        model = Note
        fields = ["id", "customer", "author", "author_username", "body", "created_at", "updated_at"]
        read_only_fields = fields


class TaskInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    assignee = IdRelatedField(
        queryset=staff_users(), required=False, allow_null=True, help_text=_("Defaults to the creator.")
    )
    due_at = serializers.DateTimeField(required=False, allow_null=True)


class TaskOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Task
        fields = ["id", "customer", "title", "assignee", "created_by", "due_at", "done_at", "created_at", "updated_at"]
        read_only_fields = fields
