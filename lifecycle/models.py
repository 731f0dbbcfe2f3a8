"""Customer value: one row per recompute run, one row per customer with the latest figures.

Money is Decimal (14 digits, 2 places); model outputs that are not money (probabilities, rates,
counts in time units) are floats. The definitions behind every column are in
lifecycle/services/clv_runs.py (module docstring) and in the README section "Customer value".
"""

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from core.money import money_field_args

MONEY = money_field_args()


class ClvRun(models.Model):
    """One recompute of every customer's value: its inputs, the fitted parameters and the outcome."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        NOT_CONVERGED = "not_converged", _("Model not fitted")
        FAILED = "failed", _("Failed")

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("Schedule")
        COMMAND = "command", _("Command line")
        USER = "user", _("Staff member")

    class TimeUnit(models.TextChoices):
        WEEK = "week", _("weeks")
        DAY = "day", _("days")

    as_of = models.DateField(_("as of"), help_text=_("Paid orders up to the end of this day count."))
    time_unit = models.CharField(_("time unit"), max_length=8, choices=TimeUnit.choices, default=TimeUnit.WEEK)
    horizon_months = models.PositiveSmallIntegerField(_("horizon (months)"), default=12)
    annual_discount_rate = models.DecimalField(_("annual discount rate"), max_digits=5, decimal_places=4, default=Decimal("0.1000"))
    churn_days = models.PositiveIntegerField(
        _("churn after (days)"), default=365, help_text=_("A customer without a paid order for this long counts as churned.")
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    n_customers = models.PositiveIntegerField(_("customers"), default=0)
    n_purchasers = models.PositiveIntegerField(_("customers with paid orders"), default=0)
    n_triples = models.PositiveIntegerField(_("distinct (frequency, recency, T)"), default=0)

    bgnbd_r = models.FloatField("BG/NBD r", null=True, blank=True)
    bgnbd_alpha = models.FloatField("BG/NBD alpha", null=True, blank=True)
    bgnbd_a = models.FloatField("BG/NBD a", null=True, blank=True)
    bgnbd_b = models.FloatField("BG/NBD b", null=True, blank=True)
    bgnbd_log_likelihood = models.FloatField(_("BG/NBD log-likelihood"), null=True, blank=True)
    bgnbd_converged = models.BooleanField(_("BG/NBD converged"), null=True, blank=True)
    gg_p = models.FloatField("Gamma-Gamma p", null=True, blank=True)
    gg_q = models.FloatField("Gamma-Gamma q", null=True, blank=True)
    gg_v = models.FloatField("Gamma-Gamma v", null=True, blank=True)
    gg_log_likelihood = models.FloatField(_("Gamma-Gamma log-likelihood"), null=True, blank=True)
    gg_converged = models.BooleanField(_("Gamma-Gamma converged"), null=True, blank=True)
    # What every chunk worker needs besides the parameters, so all chunks score alike.
    lifespans = models.JSONField(_("lifespan by channel (years)"), default=dict, blank=True)
    rfm_cutpoints = models.JSONField(_("RFM quintile cut points"), default=dict, blank=True)
    timings = models.JSONField(_("timings (s)"), default=dict, blank=True)
    message = models.TextField(_("message"), blank=True)
    error = models.TextField(_("error"), blank=True)

    job = models.ForeignKey("core.Job", verbose_name=_("job"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Who or what started the run: the nightly schedule, `manage.py recompute_clv` (make run) or a
    # staff member (created_by). Without it a command-line run read "Started by: schedule".
    trigger = models.CharField(_("started by"), max_length=16, choices=Trigger.choices, default=Trigger.SCHEDULE)

    class Meta:
        verbose_name = _("CLV run")
        verbose_name_plural = _("CLV runs")
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "-finished_at"], name="clvrun_status_finished_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "not_converged", "failed"]), name="clvrun_status_valid"
            ),
            models.CheckConstraint(condition=Q(time_unit__in=["week", "day"]), name="clvrun_time_unit_valid"),
            models.CheckConstraint(condition=Q(trigger__in=["schedule", "command", "user"]), name="clvrun_trigger_valid"),
            models.CheckConstraint(
                condition=Q(annual_discount_rate__gte=0) & Q(annual_discount_rate__lt=1), name="clvrun_discount_range"
            ),
            models.CheckConstraint(condition=Q(horizon_months__gte=1), name="clvrun_horizon_positive"),
            # At most one run queued or running: two clicks at once cannot start two recomputes.
            models.UniqueConstraint(Value(True), condition=Q(status__in=["queued", "running"]), name="clvrun_one_active"),
        ]

    def __str__(self) -> str:
        return f"CLV run #{self.pk} as of {self.as_of} ({self.status})"

    @property
    def time_unit_days(self) -> float:
        return 7.0 if self.time_unit == self.TimeUnit.WEEK else 1.0

    @property
    def converged(self) -> bool:
        return bool(self.bgnbd_converged and self.gg_converged)

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.NOT_CONVERGED, self.Status.FAILED)


class ClvRunChunk(models.Model):
    """A customer-id range [lo, hi) of a run that one worker scores and writes back.

    Marking a chunk done is idempotent (a task delivered twice finds it done), and the worker that
    marks the last one finishes the run."""

    run = models.ForeignKey(ClvRun, on_delete=models.CASCADE, related_name="chunks")
    lo = models.BigIntegerField(_("first customer id"))
    hi = models.BigIntegerField(_("end customer id (exclusive)"))
    n_customers = models.PositiveIntegerField(_("customers"), default=0)
    done_at = models.DateTimeField(_("done"), null=True, blank=True)

    class Meta:
        verbose_name = _("CLV run chunk")
        verbose_name_plural = _("CLV run chunks")
        ordering = ["run", "lo"]
        constraints = [
            models.UniqueConstraint(fields=["run", "lo"], name="clvrunchunk_run_lo_uniq"),
            models.CheckConstraint(condition=Q(hi__gt=models.F("lo")), name="clvrunchunk_range_valid"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} [{self.lo}, {self.hi})"


class RfmSegment(models.TextChoices):
    CHAMPIONS = "champions", _("Champions")
    LOYAL = "loyal", _("Loyal")
    POTENTIAL_LOYALISTS = "potential_loyalists", _("Potential loyalists")
    NEW = "new", _("New customers")
    PROMISING = "promising", _("Promising")
    NEED_ATTENTION = "need_attention", _("Need attention")
    ABOUT_TO_SLEEP = "about_to_sleep", _("About to sleep")
    AT_RISK = "at_risk", _("At risk")
    CANNOT_LOSE = "cannot_lose", _("Cannot lose them")
    HIBERNATING = "hibernating", _("Hibernating")
    LOST = "lost", _("Lost")
    NO_PURCHASES = "no_purchases", _("No purchases yet")


def _score_in_range(name: str) -> Q:
    return Q(**{f"{name}__isnull": True}) | (Q(**{f"{name}__gte": 1}) & Q(**{f"{name}__lte": 5}))


class CustomerValue(models.Model):
    """The latest value figures of one customer, written by the recompute job (never by hand).

    Predictive columns are NULL for customers without a paid order (the models describe buyers only)
    and for every customer when the run's fit did not converge."""

    customer = models.OneToOneField(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, primary_key=True, related_name="value"
    )
    run = models.ForeignKey(ClvRun, verbose_name=_("run"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # Historic and formula value.
    orders_count = models.PositiveIntegerField(_("paid orders"), default=0)
    revenue = models.DecimalField(_("revenue (paid and refunded)"), default=Decimal("0.00"), **MONEY)
    refunds = models.DecimalField(_("refunds"), default=Decimal("0.00"), **MONEY)
    historic_value = models.DecimalField(_("historic value"), default=Decimal("0.00"), **MONEY)
    aov = models.DecimalField(_("average order value"), default=Decimal("0.00"), **MONEY)
    purchase_frequency = models.FloatField(_("orders per year"), default=0.0)
    lifespan_years = models.FloatField(_("expected lifespan (years)"), default=0.0)
    formula_clv = models.DecimalField(_("formula CLV"), default=Decimal("0.00"), **MONEY)
    # Buy-till-you-die inputs (in the run's time unit) and outputs.
    frequency = models.PositiveIntegerField(_("repeat purchase days"), null=True, blank=True)
    recency = models.FloatField(_("recency"), null=True, blank=True)
    T = models.FloatField(_("age (T)"), null=True, blank=True)
    monetary_value = models.DecimalField(_("mean repeat transaction"), null=True, blank=True, **MONEY)
    p_alive = models.FloatField(_("probability alive"), null=True, blank=True)
    expected_purchases = models.FloatField(_("expected purchases in horizon"), null=True, blank=True)
    expected_order_value = models.DecimalField(_("expected order value"), null=True, blank=True, **MONEY)
    predicted_clv = models.DecimalField(_("predicted CLV"), null=True, blank=True, **MONEY)
    # RFM.
    r_score = models.PositiveSmallIntegerField(_("R score"), null=True, blank=True)
    f_score = models.PositiveSmallIntegerField(_("F score"), null=True, blank=True)
    m_score = models.PositiveSmallIntegerField(_("M score"), null=True, blank=True)
    rfm_segment = models.CharField(_("RFM segment"), max_length=24, choices=RfmSegment.choices, default=RfmSegment.NO_PURCHASES)
    computed_at = models.DateTimeField(_("computed"))

    class Meta:
        verbose_name = _("customer value")
        verbose_name_plural = _("customer values")
        ordering = ["-predicted_clv"]
        indexes = [
            # The customer list's value sorts (customers.selectors.SORT_KEYS, the same expressions):
            # keyset pages walk these. A missing prediction or order is COALESCEd below every real
            # one, so "highest first" ends with the customers who have none. They replace plain
            # (predicted_clv) and (rfm_segment, predicted_clv): every recompute rebuilds each index
            # (about a second each at 1M rows), so there is none the list does not need. The RFM
            # filter walks the sort's index and keeps its segment's rows: 30-50 ms a page even for
            # a segment of 0.4% (bench/bench_list_values.py).
            models.Index(F("historic_value"), F("customer"), name="custvalue_historic_sort_idx"),
            models.Index(Coalesce(F("predicted_clv"), Value(Decimal("-1"))), F("customer"), name="custvalue_clv_sort_idx"),
            models.Index(Coalesce(F("recency") - F("T"), Value(-1e9)), F("customer"), name="custvalue_last_order_sort_idx"),
            models.Index(fields=["formula_clv"], name="custvalue_formula_clv_idx"),
        ]
        constraints = [
            *[models.CheckConstraint(condition=_score_in_range(n), name=f"custvalue_{n}_1_5") for n in ("r_score", "f_score", "m_score")],
            models.CheckConstraint(
                condition=Q(p_alive__isnull=True) | (Q(p_alive__gte=0) & Q(p_alive__lte=1)), name="custvalue_p_alive_0_1"
            ),
            *[
                models.CheckConstraint(condition=Q(**{f"{n}__gte": 0}), name=f"custvalue_{n}_non_negative")
                for n in ("revenue", "refunds", "historic_value", "aov", "formula_clv")
            ],
            *[
                models.CheckConstraint(condition=Q(**{f"{n}__isnull": True}) | Q(**{f"{n}__gte": 0}), name=f"custvalue_{n}_non_negative")
                for n in ("monetary_value", "expected_order_value", "predicted_clv", "expected_purchases")
            ],
            models.CheckConstraint(
                condition=Q(rfm_segment__in=[s.value for s in RfmSegment]), name="custvalue_rfm_segment_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"value of customer {self.customer_id}"

    @property
    def last_order_on(self):
        """The day of the last paid order as of the run (T - recency before its as-of day); None
        for a customer who never bought. Needs `run` (select_related)."""
        if self.T is None or self.recency is None or self.run is None:
            return None
        return self.run.as_of - dt.timedelta(days=round((self.T - self.recency) * self.run.time_unit_days))


# The stage models live in their own module; importing them here registers them with the app.
from lifecycle.models_health import ChurnRisk, CustomerHealth, HealthHistory, HealthRules  # noqa: E402, F401
from lifecycle.models_retention import RetentionAction, RetentionIntervention  # noqa: E402, F401
from lifecycle.models_stages import (  # noqa: E402, F401
    CustomerStage,
    LifecycleRun,
    Stage,
    StageRules,
    StageTransition,
    TransitionRule,
)
