"""The referral programme: its settings, group-reward steps and fraud rules (configured in the admin
site), each customer's referral code, the referrals with their append-only event log, the
fingerprints the fraud checks compare, the rewards a referral earns and the payouts of cash rewards.

A referral's states (services/transitions.py holds the allowed moves):

    pending -> qualified (the referee's first paid order, above the minimum)
            -> held (until the refund window closes) -> approved -> rewarded
    pending/qualified/held -> flagged (review queue) -> approved / rejected; a manager's approval of a
            flagged referral that has no qualifying order yet goes back to pending, one still in
            its hold to held; a refund of its qualifying order voids it
    pending -> rejected (auto-rejected by a fraud rule, or by staff)
    held -> void (the qualifying order was refunded during the hold)
    rewarded -> clawed_back (refunded after the rewards were made; recorded, never deleted)

Invariants the database keeps: one referral that is not rejected per referee (the first valid
referrer wins), nobody refers themselves, one reward per referral and side, one group bonus per
referrer, period and step, one payout per reward (a claim is idempotent), money never negative,
and the programme's spent budget never above its total. Everything here goes with the customer it
belongs to (erasure, the demo's reset): the audit trail is per customer, not kept past them."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from core.money import money_field_args


class Period(models.TextChoices):
    MONTH = "month", _("Calendar month")
    QUARTER = "quarter", _("Calendar quarter")
    YEAR = "year", _("Calendar year")


class ReferralProgram(models.Model):
    """The programme's settings: one row (pk=1), edited in the admin site. Empty caps mean no cap."""

    class ReferrerReward(models.TextChoices):
        CASH_PERCENT = "cash_percent", _("Cash credit: a percentage of the referee's first order")
        POINTS = "points", _("Loyalty points")

    class RefereeReward(models.TextChoices):
        NONE = "none", _("Nothing")
        DISCOUNT = "discount", _("Welcome discount")
        POINTS = "points", _("Loyalty points")

    active = models.BooleanField(_("active"), default=True)
    currency = models.CharField(_("currency"), max_length=3, default=settings.DEFAULT_CURRENCY)
    min_order_amount = models.DecimalField(
        _("minimum qualifying order"), **money_field_args(), default=Decimal("20.00"),
        help_text=_("The referee's first paid order must reach this amount for the referral to qualify."),
    )
    hold_days = models.PositiveSmallIntegerField(
        _("hold (days)"), default=30, help_text=_("A qualified referral is held this long (the refund window) before approval.")
    )
    referrer_reward = models.CharField(
        _("referrer's reward"), max_length=16, choices=ReferrerReward.choices, default=ReferrerReward.CASH_PERCENT
    )
    referrer_percent = models.DecimalField(_("referrer's percentage"), max_digits=5, decimal_places=2, default=Decimal("10.00"))
    referrer_cash_cap = models.DecimalField(
        _("cap per cash reward"), **money_field_args(), null=True, blank=True, default=Decimal("50.00")
    )
    referrer_points = models.PositiveIntegerField(_("referrer's points"), default=500)
    referee_reward = models.CharField(
        _("referee's reward"), max_length=16, choices=RefereeReward.choices, default=RefereeReward.DISCOUNT
    )
    referee_discount_percent = models.DecimalField(
        _("referee's discount (%)"), max_digits=5, decimal_places=2, default=Decimal("10.00")
    )
    referee_discount_days = models.PositiveSmallIntegerField(_("discount valid for (days)"), default=30)
    referee_points = models.PositiveIntegerField(_("referee's points"), default=200)
    group_period = models.CharField(_("group bonus period"), max_length=8, choices=Period.choices, default=Period.MONTH)
    group_base_amount = models.DecimalField(
        _("group bonus base"), **money_field_args(), default=Decimal("100.00"),
        help_text=_("The amount the group bonus percentages apply to."),
    )
    cap_rewards_per_month = models.PositiveIntegerField(_("rewards per referrer per month"), null=True, blank=True)
    cap_rewards_per_year = models.PositiveIntegerField(_("rewards per referrer per year"), null=True, blank=True)
    cap_cash_per_period = models.DecimalField(
        _("cash per referrer per period"), **money_field_args(), null=True, blank=True
    )
    cap_cash_period = models.CharField(_("cash cap period"), max_length=8, choices=Period.choices, default=Period.YEAR)
    budget_total = models.DecimalField(
        _("programme budget"), **money_field_args(), null=True, blank=True,
        help_text=_("The money value of all rewards (cash, discounts at their face value, points at their value) the programme may give."),
    )
    budget_spent = models.DecimalField(_("budget spent"), **money_field_args(), default=Decimal("0.00"))
    review_score = models.PositiveSmallIntegerField(
        _("review from risk score"), default=30, help_text=_("A referral whose risk score reaches this goes to the review queue.")
    )
    review_deadline_hours = models.PositiveSmallIntegerField(_("review deadline (hours)"), default=72)
    suspend_after_rejections = models.PositiveSmallIntegerField(
        _("suspend a referrer after rejected referrals"), default=3, help_text=_("0: never suspend automatically.")
    )

    class Meta:
        verbose_name = _("referral programme")
        verbose_name_plural = _("referral programme")
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="referralprogram_single_row"),
            models.CheckConstraint(condition=Q(min_order_amount__gte=0), name="referralprogram_min_order_non_negative"),
            models.CheckConstraint(
                condition=Q(referrer_percent__gte=0, referrer_percent__lte=100, referee_discount_percent__gte=0,
                            referee_discount_percent__lte=100),
                name="referralprogram_percent_0_100",
            ),
            models.CheckConstraint(condition=Q(budget_spent__gte=0), name="referralprogram_budget_spent_non_negative"),
            models.CheckConstraint(
                condition=Q(budget_total__isnull=True) | Q(budget_spent__lte=F("budget_total")),
                name="referralprogram_budget_not_exceeded",
            ),
        ]

    def __str__(self) -> str:
        return str(_("Referral programme settings"))

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)


class GroupRewardStep(models.Model):
    """Reaching `referrals` approved referrals in one group period earns `percent` of the base."""

    referrals = models.PositiveSmallIntegerField(_("approved referrals"), unique=True)
    percent = models.DecimalField(_("percentage of the base"), max_digits=5, decimal_places=2)

    class Meta:
        verbose_name = _("group bonus step")
        verbose_name_plural = _("group bonus steps")
        ordering = ["referrals"]
        constraints = [
            models.CheckConstraint(condition=Q(referrals__gte=2), name="grouprewardstep_at_least_two"),
            models.CheckConstraint(condition=Q(percent__gt=0, percent__lte=100), name="grouprewardstep_percent_0_100"),
        ]

    def __str__(self) -> str:
        return f"{self.referrals} -> {self.percent}%"


class FraudRule(models.Model):
    """One anti-fraud signal: whether it runs, what it does when it trips (reject at once, or add its
    weight to the risk score), and its threshold and window where it has them."""

    class Code(models.TextChoices):
        SELF_REFERRAL = "self_referral", _("The referee is the referrer")
        SAME_EMAIL = "same_email", _("Same normalised e-mail as the referrer")
        EXISTING_CUSTOMER = "existing_customer", _("The referee was already a customer")
        ALREADY_REFERRED = "already_referred", _("The referee was already referred")
        CIRCULAR = "circular", _("Circular referral")
        SIMILAR_NAME = "similar_name", _("Similar name to the referrer")
        SIMILAR_EMAIL = "similar_email", _("Similar e-mail to the referrer")
        SAME_DEVICE = "same_device", _("Same IP and user agent or device as the referrer")
        IP_BURST = "ip_burst", _("Many sign-ups from one IP address")
        SAME_PHONE = "same_phone", _("Same phone as the referrer")
        SAME_PAYMENT = "same_payment", _("Same payment fingerprint as the referrer")
        SAME_ADDRESS = "same_address", _("Same address as the referrer")
        DISPOSABLE_EMAIL = "disposable_email", _("Disposable e-mail domain")
        VELOCITY_HOUR = "velocity_hour", _("Too many referrals by the referrer in an hour")
        VELOCITY_DAY = "velocity_day", _("Too many referrals by the referrer in a day")
        FAST_ORDER = "fast_order", _("Implausibly short time from sign-up to order")

    class Action(models.TextChoices):
        REJECT = "reject", _("Reject at once")
        FLAG = "flag", _("Add to the risk score")

    code = models.CharField(_("signal"), max_length=32, choices=Code.choices, unique=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    action = models.CharField(_("action"), max_length=8, choices=Action.choices, default=Action.FLAG)
    weight = models.PositiveSmallIntegerField(_("weight"), default=30)
    threshold = models.PositiveIntegerField(
        _("threshold"), null=True, blank=True,
        help_text=_("A count (sign-ups, referrals), a similarity in percent, or minutes, as the signal needs."),
    )
    window_minutes = models.PositiveIntegerField(_("window (minutes)"), null=True, blank=True)

    class Meta:
        verbose_name = _("fraud rule")
        verbose_name_plural = _("fraud rules")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.get_code_display()


class ReferralCode(models.Model):
    """A customer's code (in the share link too); unguessable and unique. A suspended referrer's
    code stops attributing new referrals."""

    customer = models.OneToOneField(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="referral_code"
    )
    code = models.CharField(_("code"), max_length=16, unique=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    suspended_at = models.DateTimeField(_("suspended"), null=True, blank=True)
    suspended_reason = models.CharField(_("why suspended"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("referral code")
        verbose_name_plural = _("referral codes")

    def __str__(self) -> str:
        return self.code


class ShareVisit(models.Model):
    """Visits of a code's share link per day (the top of the share -> qualified funnel)."""

    code = models.ForeignKey(ReferralCode, on_delete=models.CASCADE, related_name="visits")
    day = models.DateField(_("day"))
    visits = models.PositiveIntegerField(_("visits"), default=0)

    class Meta:
        verbose_name = _("share link visits")
        verbose_name_plural = _("share link visits")
        constraints = [models.UniqueConstraint(fields=["code", "day"], name="sharevisit_code_day_uniq")]
        indexes = [models.Index(fields=["day"], name="sharevisit_day_idx")]

    def __str__(self) -> str:
        return f"{self.code_id} {self.day}: {self.visits}"


class Referral(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        QUALIFIED = "qualified", _("Qualified")
        HELD = "held", _("Held")
        FLAGGED = "flagged", _("Flagged for review")
        APPROVED = "approved", _("Approved")
        REWARDED = "rewarded", _("Rewarded")
        REJECTED = "rejected", _("Rejected")
        VOID = "void", _("Void (refunded)")
        CLAWED_BACK = "clawed_back", _("Clawed back")

    class Source(models.TextChoices):
        API = "api", _("API")
        SIGNUP = "signup", _("Sign-up page")
        IMPORT = "import", _("Import")
        STAFF = "staff", _("Staff")

    class Verdict(models.TextChoices):
        OK = "ok", _("OK")
        REVIEW = "review", _("Review")
        REJECTED = "rejected", _("Rejected")

    referrer = models.ForeignKey(
        "customers.Customer", verbose_name=_("referrer"), on_delete=models.CASCADE, related_name="referrals_made"
    )
    referee = models.ForeignKey(
        "customers.Customer", verbose_name=_("referee"), on_delete=models.CASCADE, related_name="referrals_received"
    )
    code = models.ForeignKey(ReferralCode, verbose_name=_("code"), on_delete=models.CASCADE, related_name="referrals")
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.PENDING)
    source = models.CharField(_("source"), max_length=8, choices=Source.choices, default=Source.API)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True)
    device_id = models.CharField(_("device id"), max_length=128, blank=True)
    risk_score = models.PositiveSmallIntegerField(_("risk score"), default=0)
    verdict = models.CharField(_("fraud verdict"), max_length=8, choices=Verdict.choices, default=Verdict.OK)
    # [{"code": ..., "weight": ..., "action": ..., "detail": {...}}]: why the score is what it is.
    signals = models.JSONField(_("fraud signals"), default=list, blank=True)
    qualifying_order = models.ForeignKey(
        "customers.Order", verbose_name=_("qualifying order"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    order_amount = models.DecimalField(_("first order amount"), **money_field_args(), null=True, blank=True)
    qualified_at = models.DateTimeField(_("qualified"), null=True, blank=True)
    hold_until = models.DateTimeField(_("held until"), null=True, blank=True)
    review_deadline = models.DateTimeField(_("review deadline"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("escalated"), null=True, blank=True)
    # When it became approved: the group period it counts in for the referrer's group bonus.
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        constraints = [
            models.CheckConstraint(condition=~Q(referrer=F("referee")), name="referral_not_self"),
            # The first valid referrer wins: a referee has at most one referral that is not rejected.
            models.UniqueConstraint(
                fields=["referee"], condition=~Q(state="rejected"), name="referral_one_live_per_referee"
            ),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "qualified", "held", "flagged", "approved", "rewarded", "rejected",
                                       "void", "clawed_back"]),
                name="referral_state_valid",
            ),
            models.CheckConstraint(condition=Q(order_amount__gte=0) | Q(order_amount__isnull=True), name="referral_amount_non_negative"),
        ]
        indexes = [
            models.Index(fields=["referrer", "created_at"], name="referral_referrer_created_idx"),
            models.Index(fields=["state", "created_at"], name="referral_state_created_idx"),
            models.Index(fields=["ip", "created_at"], name="referral_ip_created_idx", condition=Q(ip__isnull=False)),
            models.Index(fields=["hold_until"], name="referral_hold_idx", condition=Q(state="held")),
            models.Index(fields=["review_deadline"], name="referral_review_idx", condition=Q(state="flagged")),
            models.Index(
                fields=["referrer", "approved_at"], name="referral_referrer_approved_idx",
                condition=Q(state__in=["approved", "rewarded"]),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk}"


class ReferralEvent(models.Model):
    """Append-only: every change of a referral's state, with who or what made it and why."""

    class Actor(models.TextChoices):
        SYSTEM = "system", _("System")
        STAFF = "staff", _("Staff")
        CUSTOMER = "customer", _("Customer")
        API = "api", _("API")

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(_("from"), max_length=16, blank=True)  # empty: created
    to_state = models.CharField(_("to"), max_length=16)
    actor = models.CharField(_("made by"), max_length=8, choices=Actor.choices)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("staff member"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    reason = models.CharField(_("why"), max_length=500)
    data = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        verbose_name = _("referral event")
        verbose_name_plural = _("referral events")
        ordering = ["referral_id", "id"]

    def __str__(self) -> str:
        return f"{self.from_state or '-'} -> {self.to_state}"


class Fingerprint(models.Model):
    """A normalised, hashed trait a customer was seen with (IP with user agent, device, phone,
    payment fingerprint, address, e-mail), for the checks that compare a referee with the referrer
    and count sign-ups per IP. Values are SHA-256 hex of the normalised text: comparable, not readable."""

    class Kind(models.TextChoices):
        IP = "ip", _("IP address")
        IP_AGENT = "ip_agent", _("IP address and user agent")
        DEVICE = "device", _("Device id")
        PHONE = "phone", _("Phone")
        PAYMENT = "payment", _("Payment fingerprint")
        ADDRESS = "address", _("Address")
        EMAIL = "email", _("Normalised e-mail")

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    value = models.CharField(_("value (hashed)"), max_length=64)
    first_seen_at = models.DateTimeField(_("first seen"), auto_now_add=True)
    last_seen_at = models.DateTimeField(_("last seen"))

    class Meta:
        verbose_name = _("fingerprint")
        verbose_name_plural = _("fingerprints")
        constraints = [models.UniqueConstraint(fields=["kind", "value", "customer"], name="fingerprint_kind_value_customer_uniq")]
        indexes = [models.Index(fields=["customer", "kind"], name="fingerprint_customer_kind_idx")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value[:12]}"


class Reward(models.Model):
    """What a referral (or reaching a group step) earns one customer. `value` is its money value,
    whatever its kind, and is what the caps and the programme budget count."""

    class Role(models.TextChoices):
        REFERRER = "referrer", _("Referrer")
        REFEREE = "referee", _("Referee")
        GROUP = "group", _("Group bonus")

    class Kind(models.TextChoices):
        CASH = "cash", _("Cash credit")
        POINTS = "points", _("Loyalty points")
        DISCOUNT = "discount", _("Discount")

    class State(models.TextChoices):
        AVAILABLE = "available", _("Available")
        CLAIMED = "claimed", _("Claimed")
        CLAWED_BACK = "clawed_back", _("Clawed back")
        VOID = "void", _("Void")

    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="referral_rewards"
    )
    referral = models.ForeignKey(
        Referral, verbose_name=_("referral"), on_delete=models.CASCADE, null=True, blank=True, related_name="rewards"
    )
    role = models.CharField(_("for"), max_length=8, choices=Role.choices)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    state = models.CharField(_("state"), max_length=12, choices=State.choices, default=State.AVAILABLE)
    amount = models.DecimalField(_("amount"), **money_field_args(), null=True, blank=True)  # cash
    percent = models.DecimalField(_("discount (%)"), max_digits=5, decimal_places=2, null=True, blank=True)  # discount
    points = models.PositiveIntegerField(_("points"), null=True, blank=True)  # points
    value = models.DecimalField(_("money value"), **money_field_args())
    currency = models.CharField(_("currency"), max_length=3)
    discount_code = models.CharField(_("discount code"), max_length=24, null=True, blank=True, unique=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    period_start = models.DateField(_("period"))  # the group period it counts in (caps, group steps)
    group_step = models.PositiveSmallIntegerField(_("group step"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    clawed_back_at = models.DateTimeField(_("clawed back"), null=True, blank=True)

    class Meta:
        verbose_name = _("referral reward")
        verbose_name_plural = _("referral rewards")
        constraints = [
            models.UniqueConstraint(
                fields=["referral", "role"], condition=Q(referral__isnull=False), name="reward_one_per_referral_side"
            ),
            models.UniqueConstraint(
                fields=["customer", "period_start", "group_step"], condition=Q(role="group"),
                name="reward_one_group_step_per_period",
            ),
            models.CheckConstraint(condition=Q(value__gte=0), name="reward_value_non_negative"),
            models.CheckConstraint(
                condition=(Q(kind="cash", amount__gte=0, points__isnull=True)
                           | Q(kind="points", points__gt=0, amount__isnull=True)
                           | Q(kind="discount", percent__gt=0, percent__lte=100, amount__isnull=True, points__isnull=True)),
                name="reward_kind_fields",
            ),
            models.CheckConstraint(
                condition=Q(role="group", referral__isnull=True, group_step__isnull=False)
                | (~Q(role="group") & Q(referral__isnull=False, group_step__isnull=True)),
                name="reward_role_fields",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "period_start"], name="reward_customer_period_idx"),
            models.Index(fields=["state", "created_at"], name="reward_state_created_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk}"


class Payout(models.Model):
    """A claimed cash reward waiting to be paid; staff mark it paid. One per reward: the claim's
    idempotency is this row's uniqueness."""

    class State(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        PAID = "paid", _("Paid")
        CANCELLED = "cancelled", _("Cancelled")

    reward = models.OneToOneField(Reward, verbose_name=_("reward"), on_delete=models.CASCADE, related_name="payout")
    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="referral_payouts"
    )
    amount = models.DecimalField(_("amount"), **money_field_args())
    currency = models.CharField(_("currency"), max_length=3)
    state = models.CharField(_("state"), max_length=12, choices=State.choices, default=State.REQUESTED)
    requested_at = models.DateTimeField(_("requested"), auto_now_add=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    paid_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("paid by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    reference = models.CharField(_("payment reference"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("payout")
        verbose_name_plural = _("payouts")
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="payout_amount_positive")]
        indexes = [models.Index(fields=["state", "requested_at"], name="payout_state_requested_idx")]

    def __str__(self) -> str:
        return f"#{self.pk}"
