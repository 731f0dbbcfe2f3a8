"""Customer health (0-100, in four parts) and churn risk (0-3), with their history.

Written by the lifecycle evaluation in the same pass as the stages (lifecycle.services.health), from
the same per-customer figures. The parameters are one row (`HealthRules`) edited in the admin site;
the retention interventions per risk level live in lifecycle.models_retention.
"""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from lifecycle.models_stages import run_field


def _split(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


class HealthRules(models.Model):
    """Weights, colour bands and churn-risk thresholds: one row (pk 1).

    Defaults from our domain notes: activity frequency 40%, breadth of core feature use 30%, service
    interactions 20%, feedback positivity 10%; red below 50, yellow below 75, green above. Risk
    level 1: core actions down 30% or more against the customer's previous 30 days; level 2: no core
    action for 14 days; level 3: idle (no order, no event) for 45 days."""

    window_days = models.PositiveSmallIntegerField(_("health window (days)"), default=30, help_text=_("Activity in this many days counts."))
    weight_activity = models.PositiveSmallIntegerField(_("weight: activity frequency"), default=40)
    weight_breadth = models.PositiveSmallIntegerField(_("weight: breadth of use"), default=30)
    weight_service = models.PositiveSmallIntegerField(_("weight: service interactions"), default=20)
    weight_feedback = models.PositiveSmallIntegerField(_("weight: feedback positivity"), default=10)
    activity_target = models.PositiveSmallIntegerField(
        _("actions for full activity marks"), default=12, help_text=_("Events plus paid orders in the window that earn the whole activity weight.")
    )
    breadth_events = models.CharField(
        _("features (events) for breadth"),
        max_length=300,
        default="login,page_view,cart_add,email_open",
        help_text=_("Event names, separated by commas; using all of them in the window earns the whole breadth weight."),
    )
    service_events = models.CharField(
        _("service interaction events"), max_length=200, default="support_ticket", help_text=_("Event names, separated by commas.")
    )
    service_limit = models.PositiveSmallIntegerField(
        _("service interactions for zero marks"), default=3, help_text=_("This many service interactions in the window earn nothing; none earns the whole weight.")
    )
    red_below = models.PositiveSmallIntegerField(_("red below"), default=50)
    yellow_below = models.PositiveSmallIntegerField(_("yellow below"), default=75)
    decline_percent = models.PositiveSmallIntegerField(
        _("level 1: drop in core actions (%)"), default=30, help_text=_("Against the customer's own previous period.")
    )
    decline_period_days = models.PositiveSmallIntegerField(_("level 1: period (days)"), default=30)
    no_core_days = models.PositiveSmallIntegerField(_("level 2: days without a core action"), default=14)
    idle_days = models.PositiveSmallIntegerField(_("level 3: idle days"), default=45)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("health and churn-risk rules")
        verbose_name_plural = _("health and churn-risk rules")
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="healthrules_single_row"),
            models.CheckConstraint(
                condition=Q(weight_activity__lte=100) & Q(weight_breadth__lte=100) & Q(weight_service__lte=100) & Q(weight_feedback__lte=100),
                name="healthrules_weights_range",
            ),
            models.CheckConstraint(condition=Q(red_below__lt=F("yellow_below")) & Q(yellow_below__lte=100), name="healthrules_bands_ordered"),
            models.CheckConstraint(condition=Q(decline_percent__gte=1) & Q(decline_percent__lte=99), name="healthrules_decline_range"),
            models.CheckConstraint(condition=Q(idle_days__gt=F("no_core_days")), name="healthrules_idle_after_no_core"),
            models.CheckConstraint(
                condition=Q(window_days__gte=1) & Q(activity_target__gte=1) & Q(service_limit__gte=1) & Q(decline_period_days__gte=1),
                name="healthrules_positive",
            ),
        ]

    def __str__(self) -> str:
        return str(_("Health and churn-risk rules"))

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)

    @property
    def breadth_event_list(self) -> list[str]:
        return _split(self.breadth_events)

    @property
    def service_event_list(self) -> list[str]:
        return _split(self.service_events)

    def band(self, score: int | None) -> str:
        if score is None:
            return ""
        if score < self.red_below:
            return "red"
        return "yellow" if score < self.yellow_below else "green"

    def clean(self) -> None:
        errors: dict[str, list] = {}
        weights = [self.weight_activity, self.weight_breadth, self.weight_service, self.weight_feedback]
        if None not in weights and sum(weights) != 100:
            errors.setdefault("weight_activity", []).append(
                _("The four weights must add up to 100 (now %(sum)s).") % {"sum": sum(weights)}
            )
        if not self.breadth_event_list:
            errors.setdefault("breadth_events", []).append(_("Name at least one feature event."))
        if self.red_below is not None and self.yellow_below is not None and not self.red_below < self.yellow_below <= 100:
            errors.setdefault("yellow_below", []).append(_("Red must end below yellow, and yellow at 100 at most."))
        if self.decline_percent is not None and not 1 <= self.decline_percent <= 99:
            errors.setdefault("decline_percent", []).append(_("A drop between 1% and 99%: 0 would fire for everyone, 100 never."))
        if self.idle_days is not None and self.no_core_days is not None and self.idle_days <= self.no_core_days:
            errors.setdefault("idle_days", []).append(
                _("Long idle (level 3) must be longer than the level 2 window (%(days)s days).") % {"days": self.no_core_days}
            )
        for name in ("window_days", "activity_target", "service_limit", "decline_period_days", "no_core_days"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                errors.setdefault(name, []).append(_("Must be at least 1."))
        if errors:
            raise ValidationError(errors)


class ChurnRisk(models.IntegerChoices):
    NONE = 0, _("None")
    LOW = 1, _("Level 1: declining")
    MEDIUM = 2, _("Level 2: no core action")
    HIGH = 3, _("Level 3: long idle")


def _points(name: str) -> Q:
    return Q(**{f"{name}__gte": 0}) & Q(**{f"{name}__lte": 100})


class CustomerHealth(models.Model):
    """A customer's current health score with each part's points, and churn risk level."""

    # Plain ids, no database foreign keys (lifecycle.models_stages, CUSTOMER_ROWS_LOCK, says why and
    # what still holds): deleting a customer deletes this row by the trigger of migration 0014.
    customer = models.OneToOneField(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.DO_NOTHING, primary_key=True, related_name="health",
        db_constraint=False,
    )
    score = models.PositiveSmallIntegerField(_("health score"))
    activity_points = models.PositiveSmallIntegerField(_("activity frequency"))
    breadth_points = models.PositiveSmallIntegerField(_("breadth of use"))
    service_points = models.PositiveSmallIntegerField(_("service interactions"))
    feedback_points = models.PositiveSmallIntegerField(_("feedback positivity"))
    churn_risk = models.PositiveSmallIntegerField(_("churn risk"), choices=ChurnRisk.choices, default=ChurnRisk.NONE)
    changed_at = models.DateTimeField(_("changed"))

    class Meta:
        verbose_name = _("customer health")
        verbose_name_plural = _("customer health")
        indexes = [
            # The customer list's health sort and range filter: (score, customer) walks in both
            # directions with the id as tie-breaker (customers.selectors.SORT_KEYS["health"]).
            models.Index(fields=["score", "customer"], name="customerhealth_score_sort_idx"),
            models.Index(fields=["churn_risk"], name="customerhealth_risk_idx"),
        ]
        constraints = [
            *[models.CheckConstraint(condition=_points(n), name=f"customerhealth_{n}_0_100") for n in ("score", "activity_points", "breadth_points", "service_points", "feedback_points")],
            models.CheckConstraint(
                condition=Q(score=F("activity_points") + F("breadth_points") + F("service_points") + F("feedback_points")),
                name="customerhealth_score_is_sum",
            ),
            models.CheckConstraint(condition=Q(churn_risk__gte=0) & Q(churn_risk__lte=3), name="customerhealth_risk_0_3"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.score}"


class HealthHistory(models.Model):
    """One change of a customer's health or churn risk (append-only), so staff see it move."""

    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.DO_NOTHING, related_name="+", db_index=False,
        db_constraint=False,
    )
    at = models.DateTimeField(_("when"))
    score = models.PositiveSmallIntegerField(_("health score"))
    activity_points = models.PositiveSmallIntegerField(_("activity frequency"))
    breadth_points = models.PositiveSmallIntegerField(_("breadth of use"))
    service_points = models.PositiveSmallIntegerField(_("service interactions"))
    feedback_points = models.PositiveSmallIntegerField(_("feedback positivity"))
    churn_risk = models.PositiveSmallIntegerField(_("churn risk"), choices=ChurnRisk.choices)
    run = run_field()

    class Meta:
        verbose_name = _("health history")
        verbose_name_plural = _("health history")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["customer", "-at"], name="healthhistory_customer_at_idx"), models.Index(fields=["at"], name="healthhistory_at_idx")]
        constraints = [
            models.CheckConstraint(condition=_points("score"), name="healthhistory_score_0_100"),
            models.CheckConstraint(condition=Q(churn_risk__gte=0) & Q(churn_risk__lte=3), name="healthhistory_risk_0_3"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} @ {self.at:%Y-%m-%d}: {self.score}"
