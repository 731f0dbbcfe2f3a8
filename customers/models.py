import datetime as dt
from decimal import Decimal

import pycountry
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.models import TimeStampedModel
from core.money import ORDER_DIGITS, TOTAL_DIGITS, money_field_args
from core.times import shop_day
from customers.email_keys import email_key_expression
from customers.event_labels import event_label

# ISO 3166-1 alpha-2, from pycountry's copy of the ISO data (kept up to date upstream), not typed here.
COUNTRY_CODES = frozenset(country.alpha_2 for country in pycountry.countries)


def validate_country(value: str) -> None:
    """An ISO 3166-1 alpha-2 code in capitals ("DE"); the empty string means unknown."""
    if value and value not in COUNTRY_CODES:
        raise ValidationError(
            _("'%(value)s' is not a two-letter country code of ISO 3166-1 (e.g. DE)."),
            code="invalid_country",
            params={"value": value[:60]},
        )


# Nobody alive was born before this; an earlier year is a typo (1899 for 1989) or a made-up filler date such as 0001-01-01.
EARLIEST_BIRTH_YEAR = 1900


def validate_birth_date(value: dt.date) -> None:
    """A plausible date of birth: not after the shop's today, not before 1900."""
    if value > shop_day():
        raise ValidationError(
            _("%(value)s is in the future."), code="birth_date_future", params={"value": value.isoformat()}
        )
    if value.year < EARLIEST_BIRTH_YEAR:
        raise ValidationError(
            _("%(value)s is before %(year)d: not a plausible date of birth."),
            code="birth_date_too_early",
            params={"value": value.isoformat(), "year": EARLIEST_BIRTH_YEAR},
        )


class AcquisitionChannel(TimeStampedModel):
    """Where customers come from (paid search, referral, ...). Its spend gives CAC."""

    class Status(models.TextChoices):
        PROVEN = "proven", _("Proven")
        TESTING = "testing", _("Testing")
        PAUSED = "paused", _("Paused")

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=120)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.TESTING)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("acquisition channel")
        verbose_name_plural = _("acquisition channels")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["proven", "testing", "paused"]), name="channel_status_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class ChannelSpend(TimeStampedModel):
    """Marketing spend of a channel in one calendar month (month = its first day)."""

    channel = models.ForeignKey(AcquisitionChannel, on_delete=models.CASCADE, related_name="spend")
    month = models.DateField(_("month"))
    amount = models.DecimalField(_("amount"), **money_field_args(TOTAL_DIGITS))
    currency = models.CharField(_("currency"), max_length=3, default=settings.DEFAULT_CURRENCY)

    class Meta:
        verbose_name = _("channel spend")
        verbose_name_plural = _("channel spend")
        ordering = ["channel", "-month"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "month"], name="channelspend_channel_month_uniq"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="channelspend_amount_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.month:%Y-%m}: {self.amount} {self.currency}"


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=50, unique=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Customer(TimeStampedModel):
    # No index of its own: customer_created_id_idx (created_at, id) serves every query by created_at.
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    # NULL, not "", when absent: both are unique when present, and NULLs never collide.
    external_id = models.CharField(  # noqa: DJ001
        _("external id"), max_length=64, null=True, blank=True, help_text=_("The customer's id in the source system.")
    )
    email = models.EmailField(_("email"), max_length=254, null=True, blank=True)  # noqa: DJ001
    # The address as its mailbox (customers.email_keys): computed by the database from `email`, so
    # every write path keeps it; indexed for the referral checks "same person, another address".
    email_key = models.GeneratedField(
        expression=email_key_expression("email"), output_field=models.CharField(max_length=254, null=True),
        db_persist=True, verbose_name=_("normalised e-mail"),
    )
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    country = models.CharField(
        _("country"), max_length=2, blank=True, validators=[validate_country], help_text=_("ISO 3166-1 alpha-2 code.")
    )
    signed_up_at = models.DateTimeField(_("signed up"), null=True, blank=True)
    # Optional: the loyalty programme's birthday bonus reads it (validated by customers.rules).
    birth_date = models.DateField(_("date of birth"), null=True, blank=True, validators=[validate_birth_date])
    channel = models.ForeignKey(
        AcquisitionChannel,
        verbose_name=_("acquisition channel"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="customers",
        db_index=False,  # customer_channel_signup_idx (channel, signed_up_at) leads with it
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("account manager"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_customers",
        db_index=False,  # customer_owner_idx is the index
    )
    email_opt_in = models.BooleanField(_("e-mail opt-in"), default=False)
    email_opt_in_at = models.DateTimeField(_("opted in at"), null=True, blank=True)
    # The language of the e-mail we send the customer (messaging renders its templates in it). A
    # database default too: the imports and the demo seed write customers with raw SQL and COPY.
    language = models.CharField(
        _("language"),
        max_length=10,
        choices=settings.LANGUAGES,
        default=settings.LANGUAGE_CODE,
        db_default=settings.LANGUAGE_CODE,
    )
    tags = models.ManyToManyField(Tag, verbose_name=_("tags"), blank=True, related_name="customers")

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["external_id"], name="customer_external_id_uniq"),
            models.UniqueConstraint(Lower("email"), name="customer_email_ci_uniq"),
            models.CheckConstraint(
                condition=Q(email_opt_in=False) | Q(email_opt_in_at__isnull=False), name="customer_opt_in_has_time"
            ),
        ]
        indexes = [
            # (sort key, id) pairs serve the keyset pages of the customer list without a sort step.
            models.Index(fields=["signed_up_at", "id"], name="customer_signed_up_id_idx"),
            models.Index(fields=["created_at", "id"], name="customer_created_id_idx"),
            models.Index(fields=["channel", "signed_up_at"], name="customer_channel_signup_idx"),
            models.Index(fields=["owner"], name="customer_owner_idx"),
            models.Index(fields=["email_key"], name="customer_email_key_idx", condition=Q(email_key__isnull=False)),
            models.Index(fields=["country"], name="customer_country_idx"),
            models.Index(fields=["last_name", "first_name", "id"], name="customer_name_id_idx"),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email or self.external_id or f"#{self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Order(TimeStampedModel):
    class Status(models.TextChoices):
        PAID = "paid", _("Paid")
        REFUNDED = "refunded", _("Refunded")
        CANCELLED = "cancelled", _("Cancelled")

    # Orders are written in bulk by the import: every index costs there, so only indexes that a
    # query uses. Nothing reads orders by created_at, and order_customer_time_idx leads with customer.
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    external_id = models.CharField(_("external id"), max_length=64)
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="orders", db_index=False
    )
    ordered_at = models.DateTimeField(_("ordered at"))
    amount = models.DecimalField(_("amount"), **money_field_args(ORDER_DIGITS))
    currency = models.CharField(_("currency"), max_length=3, default=settings.DEFAULT_CURRENCY)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PAID)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-ordered_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["external_id"], name="order_external_id_uniq"),
            models.CheckConstraint(condition=Q(amount__gte=Decimal("0")), name="order_amount_non_negative"),
            models.CheckConstraint(condition=Q(status__in=["paid", "refunded", "cancelled"]), name="order_status_valid"),
        ]
        indexes = [
            models.Index(fields=["customer", "ordered_at"], name="order_customer_time_idx"),
            models.Index(fields=["ordered_at"], name="order_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id}: {self.amount} {self.currency} ({self.status})"


class OrderChange(models.Model):
    """The order feed: one row per order created or changed, whichever path wrote it (API, import,
    UI, admin), written in the writer's transaction. Loyalty, referrals and the like read it with
    customers.order_feed.order_changes_consume. Append-only."""

    # Consumers read in id order, up to an id below which every writer has committed (see order_feed).
    id = models.BigAutoField(primary_key=True)
    # No database foreign keys: the import writes a feed row per order, and a per-row key check would
    # cost it more than the row itself; no index either, for the same reason. Orders are only deleted
    # with their customer (admin), and Django's cascade then deletes their feed rows (scanning the feed).
    order = models.ForeignKey(
        Order,
        verbose_name=_("order"),
        on_delete=models.CASCADE,
        related_name="changes",
        db_constraint=False,
        db_index=False,
    )
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="order_changes",
        db_constraint=False,
        db_index=False,
    )
    old_status = models.CharField(_("old status"), max_length=16, null=True, blank=True)  # noqa: DJ001 -- NULL = new order
    new_status = models.CharField(_("new status"), max_length=16)
    old_amount = models.DecimalField(_("old amount"), max_digits=12, decimal_places=2, null=True, blank=True)
    new_amount = models.DecimalField(_("new amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    changed_at = models.DateTimeField(_("changed at"))

    class Meta:
        verbose_name = _("order change")
        verbose_name_plural = _("order changes")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.old_status or '-'} -> {self.new_status}"


class OrderFeedCursor(models.Model):
    """How far one consumer of the order feed has read: the id of the last change it was handed."""

    consumer = models.CharField(_("consumer"), max_length=64, primary_key=True)
    last_id = models.BigIntegerField(_("last change"), default=0)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("order feed cursor")
        verbose_name_plural = _("order feed cursors")

    def __str__(self) -> str:
        return self.consumer


class ActivityEvent(models.Model):
    """Something a customer did (logged in, viewed a page, opened an e-mail).

    An event is identified by (customer, name, occurred_at): sending it twice stores it once."""

    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="events")
    name = models.CharField(_("event"), max_length=100)
    occurred_at = models.DateTimeField(_("occurred at"))
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("activity event")
        verbose_name_plural = _("activity events")
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "name", "occurred_at"], name="event_natural_key_uniq"),
        ]
        indexes = [
            models.Index(fields=["customer", "-occurred_at"], name="event_customer_time_idx"),
            models.Index(fields=["name", "occurred_at"], name="event_name_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} @ {self.occurred_at:%Y-%m-%d %H:%M}"

    @property
    def label(self) -> str:
        """The name as a person reads it (customers.event_labels)."""
        return event_label(self.name)


class Note(TimeStampedModel):
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("author"), on_delete=models.SET_NULL, null=True, related_name="+"
    )
    body = models.TextField(_("note"))

    class Meta:
        verbose_name = _("note")
        verbose_name_plural = _("notes")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "-created_at"], name="note_customer_time_idx")]

    def __str__(self) -> str:
        return self.body[:60]


class Task(TimeStampedModel):
    """A follow-up a staff member must do for a customer (call back, send an offer)."""

    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="tasks")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assignee"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="crm_tasks",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.SET_NULL, null=True, related_name="+"
    )
    title = models.CharField(_("title"), max_length=200)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    done_at = models.DateTimeField(_("done"), null=True, blank=True)

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["done_at", "due_at", "-id"]
        indexes = [models.Index(fields=["assignee", "done_at", "due_at"], name="task_assignee_open_idx")]

    def __str__(self) -> str:
        return self.title

    @property
    def is_overdue(self) -> bool:
        return self.done_at is None and self.due_at is not None and self.due_at < timezone.now()
