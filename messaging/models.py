"""The outbox: every e-mail the CRM sends a customer is a Message row, written in the caller's
transaction and delivered by a Celery task (messaging.services.delivery). The templates staff edit,
the suppression list every send checks, and the switch that pauses sending live here too."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

# Template languages, as (language code, field suffix). A template's fields are named per language.
TEMPLATE_LANGUAGES = (("en", "en"), ("zh-hans", "zh_hans"))


def normalise_address(address: str | None) -> str:
    """The form of an address the suppression list compares: trimmed and lower-cased (mailbox
    providers treat the local part case-insensitively in practice, and Customer.email is unique so)."""
    return (address or "").strip().lower()


class Purpose(models.TextChoices):
    MARKETING = "marketing", _("Marketing")
    TRANSACTIONAL = "transactional", _("Transactional")


class MessageTemplate(models.Model):
    """Subject, text and HTML body in each language, with {{ placeholders }}.

    `variables` names what the calling app puts in the context besides the customer; a placeholder
    that is neither is rejected when the template is saved (messaging.rendering)."""

    key = models.SlugField(_("key"), max_length=64, unique=True, help_text=_("The name apps send it by."))
    name = models.CharField(_("name"), max_length=200)
    purpose = models.CharField(_("purpose"), max_length=16, choices=Purpose.choices, default=Purpose.MARKETING)
    variables = models.CharField(
        _("variables"),
        max_length=500,
        blank=True,
        help_text=_("Names the sending app provides, separated by commas (set by the app that ships the template)."),
    )
    subject_en = models.CharField(_("subject (English)"), max_length=255)
    text_en = models.TextField(_("text body (English)"))
    html_en = models.TextField(_("HTML body (English)"), blank=True)
    subject_zh_hans = models.CharField(_("subject (Chinese)"), max_length=255, blank=True)
    text_zh_hans = models.TextField(_("text body (Chinese)"), blank=True)
    html_zh_hans = models.TextField(_("HTML body (Chinese)"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"

    @property
    def variable_names(self) -> list[str]:
        return [name.strip() for name in self.variables.split(",") if name.strip()]

    def parts(self, language: str) -> tuple[str, str, str]:
        """(subject, text, html) in `language`; a language left blank falls back to English."""
        suffix = dict(TEMPLATE_LANGUAGES).get(language, "en")
        subject, text = getattr(self, f"subject_{suffix}"), getattr(self, f"text_{suffix}")
        if not (subject and text):
            suffix = "en"
        return getattr(self, f"subject_{suffix}"), getattr(self, f"text_{suffix}"), getattr(self, f"html_{suffix}")

    def clean(self):
        from messaging.rendering import template_errors

        errors = template_errors(self)
        if errors:
            from django.core.exceptions import ValidationError

            raise ValidationError(errors)


class Message(models.Model):
    """One e-mail to one customer. `key` is the caller's idempotency key: the database holds one
    message per key, so asking twice (a task run twice, two workers, a re-run command) sends once."""

    Purpose = Purpose

    class State(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        SUPPRESSED = "suppressed", _("suppressed")

    key = models.CharField(_("key"), max_length=200)
    purpose = models.CharField(_("purpose"), max_length=16, choices=Purpose.choices)
    template = models.ForeignKey(
        MessageTemplate, verbose_name=_("template"), on_delete=models.PROTECT, related_name="messages"
    )
    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="messages",
        db_index=False,  # message_customer_idx (customer, created_at) leads with it
    )
    to_email = models.CharField(_("recipient"), max_length=254, blank=True)
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES)
    context = models.JSONField(_("context"), default=dict, blank=True)
    state = models.CharField(_("state"), max_length=12, choices=State.choices, default=State.QUEUED)
    suppressed_reason = models.CharField(_("why suppressed"), max_length=32, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"))
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    lease_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed"), null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["key"], name="message_key_uniq"),
            models.CheckConstraint(
                condition=~Q(state="suppressed") | ~Q(suppressed_reason=""), name="message_suppressed_has_reason"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "created_at"], name="message_customer_idx"),
            # The deliverer's claim reads only what is still to do: a small partial index.
            models.Index(
                fields=["next_attempt_at"],
                name="message_due_idx",
                condition=Q(state__in=["queued", "sending"]),
            ),
            models.Index(fields=["created_at"], name="message_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"


class Suppression(models.Model):
    """An address the CRM must not mail. Marketing mail checks every reason; transactional mail
    (login links, receipts) checks hard bounces and complaints only."""

    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", _("unsubscribed")
        HARD_BOUNCE = "hard_bounce", _("hard bounce")
        COMPLAINT = "complaint", _("complaint")
        MANUAL = "manual", _("manual")

    # Reasons that stop transactional mail as well: the address does not exist or its owner
    # reported us as spam; sending anyway harms the sender's reputation for everyone.
    BLOCKS_TRANSACTIONAL = (Reason.HARD_BOUNCE, Reason.COMPLAINT)

    address = models.CharField(_("address"), max_length=254, help_text=_("Stored trimmed and lower-cased."))
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)
    note = models.CharField(_("note"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("suppression")
        verbose_name_plural = _("suppressions")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["address"], name="suppression_address_uniq"),
            # Normalised in the database too, so a raw write cannot dodge the unique address.
            models.CheckConstraint(
                condition=Q(address=models.functions.Lower(models.functions.Trim("address"))),
                name="suppression_address_normalised",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.get_reason_display()})"

    def save(self, *args, **kwargs):
        self.address = normalise_address(self.address)
        super().save(*args, **kwargs)

    def clean(self):
        # Before the unique check of a form, so "A@x.com" meets an existing "a@x.com" as a field error.
        self.address = normalise_address(self.address)


class OutboxState(models.Model):
    """One row (id 1): whether sending is paused, and why. The deliverer pauses it itself when
    permanent failures or unsubscribes pass their thresholds; staff resume it."""

    paused = models.BooleanField(_("paused"), default=False)
    paused_reason = models.CharField(_("why paused"), max_length=500, blank=True)
    paused_at = models.DateTimeField(_("paused at"), null=True, blank=True)
    resumed_at = models.DateTimeField(_("resumed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("outbox state")
        verbose_name_plural = _("outbox state")
        constraints = [models.CheckConstraint(condition=Q(id=1), name="outbox_state_single_row")]

    def __str__(self) -> str:
        return str(_("paused") if self.paused else _("sending"))
