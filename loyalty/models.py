"""The loyalty programme: its settings, tiers and earning rules (configured in the admin site), each
enrolled customer's account with a cached balance, the append-only ledger behind it, the lots earned
points live in until spent or expired, and the rewards catalogue.

Invariant (checked nightly by loyalty.services.ledger.ledger_balance_check):
    sum(LedgerEntry.points of an account) == account.balance - account.debt
    account.balance == sum(PointLot.remaining of the account)

Spendable points never go below zero (a CheckConstraint, whatever the policy). Under the "debt"
refund policy the points a refund could not take back are owed in `debt`, which future earnings
repay before they add to the balance; `balance` and `debt` are never both above zero."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class LoyaltyProgram(models.Model):
    """The programme's settings: one row (pk=1), edited in the admin site."""

    class ExpiryRounding(models.TextChoices):
        NONE = "none", _("Exactly N months after earning")
        MONTH = "month", _("Rounded up to the end of the month")
        QUARTER = "quarter", _("Rounded up to the end of the quarter")
        YEAR = "year", _("Rounded up to the end of the year")

    class RefundPolicy(models.TextChoices):
        FLOOR = "floor", _("Floor at zero (what was spent is written off)")
        DEBT = "debt", _("Debt that future earnings repay")

    class QualifyBy(models.TextChoices):
        POINTS = "points", _("Points earned")
        AMOUNT = "amount", _("Amount spent")

    expiry_months = models.PositiveSmallIntegerField(
        _("points expire after (months)"), null=True, blank=True, default=12, help_text=_("Empty: points never expire.")
    )
    expiry_rounding = models.CharField(
        _("expiry rounding"), max_length=8, choices=ExpiryRounding.choices, default=ExpiryRounding.NONE
    )
    pending_days = models.PositiveSmallIntegerField(
        _("pending hold (days)"), default=14, help_text=_("Earned points can be spent after this many days.")
    )
    refund_policy = models.CharField(
        _("refund of spent points"), max_length=8, choices=RefundPolicy.choices, default=RefundPolicy.FLOOR
    )
    expiry_warning_days = models.PositiveSmallIntegerField(_("warn before expiry (days)"), default=14)
    point_value = models.DecimalField(
        _("money value of one point"), max_digits=12, decimal_places=4, default=Decimal("0.0100")
    )
    qualify_by = models.CharField(_("tiers qualify by"), max_length=8, choices=QualifyBy.choices, default=QualifyBy.POINTS)
    qualify_window_months = models.PositiveSmallIntegerField(_("tier window (months)"), default=12)
    downgrade_grace_days = models.PositiveSmallIntegerField(_("downgrade grace (days)"), default=30)

    class Meta:
        verbose_name = _("loyalty programme")
        verbose_name_plural = _("loyalty programme")
        constraints = [models.CheckConstraint(condition=Q(id=1), name="loyaltyprogram_single_row")]

    def __str__(self) -> str:
        return str(_("Loyalty programme settings"))

    def save(self, *args, **kwargs):
        self.pk = 1
        before = LoyaltyProgram.objects.filter(pk=1).values("qualify_by", "qualify_window_months").first()
        super().save(*args, **kwargs)
        if before and before != {"qualify_by": self.qualify_by, "qualify_window_months": self.qualify_window_months}:
            # The members' bounds were in the old unit or window: unknown until each is checked again.
            LoyaltyAccount.objects.update(qualify_bound=None, qualify_exact_since=None)


class Tier(models.Model):
    name = models.CharField(_("name"), max_length=60, unique=True)
    threshold = models.DecimalField(
        _("qualifying threshold"),
        max_digits=14,
        decimal_places=2,
        help_text=_("Points earned or amount spent within the window (see the programme settings)."),
    )
    multiplier = models.DecimalField(_("earn multiplier"), max_digits=5, decimal_places=2, default=Decimal("1.00"))
    benefits = models.TextField(_("benefits"), blank=True)

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["threshold"]
        constraints = [
            models.UniqueConstraint(fields=["threshold"], name="tier_threshold_uniq"),
            models.CheckConstraint(condition=Q(threshold__gte=0), name="tier_threshold_non_negative"),
            models.CheckConstraint(condition=Q(multiplier__gt=0), name="tier_multiplier_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class EarningRule(models.Model):
    """How many points one unit of a currency earns (before the tier's multiplier)."""

    currency = models.CharField(_("currency"), max_length=3, unique=True)
    points_per_unit = models.DecimalField(_("points per currency unit"), max_digits=8, decimal_places=4)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("earning rule")
        verbose_name_plural = _("earning rules")
        constraints = [models.CheckConstraint(condition=Q(points_per_unit__gte=0), name="earningrule_rate_non_negative")]

    def __str__(self) -> str:
        return f"{self.points_per_unit} / {self.currency}"


class BonusRule(models.Model):
    """Bonus points for an action, with optional limits per day, month and lifetime."""

    class Action(models.TextChoices):
        FIRST_ORDER = "first_order", _("First order")
        BIRTHDAY = "birthday", _("Birthday")
        SURVEY = "survey", _("Survey answered")
        REFERRAL = "referral", _("Referral")

    action = models.CharField(_("action"), max_length=16, choices=Action.choices, unique=True)
    points = models.PositiveIntegerField(_("points"))
    active = models.BooleanField(_("active"), default=True)
    limit_per_day = models.PositiveIntegerField(_("limit per day"), null=True, blank=True)
    limit_per_month = models.PositiveIntegerField(_("limit per month"), null=True, blank=True)
    limit_lifetime = models.PositiveIntegerField(_("lifetime limit"), null=True, blank=True)

    class Meta:
        verbose_name = _("bonus rule")
        verbose_name_plural = _("bonus rules")

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.points}"


class LoyaltyAccount(models.Model):
    customer = models.OneToOneField(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="loyalty_account"
    )
    balance = models.BigIntegerField(_("balance"), default=0)
    debt = models.BigIntegerField(_("points owed"), default=0)
    # Not indexed: no query picks members by tier (a handful of values: the dashboard and the
    # downgrade read every member), and an index on it made every tier change a non-HOT update, new
    # entries in each of the table's indexes (a sixth of the earning's time with tiers).
    tier = models.ForeignKey(
        Tier, verbose_name=_("tier"), on_delete=models.PROTECT, null=True, blank=True, db_index=False
    )
    tier_held_until = models.DateField(_("tier held until"), null=True, blank=True)
    downgrade_due_at = models.DateTimeField(_("downgrade due"), null=True, blank=True)
    # An upper bound of the member's qualifying figure, in the programme's unit (points or amount):
    # what their order earns in the window came to at the last exact check plus every order earn
    # since (added in the statement that writes the earn). Entries leaving the window and reversals
    # only lower the figure, so a member whose bound is below the next threshold cannot move up and
    # the upgrade skips their exact figure. NULL: unknown (accounts older than the column, or the
    # programme's unit or window changed), the next upgrade computes it. A new account has earned 0.
    qualify_bound = models.DecimalField(
        _("qualifying figure bound"), max_digits=20, decimal_places=2, null=True, blank=True, db_default=Decimal("0"),
        editable=False,
    )
    # While the window still holds every earn the bound counts, the bound IS the figure: each of those
    # earns was made at or after this time, and no reversal has lowered the figure since the bound was
    # last computed (a refund sets NULL). The upgrade then takes the bound as the figure and reads no
    # entry: most members moving up after an earning batch. NULL: not known to be exact.
    qualify_exact_since = models.DateTimeField(
        _("qualifying figure exact since"), null=True, blank=True, db_default=Now(), editable=False
    )
    created_at = models.DateTimeField(_("enrolled"), auto_now_add=True)

    class Meta:
        verbose_name = _("loyalty account")
        verbose_name_plural = _("loyalty accounts")
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="loyaltyaccount_balance_non_negative"),
            models.CheckConstraint(condition=Q(debt__gte=0), name="loyaltyaccount_debt_non_negative"),
            models.CheckConstraint(condition=Q(balance=0) | Q(debt=0), name="loyaltyaccount_balance_or_debt"),
        ]

    def __str__(self) -> str:
        return f"{self.customer}: {self.balance}"


class LedgerEntry(models.Model):
    """One change of an account's points. Never updated or deleted (append-only)."""

    class Kind(models.TextChoices):
        EARN = "earn", pgettext_lazy("ledger entry", "Earn")
        REDEEM = "redeem", pgettext_lazy("ledger entry", "Redeem")
        EXPIRE = "expire", pgettext_lazy("ledger entry", "Expire")
        ADJUST = "adjust", pgettext_lazy("ledger entry", "Adjust")
        REVERSE = "reverse", pgettext_lazy("ledger entry", "Reverse")

    class Source(models.TextChoices):
        ORDER = "order", _("Order")
        REFERRAL = "referral", _("Referral")
        SURVEY = "survey", _("Survey")
        CAMPAIGN = "campaign", _("Campaign")
        STAFF = "staff", _("Staff member")
        REWARD = "reward", _("Reward")
        SYSTEM = "system", _("System")

    # A plain indexed id as well (no database foreign key; see the order's below): every statement
    # that writes an entry takes the id from the account row it has locked FOR UPDATE in the same
    # transaction (a locked row cannot be deleted under it), and nothing deletes an account except
    # through Django, where PROTECT refuses while it has entries. The check ran once per entry at
    # commit: 1,000,000 of them for a 1M-order import's earn.
    account = models.ForeignKey(
        LoyaltyAccount, on_delete=models.PROTECT, related_name="entries", db_index=False, db_constraint=False
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    points = models.BigIntegerField(_("points"))
    balance_after = models.BigIntegerField(_("balance after"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    # The order an entry came from, as a plain id (no database foreign key): the earn of a 1M-order
    # import checked it once per entry at commit, the larger part of what earning cost beyond its
    # statements. The id is copied from the orders table in the statement that writes the entry, and
    # the ledger is a record of what happened: an order deleted later (the app never does; the admin
    # could) leaves the entry as it was instead of rewriting it (DO_NOTHING).
    order = models.ForeignKey(
        "customers.Order", on_delete=models.DO_NOTHING, null=True, blank=True, related_name="+", db_index=False,
        db_constraint=False,
    )
    # staff and reverses are NULL on almost every entry: partial indexes (Meta) instead of full ones,
    # which every earn and expiry entry paid for.
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    # Unique per account (a partial unique index over the entries that have one). An order's earn
    # has none (NULL): it is once per order by its own unique index, (order) among earn entries,
    # one bigint instead of the account and a text key, an index entry less for each of the
    # million entries an import earns (and no key text built for each). NULL, not "": the partial
    # index's condition (IS NOT NULL) is what a lookup by key (= %s) implies, so it uses the index.
    idempotency_key = models.CharField(_("idempotency key"), max_length=120, null=True, blank=True)  # noqa: DJ001
    # An order's earn keeps the rate and amount it earned at, so a refund reverses at that rate.
    rate = models.DecimalField(_("points per unit"), max_digits=10, decimal_places=4, null=True, blank=True)
    base_amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2, null=True, blank=True)
    # Points a refund could not take back under the floor policy: written off, but on record.
    unrecovered = models.BigIntegerField(_("not recovered"), default=0)
    reverses = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversals", db_index=False
    )
    # No index on the time: every entry written pays for each index, and the dashboard's monthly
    # figures read most of the table's last year anyway (a sequential scan).
    created_at = models.DateTimeField(_("at"), db_index=False)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "idempotency_key"], name="ledgerentry_key_uniq", condition=Q(idempotency_key__isnull=False)
            ),
            # An order earns once: the guard of the set-based earning (loyalty.services.earning).
            models.UniqueConstraint(
                fields=["order"], name="ledgerentry_order_earn_uniq", condition=Q(kind="earn", order__isnull=False)
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["earn", "redeem", "expire", "adjust", "reverse"]), name="ledgerentry_kind_valid"
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["redeem", "expire"]) | Q(points__lte=0), name="ledgerentry_spend_negative"
            ),
            models.CheckConstraint(condition=~Q(kind="earn") | Q(points__gte=0), name="ledgerentry_earn_positive"),
        ]
        indexes = [
            models.Index(fields=["account", "-id"], name="ledgerentry_account_id_idx"),
            # The order's other entries (reversals, redemptions); its earn is in the unique index above.
            models.Index(
                fields=["order", "kind"], name="ledgerentry_order_idx", condition=Q(order__isnull=False) & ~Q(kind="earn")
            ),
            models.Index(fields=["staff"], name="ledgerentry_staff_idx", condition=Q(staff__isnull=False)),
            models.Index(fields=["reverses"], name="ledgerentry_reverses_idx", condition=Q(reverses__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.points:+d}"


class PointLot(models.Model):
    """Points earned together: spendable from `available_at`, gone at `expires_at` (None: never)."""

    # Plain ids, no database foreign keys (PROTECT still guards deletes made through Django): a lot is
    # written in the statement that writes its entry, from that entry's RETURNING, with the entry's
    # account, and entries are never deleted. Two checks per lot at commit were a fifth of earning's
    # time at 1M orders. The entry stays unique (one lot per entry).
    account = models.ForeignKey(
        LoyaltyAccount, on_delete=models.PROTECT, related_name="lots", db_index=False, db_constraint=False
    )
    entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="lot", db_constraint=False)
    points = models.BigIntegerField(_("points"))
    remaining = models.BigIntegerField(_("remaining"))
    available_at = models.DateTimeField(_("available from"))
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    warned_at = models.DateTimeField(_("expiry warning sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("point lot")
        verbose_name_plural = _("point lots")
        constraints = [
            models.CheckConstraint(condition=Q(remaining__gte=0) & Q(remaining__lte=F("points")), name="pointlot_remaining_range"),
        ]
        indexes = [
            models.Index(
                fields=["account", "expires_at", "id"], name="pointlot_open_idx", condition=Q(remaining__gt=0)
            ),
            models.Index(fields=["expires_at"], name="pointlot_expiry_idx", condition=Q(remaining__gt=0)),
        ]

    def __str__(self) -> str:
        return f"{self.remaining}/{self.points}"


class LotAllocation(models.Model):
    """Which lots a spending entry (redeem, expire, reverse, negative adjust) took its points from."""

    # Plain ids, as on the lot: written in the transaction that writes the entry and empties the lot,
    # both never deleted; the daily expiry writes one allocation per expired lot (1M of them), and
    # their two checks each at commit cost more than the allocations' insert.
    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="allocations", db_constraint=False)
    # Nothing looks allocations up by lot (a refund reads its redemption's by entry): no index to
    # write a million times a day.
    lot = models.ForeignKey(
        PointLot, on_delete=models.PROTECT, related_name="allocations", db_constraint=False, db_index=False
    )
    points = models.BigIntegerField(_("points"))

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(points__gt=0), name="lotallocation_points_positive")]

    def __str__(self) -> str:
        return f"{self.points}"


class TierChange(models.Model):
    class Reason(models.TextChoices):
        UPGRADE = "upgrade", _("Upgrade")
        DOWNGRADE = "downgrade", _("Downgrade")
        MANUAL = "manual", _("Set by staff")

    account = models.ForeignKey(LoyaltyAccount, on_delete=models.CASCADE, related_name="tier_changes")
    from_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, null=True, related_name="+")
    to_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, null=True, related_name="+")
    reason = models.CharField(_("reason"), max_length=10, choices=Reason.choices)
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.from_tier} -> {self.to_tier}"


class Reward(models.Model):
    name = models.CharField(_("name"), max_length=120)
    cost = models.PositiveIntegerField(_("cost in points"))
    active = models.BooleanField(_("active"), default=True)
    stock = models.PositiveIntegerField(_("stock"), null=True, blank=True, help_text=_("Empty: unlimited."))

    class Meta:
        verbose_name = _("reward")
        verbose_name_plural = _("rewards")
        ordering = ["cost", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(stock__gte=0) | Q(stock__isnull=True), name="reward_stock_non_negative"),
            models.CheckConstraint(condition=Q(cost__gt=0), name="reward_cost_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class Voucher(models.Model):
    code = models.CharField(_("code"), max_length=32, unique=True)
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="vouchers")
    account = models.ForeignKey(LoyaltyAccount, on_delete=models.PROTECT, related_name="vouchers")
    entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="voucher")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("voucher")
        verbose_name_plural = _("vouchers")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.code


class BalanceCheck(models.Model):
    """One run of the nightly check that every cached balance equals its ledger sum."""

    ran_at = models.DateTimeField(_("ran at"), auto_now_add=True)
    accounts_checked = models.PositiveBigIntegerField(_("accounts checked"), default=0)
    mismatches = models.JSONField(_("differences"), default=list, blank=True)

    class Meta:
        verbose_name = _("balance check")
        verbose_name_plural = _("balance checks")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.ran_at:%Y-%m-%d %H:%M}: {len(self.mismatches)}"
