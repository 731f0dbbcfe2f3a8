"""Surveys (NPS, CSAT, custom), their questions, the tokenized invitations that reach customers,
and the one response each invitation may get.

The database holds the rules that must never break: one response per invitation, one answer per
question of a response, one invitation per customer and survey, scores within their scales. Results
are kept up to date in `SurveyDayTotals` (one row per survey and day, moved in the same transaction
as the submit), so a survey's NPS over a million responses is a sum over at most a few hundred rows."""

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.models import TimeStampedModel
from lifecycle.models_stages import Stage


def new_token() -> str:
    """An unguessable link token: 32 random bytes, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


class Survey(TimeStampedModel):
    class Kind(models.TextChoices):
        NPS = "nps", _("NPS")
        CSAT = "csat", _("CSAT")
        CUSTOM = "custom", _("Custom")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.NPS)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)
    intro = models.TextField(_("introduction"), blank=True, help_text=_("Shown above the questions."))
    thank_you = models.TextField(_("thank-you text"), blank=True)
    invitation_valid_days = models.PositiveSmallIntegerField(_("invitation valid (days)"), default=30)
    reminder_after_days = models.PositiveSmallIntegerField(
        _("reminder after (days)"), null=True, blank=True, default=3, help_text=_("Empty: no reminder.")
    )
    # Triggers, run by a daily task (None / empty: off): N days after a paid order, on entering a
    # lifecycle stage, and every day to the customers of a segment (customer-list filters) not yet invited.
    invite_days_after_order = models.PositiveSmallIntegerField(_("invite N days after a paid order"), null=True, blank=True)
    invite_on_stage = models.CharField(
        _("invite on entering the stage"), max_length=16, blank=True, choices=Stage.choices,
        help_text=_("Customers who entered this lifecycle stage since the last daily run are invited."),
    )
    segment_filter = models.JSONField(
        _("segment invited daily"), default=dict, blank=True,
        help_text=_('Customer-list filters, e.g. {"country": "DE", "segment": "champions"}; empty: none.'),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    opened_at = models.DateTimeField(_("opened"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["nps", "csat", "custom"]), name="survey_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=["draft", "open", "closed"]), name="survey_status_valid"),
            models.CheckConstraint(condition=Q(invitation_valid_days__gte=1), name="survey_validity_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        from feedback.services.triggers import segment_filter_errors

        errors = segment_filter_errors(self.segment_filter)
        if errors:
            raise ValidationError({"segment_filter": errors})


class Question(models.Model):
    class Type(models.TextChoices):
        NPS = "nps", _("NPS 0-10")
        RATING = "rating", _("Rating 1-5")
        SINGLE = "single", _("Single choice")
        MULTIPLE = "multiple", _("Multiple choice")
        TEXT = "text", _("Free text")
        YES_NO = "yes_no", _("Yes / no")

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="questions", verbose_name=_("survey"))
    position = models.PositiveSmallIntegerField(_("position"))
    type = models.CharField(_("type"), max_length=16, choices=Type.choices)
    text = models.CharField(_("question"), max_length=500)
    required = models.BooleanField(_("required"), default=True)
    choices = models.JSONField(_("choices"), default=list, blank=True)
    # A follow-up: shown only when the answer to `show_if_question` lies within [min, max].
    show_if_question = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="follow_ups", verbose_name=_("shown after")
    )
    show_if_min = models.SmallIntegerField(_("shown from score"), null=True, blank=True)
    show_if_max = models.SmallIntegerField(_("shown up to score"), null=True, blank=True)

    class Meta:
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        ordering = ["survey", "position"]
        constraints = [
            models.UniqueConstraint(fields=["survey", "position"], name="question_position_unique"),
            models.CheckConstraint(
                condition=Q(type__in=["nps", "rating", "single", "multiple", "text", "yes_no"]), name="question_type_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.text

    @property
    def is_scored(self) -> bool:
        return self.type in (self.Type.NPS, self.Type.RATING)

    def shown_for(self, answers: dict[int, object]) -> bool:
        """Whether this question applies, given the answers so far (question id -> value)."""
        if self.show_if_question_id is None:
            return True
        score = answers.get(self.show_if_question_id)
        if not isinstance(score, int) or isinstance(score, bool):
            return False
        low = self.show_if_min if self.show_if_min is not None else -(10**6)
        high = self.show_if_max if self.show_if_max is not None else 10**6
        return low <= score <= high


class Invitation(models.Model):
    """A customer's personal link to one survey. The token is the only credential the answer page
    and the public API take; it is kept as it is (not hashed) because the reminder sends the same
    link again, and it grants nothing but answering this one survey once."""

    class Channel(models.TextChoices):
        MANUAL = "manual", _("By hand")
        ORDER = "order", _("After an order")
        STAGE = "stage", _("On a stage change")
        SCHEDULE = "schedule", _("On a schedule")
        API = "api", _("API")

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="invitations", verbose_name=_("survey"))
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="survey_invitations", verbose_name=_("customer")
    )
    token = models.CharField(_("token"), max_length=64, unique=True, default=new_token)
    trigger = models.CharField(_("trigger"), max_length=16, choices=Channel.choices, default=Channel.MANUAL)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    reminded_at = models.DateTimeField(_("reminded"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["survey", "customer"], name="invitation_once_per_survey")]
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="invitation_customer_recent_idx"),
            models.Index(fields=["survey", "answered_at"], name="invitation_survey_answered_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.survey} → {self.customer_id}"


class Response(models.Model):
    """The one response an invitation may get: started (answers kept, resumable) until submitted."""

    class Category(models.TextChoices):
        PROMOTER = "promoter", _("Promoter")
        PASSIVE = "passive", _("Passive")
        DETRACTOR = "detractor", _("Detractor")

    invitation = models.OneToOneField(Invitation, on_delete=models.CASCADE, related_name="response")
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="responses", verbose_name=_("survey"))
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="survey_responses", verbose_name=_("customer")
    )
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    # The response's headline scores, copied from its answers at submit for results and the loop.
    nps_score = models.SmallIntegerField(_("NPS score"), null=True, blank=True)
    csat_score = models.SmallIntegerField(_("CSAT score"), null=True, blank=True)
    outcome = models.TextField(_("outcome"), blank=True)

    class Meta:
        verbose_name = _("response")
        verbose_name_plural = _("responses")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(nps_score__gte=0, nps_score__lte=10) | Q(nps_score__isnull=True), name="response_nps_range"),
            models.CheckConstraint(condition=Q(csat_score__gte=1, csat_score__lte=5) | Q(csat_score__isnull=True), name="response_csat_range"),
        ]
        indexes = [
            models.Index(fields=["survey", "submitted_at"], name="response_survey_submitted_idx"),
            models.Index(fields=["customer", "-submitted_at"], name="response_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.survey} / {self.customer_id}"

    @property
    def category(self) -> str | None:
        return nps_category(self.nps_score)

    @property
    def category_label(self) -> str:
        category = self.category
        return str(self.Category(category).label) if category else ""


def nps_category(score: int | None) -> str | None:
    """9-10 promoter, 7-8 passive, 0-6 detractor."""
    if score is None:
        return None
    if score >= 9:
        return Response.Category.PROMOTER
    if score >= 7:
        return Response.Category.PASSIVE
    return Response.Category.DETRACTOR


class Answer(models.Model):
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="answers")
    score = models.SmallIntegerField(_("score"), null=True, blank=True)  # nps, rating, yes_no (1/0)
    choices = models.JSONField(_("choices"), default=list, blank=True)  # single, multiple
    text = models.TextField(_("text"), blank=True)

    class Meta:
        verbose_name = _("answer")
        verbose_name_plural = _("answers")
        constraints = [models.UniqueConstraint(fields=["response", "question"], name="answer_once_per_question")]

    def __str__(self) -> str:
        return f"{self.question_id}: {self.score if self.score is not None else self.text or self.choices}"


class ResponseReply(models.Model):
    """A staff member's reply to a response, or the outcome they recorded (closing the loop)."""

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="replies")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    body = models.TextField(_("reply"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("reply")
        verbose_name_plural = _("replies")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.body[:60]


class SurveyDayTotals(models.Model):
    """Submitted responses of a survey on one day (in the shop's time zone), by category: the
    results' running totals, moved with F() in the transaction that submits a response."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="day_totals")
    day = models.DateField()
    invitations = models.PositiveIntegerField(default=0)
    responses = models.PositiveIntegerField(default=0)
    promoters = models.PositiveIntegerField(default=0)
    passives = models.PositiveIntegerField(default=0)
    detractors = models.PositiveIntegerField(default=0)
    csat_answers = models.PositiveIntegerField(default=0)
    csat_satisfied = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["survey", "day"], name="survey_day_totals_unique")]

    def __str__(self) -> str:
        return f"{self.survey_id} {self.day}"
