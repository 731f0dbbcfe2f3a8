"""Retention interventions: what to do for each churn-risk level (configured in the admin site),
and the log of what was done for whom, which keeps the same intervention from reaching the same
customer twice within its window however often the daily run runs."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class RetentionIntervention(models.Model):
    """One intervention per churn-risk level: a care e-mail (1), a follow-up task for the customer's
    owner (2), a time-limited offer by e-mail (3) by default."""

    class Kind(models.TextChoices):
        EMAIL = "email", _("E-mail")
        TASK = "task", _("Follow-up task for the owner")

    class Offer(models.TextChoices):
        NONE = "none", _("No offer")
        CODE = "code", _("A discount code of the customer's own that expires")
        POINTS = "points", _("Bonus loyalty points")

    level = models.PositiveSmallIntegerField(_("churn risk level"), unique=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    enabled = models.BooleanField(_("enabled"), default=True)
    template = models.CharField(_("e-mail template"), max_length=64, blank=True, help_text=_("Key of an outbox template (e-mail only)."))
    task_title = models.CharField(_("task title"), max_length=200, blank=True)
    task_due_days = models.PositiveSmallIntegerField(_("task due in (days)"), default=3)
    offer = models.CharField(
        _("offer"),
        max_length=8,
        choices=Offer.choices,
        default=Offer.NONE,
        help_text=_("Each customer gets an offer of their own, shown in the e-mail. Bonus points need the loyalty app."),
    )
    offer_days = models.PositiveSmallIntegerField(_("offer valid for (days)"), default=0, help_text=_("How long the discount code is valid."))
    offer_points = models.PositiveIntegerField(_("bonus points"), default=0, help_text=_("Points credited to each customer's loyalty account."))
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
            models.CheckConstraint(condition=Q(offer__in=["none", "code", "points"]), name="intervention_offer_valid"),
            models.CheckConstraint(condition=~Q(offer="code") | Q(offer_days__gte=1), name="intervention_code_has_days"),
            models.CheckConstraint(condition=~Q(offer="points") | Q(offer_points__gte=1), name="intervention_points_positive"),
            models.CheckConstraint(condition=Q(offer="none") | Q(kind="email"), name="intervention_offer_by_email"),
        ]

    def __str__(self) -> str:
        return f"{_('Level')} {self.level}: {self.get_kind_display()}"

    def clean(self) -> None:
        from lifecycle.health_hooks import points_awarder

        errors = {}
        if self.offer != self.Offer.NONE and self.kind != self.Kind.EMAIL:
            errors["offer"] = _("Only an e-mail can carry an offer.")
        elif self.offer == self.Offer.CODE and not self.offer_days:
            errors["offer_days"] = _("Say for how many days the code is valid.")
        elif self.offer == self.Offer.POINTS and not self.offer_points:
            errors["offer_points"] = _("Say how many points to give.")
        elif self.offer == self.Offer.POINTS and points_awarder() is None:
            errors["offer"] = _("Bonus points need the loyalty app, which is not installed.")
        if errors:
            raise ValidationError(errors)



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


class RetentionOffer(models.Model):
    """The time-limited offer one retention e-mail carries: the customer's own discount code with its
    expiry, or the bonus points credited to their loyalty account. One per action (so a repeated run
    makes none twice); a code is unique across all offers."""

    action = models.OneToOneField(RetentionAction, verbose_name=_("action"), on_delete=models.CASCADE, primary_key=True, related_name="offer")
    customer = models.ForeignKey("customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="+", db_index=False)
    level = models.PositiveSmallIntegerField(_("churn risk level"))
    day = models.DateField(_("day"))
    kind = models.CharField(_("offer"), max_length=8, choices=RetentionIntervention.Offer.choices)
    code = models.CharField(_("discount code"), max_length=40, blank=True)
    points = models.PositiveIntegerField(_("bonus points"), default=0)
    expires_on = models.DateField(_("valid until"), null=True, blank=True)

    class Meta:
        verbose_name = _("retention offer")
        verbose_name_plural = _("retention offers")
        indexes = [models.Index(fields=["customer", "level", "day"], name="retentionoffer_customer_idx")]
        constraints = [
            models.UniqueConstraint(fields=["code"], condition=~Q(code=""), name="retentionoffer_code_unique"),
            models.CheckConstraint(
                condition=(Q(kind="code") & ~Q(code="") & Q(expires_on__isnull=False)) | (Q(kind="points") & Q(points__gte=1)),
                name="retentionoffer_kind_complete",
            ),
        ]

    def __str__(self) -> str:
        return self.code or f"{self.points} points"


# The defaults the data migration creates (and tests whose database was flushed put back).
DEFAULT_INTERVENTIONS = [
    {"level": 1, "kind": "email", "template": "retention_care", "window_days": 30},
    {"level": 2, "kind": "task", "task_title": "Follow up: no core action for two weeks", "task_due_days": 3, "window_days": 14},
    {"level": 3, "kind": "email", "template": "retention_offer", "offer": "code", "offer_days": 14, "window_days": 60},
]


def interventions_ensure(model=RetentionIntervention) -> None:
    """Create the default intervention of each level that has none (never changes an existing one)."""
    fields = {f.name for f in model._meta.get_fields()}  # an early migration's model lacks later fields
    for row in DEFAULT_INTERVENTIONS:
        model.objects.get_or_create(level=row["level"], defaults={k: v for k, v in row.items() if k in fields})
