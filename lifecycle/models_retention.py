"""Retention interventions: what to do for each churn-risk level (configured in the admin site),
and the log of what was done for whom, which keeps the same intervention from reaching the same
customer twice within its window however often the daily run runs."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class RetentionIntervention(models.Model):
    """One intervention per churn-risk level: a care e-mail (1), a follow-up task for the customer's
    owner (2), a time-limited offer by e-mail (3) by default."""

    class Kind(models.TextChoices):
        EMAIL = "email", _("E-mail")
        TASK = "task", _("Follow-up task for the owner")

    level = models.PositiveSmallIntegerField(_("churn risk level"), unique=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    enabled = models.BooleanField(_("enabled"), default=True)
    template = models.CharField(_("e-mail template"), max_length=64, blank=True, help_text=_("Key of an outbox template (e-mail only)."))
    task_title = models.CharField(_("task title"), max_length=200, blank=True)
    task_due_days = models.PositiveSmallIntegerField(_("task due in (days)"), default=3)
    offer_days = models.PositiveSmallIntegerField(_("offer valid for (days)"), default=0, help_text=_("0: no offer in the e-mail."))
    window_days = models.PositiveSmallIntegerField(
        _("not again within (days)"), default=30, help_text=_("A customer gets this intervention at most once in this many days.")
    )

    class Meta:
        verbose_name = _("retention intervention")
        verbose_name_plural = _("retention interventions")
        ordering = ["level"]
        constraints = [
            models.CheckConstraint(condition=Q(level__gte=1) & Q(level__lte=3), name="intervention_level_1_3"),
            models.CheckConstraint(condition=Q(kind__in=["email", "task"]), name="intervention_kind_valid"),
            models.CheckConstraint(condition=Q(kind="task") | ~Q(template=""), name="intervention_email_has_template"),
            models.CheckConstraint(condition=Q(kind="email") | ~Q(task_title=""), name="intervention_task_has_title"),
            models.CheckConstraint(condition=Q(window_days__gte=1), name="intervention_window_positive"),
        ]

    def __str__(self) -> str:
        return f"{_('Level')} {self.level}: {self.get_kind_display()}"


class RetentionAction(models.Model):
    """One intervention given to one customer (append-only). (customer, level, day) is unique, so a
    run repeated on the same day adds nothing; the window check spans days."""

    customer = models.ForeignKey("customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="retention_actions", db_index=False)
    level = models.PositiveSmallIntegerField(_("churn risk level"))
    kind = models.CharField(_("kind"), max_length=8, choices=RetentionIntervention.Kind.choices)
    day = models.DateField(_("day"))
    at = models.DateTimeField(_("when"))
    message_key = models.CharField(_("outbox key"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("retention action")
        verbose_name_plural = _("retention actions")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["customer", "level", "-at"], name="retention_customer_level_idx")]
        constraints = [
            models.UniqueConstraint(fields=["customer", "level", "day"], name="retention_once_a_day"),
            models.CheckConstraint(condition=Q(level__gte=1) & Q(level__lte=3), name="retention_level_1_3"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: level {self.level} on {self.day}"


# The defaults the data migration creates (and tests whose database was flushed put back).
DEFAULT_INTERVENTIONS = [
    {"level": 1, "kind": "email", "template": "retention_care", "window_days": 30},
    {"level": 2, "kind": "task", "task_title": "Follow up: no core action for two weeks", "task_due_days": 3, "window_days": 14},
    {"level": 3, "kind": "email", "template": "retention_offer", "offer_days": 14, "window_days": 60},
]


def interventions_ensure(model=RetentionIntervention) -> None:
    """Create the default intervention of each level that has none (never changes an existing one)."""
    for row in DEFAULT_INTERVENTIONS:
        model.objects.get_or_create(level=row["level"], defaults=row)
