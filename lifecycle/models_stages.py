"""Lifecycle stages: each customer's current stage, the append-only log of stage changes, the rules
that move customers between stages and the record of each evaluation run.

Kept apart from the value models (lifecycle/models.py imports this module so Django sees the models)
because stages are written by their own job, hourly, and read by other pages than the value figures.
The rules live in one row (`StageRules`) that admins edit in the admin site; `StageRules.clean()`
refuses parameters under which a rule could never fire or two rules would contradict.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import F, Q, Value
from django.utils.translation import gettext_lazy as _


class Stage(models.TextChoices):
    LEAD = "lead", _("Lead")
    NEW = "new", _("New")
    ACTIVE = "active", _("Active")
    LOYAL = "loyal", _("Loyal")
    AT_RISK = "at_risk", _("At risk")
    CHURNED = "churned", _("Churned")


STAGE_VALUES = [s.value for s in Stage]


class TransitionRule(models.TextChoices):
    """Why a customer moved: the automatic rule that fired, or a staff member's hand."""

    FIRST_EVALUATION = "first_evaluation", _("First evaluation")
    ACTIVATED = "activated", _("Activation moment")
    FIRST_PURCHASE = "first_purchase", _("First paid order")
    REPEAT = "repeat", _("Repeat purchases")
    LOYAL = "loyal", _("Loyalty")
    NOT_LOYAL = "not_loyal", _("No longer loyal")
    IDLE_AT_RISK = "idle_at_risk", _("Idle: at risk")
    IDLE_CHURNED = "idle_churned", _("Idle: churned")
    RETURNED = "returned", _("Returned")
    MANUAL = "manual", _("Moved by staff")


class StageRules(models.Model):
    """The parameters of the stage rules: one row (pk 1), edited in the admin site.

    The defaults follow our domain notes: activation is "3 core actions within 7 days" of sign-up or
    a first paid order; repeat behaviour is "2 paid orders within 30 days"; a customer idle (no paid
    order and no activity) for 60 days is at risk and for 120 days churned."""

    activation_events = models.CharField(
        _("core actions"),
        max_length=300,
        default="login,page_view,cart_add",
        help_text=_("Event names, separated by commas, that count as core actions (the activation moment)."),
    )
    activation_count = models.PositiveSmallIntegerField(
        _("core actions for activation"), default=3, help_text=_("How many core actions make the activation moment.")
    )
    activation_days = models.PositiveSmallIntegerField(
        _("activation window (days)"), default=7, help_text=_("The core actions must happen within this many days of sign-up.")
    )
    repeat_orders = models.PositiveSmallIntegerField(
        _("orders for repeat behaviour"), default=2, help_text=_("Paid orders that make a customer active ...")
    )
    repeat_days = models.PositiveSmallIntegerField(
        _("repeat window (days)"), default=30, help_text=_("... when they fall within this many days of each other.")
    )
    loyal_orders = models.PositiveSmallIntegerField(
        _("paid orders for loyal"), default=5, help_text=_("A customer with at least this many paid orders is loyal. 0 turns it off.")
    )
    loyal_segments = models.CharField(
        _("loyal RFM segments"),
        max_length=200,
        default="champions,loyal",
        blank=True,
        help_text=_("RFM segments (from the value recompute), separated by commas, whose customers are loyal."),
    )
    loyal_feedback = models.PositiveSmallIntegerField(
        _("feedback positivity for loyal"),
        default=90,
        validators=[MaxValueValidator(100)],
        help_text=_(
            "A customer whose survey answers average at least this positivity (0-100; 90 = promoters, NPS 9-10) "
            "is loyal. 0 turns it off."
        ),
    )
    loyal_advocates = models.BooleanField(
        _("advocates are loyal"),
        default=True,
        help_text=_(
            "Customers another app lists as advocates (e.g. the referrals app: a successful referrer) are loyal. "
            "Without such an app this rule never fires."
        ),
    )
    at_risk_days = models.PositiveSmallIntegerField(
        _("at risk after (idle days)"), default=60, help_text=_("No paid order and no activity for this many days: at risk.")
    )
    churn_days = models.PositiveSmallIntegerField(
        _("churned after (idle days)"), default=120, help_text=_("No paid order and no activity for this many days: churned.")
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("stage rules")
        verbose_name_plural = _("stage rules")
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="stagerules_single_row"),
            models.CheckConstraint(condition=Q(activation_count__gte=1), name="stagerules_activation_count_positive"),
            models.CheckConstraint(condition=Q(activation_days__gte=1), name="stagerules_activation_days_positive"),
            models.CheckConstraint(condition=Q(repeat_orders__gte=2), name="stagerules_repeat_orders_min_2"),
            models.CheckConstraint(condition=Q(repeat_days__gte=1), name="stagerules_repeat_days_positive"),
            models.CheckConstraint(condition=Q(at_risk_days__gte=1), name="stagerules_at_risk_days_positive"),
            models.CheckConstraint(condition=Q(churn_days__gt=F("at_risk_days")), name="stagerules_churn_after_at_risk"),
            models.CheckConstraint(condition=Q(loyal_feedback__lte=100), name="stagerules_loyal_feedback_0_100"),
        ]

    def __str__(self) -> str:
        return str(_("Stage rules"))

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)

    @property
    def activation_event_list(self) -> list[str]:
        return [name.strip() for name in self.activation_events.split(",") if name.strip()]

    @property
    def loyal_segment_list(self) -> list[str]:
        return [name.strip() for name in self.loyal_segments.split(",") if name.strip()]

    def clean(self) -> None:
        """Refuse rules that could never fire and rules that contradict each other, with the reason."""
        from lifecycle.models import RfmSegment

        errors: dict[str, list] = {}

        def refuse(field: str, message) -> None:
            errors.setdefault(field, []).append(message)

        if not self.activation_event_list:
            refuse("activation_events", _("Name at least one core action, or the activation rule can never fire."))
        if self.activation_count is not None and self.activation_count < 1:
            refuse("activation_count", _("At least one core action is needed, or every lead is activated at once."))
        if self.activation_days is not None and self.activation_days < 1:
            refuse("activation_days", _("A window of 0 days can never hold a core action."))
        if self.repeat_orders is not None and self.repeat_orders < 2:
            refuse("repeat_orders", _("Repeat behaviour needs at least 2 paid orders; 1 would make every new customer active."))
        if self.repeat_days is not None and self.repeat_days < 1:
            refuse("repeat_days", _("A window of 0 days can never hold two orders on different days."))
        unknown = [s for s in self.loyal_segment_list if s not in RfmSegment.values]
        if unknown:
            refuse("loyal_segments", _("Unknown RFM segments: %(names)s.") % {"names": ", ".join(unknown)})
        if RfmSegment.NO_PURCHASES in self.loyal_segment_list:
            refuse("loyal_segments", _("Customers without purchases cannot be loyal."))
        if self.loyal_orders and self.repeat_orders and 0 < self.loyal_orders <= self.repeat_orders:
            refuse(
                "loyal_orders",
                _("Loyal needs more paid orders than repeat behaviour (%(n)s), or no customer would ever be merely active.")
                % {"n": self.repeat_orders},
            )
        if self.at_risk_days is not None and self.at_risk_days < 1:
            refuse("at_risk_days", _("At risk after 0 idle days would put every customer at risk."))
        if self.at_risk_days and self.churn_days is not None and self.churn_days <= self.at_risk_days:
            refuse(
                "churn_days",
                _("Churned must come after at risk (%(days)s days), or no customer would ever be at risk.")
                % {"days": self.at_risk_days},
            )
        if self.repeat_days and self.churn_days and self.repeat_days > self.churn_days:
            refuse(
                "repeat_days",
                _("A repeat window longer than the churn window (%(days)s days) counts orders of a customer who churned in between.")
                % {"days": self.churn_days},
            )
        if errors:
            raise ValidationError(errors)


class LifecycleRun(models.Model):
    """One evaluation of every customer's stage: when, as of when, and how many moved by which rule."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    as_of = models.DateTimeField(_("as of"), help_text=_("Orders and events up to this moment count."))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    n_customers = models.PositiveIntegerField(_("customers evaluated"), default=0)
    n_transitions = models.PositiveIntegerField(_("transitions"), default=0)
    counts = models.JSONField(_("transitions by rule"), default=dict, blank=True)
    timings = models.JSONField(_("timings (s)"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    job = models.ForeignKey("core.Job", verbose_name=_("job"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("lifecycle evaluation")
        verbose_name_plural = _("lifecycle evaluations")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["running", "succeeded", "failed"]), name="lifecyclerun_status_valid"),
            # One evaluation at a time: two would both see the same changes and log them twice.
            models.UniqueConstraint(Value(True), condition=Q(status="running"), name="lifecyclerun_one_running"),
        ]

    def __str__(self) -> str:
        return f"lifecycle run #{self.pk} as of {self.as_of:%Y-%m-%d %H:%M} ({self.status})"


# The stage, transition, health and health-history rows name their customer and run by plain ids
# (the customer's indexed, the run's not: a run's counts go through the `at` index), not database
# foreign keys. A first evaluation writes a million rows into each table, and PostgreSQL checks a
# foreign key once per row at COMMIT (a SELECT ... FOR KEY SHARE of the customer and of the run,
# which also dirties every customer's page): seven million checks took 51 s of a 150 s run at 1M
# customers (README, Performance). What the database still guarantees, and how:
# - A customer's rows go with the customer, whatever deletes it (the admin, the shell, SQL by hand):
#   triggers on customers_customer (migration 0014, lifecycle_customer_rows_lock/_delete) delete
#   them in the same statement. Django does not cascade them itself (DO_NOTHING): the trigger does,
#   after it has taken the lock below.
# - No row is written for a customer deleted meanwhile: the evaluation (each id range's transaction)
#   and a manual move hold CUSTOMER_ROWS_LOCK shared (lifecycle.services.stages.customer_rows_lock);
#   a DELETE on customers takes it exclusively first, so a deletion waits for the range being
#   written and then removes its rows, and a range started after it no longer sees the customer
#   (the deleting transaction must be READ COMMITTED, Django's default). A manual move that creates
#   a customer's first stage row takes it exclusively: the evaluation inserts new stage rows without
#   ON CONFLICT, so none may appear during a range.
# - The ids are copied from the customers table and the run row by the statements that write them;
#   runs are never deleted (the admin refuses; PROTECT guards deletes through Django).
# What is no longer refused: an INSERT by hand naming a customer or run that does not exist.
# Tests: tests/lifecycle/test_lifecycle_rows.py.
CUSTOMER_ROWS_LOCK = 0x4C43524F5753  # "LCROWS", a pg_advisory_xact_lock key


def run_field():
    return models.ForeignKey(
        LifecycleRun, verbose_name=_("run"), on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        db_index=False, db_constraint=False,
    )


class CustomerStage(models.Model):
    """A customer's current stage. Written only by lifecycle.services.stages (evaluation and manual moves).

    `manual` marks a stage a staff member set: the evaluation leaves it alone until the customer's
    next order or event after `changed_at`. `run` is the evaluation that made the last change (NULL
    for a manual one); the evaluation uses it to log exactly the rows it changed."""

    # No database foreign keys on the four tables the evaluation writes by the million (stages,
    # transitions, health, health history): see CUSTOMER_ROWS below.
    customer = models.OneToOneField(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.DO_NOTHING, primary_key=True, related_name="stage",
        db_constraint=False,
    )
    stage = models.CharField(_("stage"), max_length=16, choices=Stage.choices, default=Stage.LEAD)
    changed_at = models.DateTimeField(_("in this stage since"))
    manual = models.BooleanField(_("set by staff"), default=False)
    run = run_field()

    class Meta:
        verbose_name = _("customer stage")
        verbose_name_plural = _("customer stages")
        indexes = [models.Index(fields=["stage"], name="customerstage_stage_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(stage__in=STAGE_VALUES), name="customerstage_stage_valid"),
            models.CheckConstraint(condition=Q(manual=False) | Q(run__isnull=True), name="customerstage_manual_has_no_run"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.stage}"


class StageTransition(models.Model):
    """One change of a customer's stage (append-only): from, to, when, and why — the rule with the
    figures that fired it, or the staff member with their reason."""

    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.DO_NOTHING, related_name="stage_transitions",
        db_index=False, db_constraint=False,
    )
    from_stage = models.CharField(_("from"), max_length=16, choices=Stage.choices, null=True, blank=True)  # noqa: DJ001
    to_stage = models.CharField(_("to"), max_length=16, choices=Stage.choices)
    at = models.DateTimeField(_("when"))
    rule = models.CharField(_("rule"), max_length=24, choices=TransitionRule.choices)
    figures = models.JSONField(_("figures"), default=dict, blank=True)
    manual = models.BooleanField(_("by staff"), default=False)
    # NULL on every automatic transition: a partial index (Meta) for the few manual ones.
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("changed by"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        db_index=False,
    )
    reason = models.TextField(_("reason"), blank=True)
    run = run_field()

    class Meta:
        verbose_name = _("stage transition")
        verbose_name_plural = _("stage transitions")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-at"], name="transition_customer_at_idx"),
            models.Index(fields=["at"], name="transition_at_idx"),
            models.Index(fields=["changed_by"], condition=Q(changed_by__isnull=False), name="transition_changed_by_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(to_stage__in=STAGE_VALUES), name="transition_to_valid"),
            models.CheckConstraint(condition=Q(from_stage__isnull=True) | Q(from_stage__in=STAGE_VALUES), name="transition_from_valid"),
            models.CheckConstraint(
                condition=Q(from_stage__isnull=True) | ~Q(from_stage=F("to_stage")), name="transition_changes_stage"
            ),
            # A move by hand names who and why; an automatic one names its rule.
            models.CheckConstraint(
                condition=(Q(manual=True) & Q(rule="manual") & ~Q(reason=""))
                | (Q(manual=False) & ~Q(rule="manual")),
                name="transition_manual_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.from_stage or '-'} -> {self.to_stage} ({self.rule})"
