"""Output serializers of the value API (read-only; the job is the only writer)."""

from rest_framework import serializers

from core.money import money_field_args

MONEY = money_field_args()


class RfmSerializer(serializers.Serializer):
    r = serializers.IntegerField(source="r_score", allow_null=True)
    f = serializers.IntegerField(source="f_score", allow_null=True)
    m = serializers.IntegerField(source="m_score", allow_null=True)
    segment = serializers.CharField(source="rfm_segment")
    segment_label = serializers.CharField(source="get_rfm_segment_display")


class ExpectedPurchasesSerializer(serializers.Serializer):
    count = serializers.FloatField(source="expected_purchases", allow_null=True)
    horizon_months = serializers.SerializerMethodField()

    def get_horizon_months(self, value) -> int | None:
        return value.run.horizon_months if value.run_id else None


class CustomerValueOutputSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField()
    run_id = serializers.IntegerField(allow_null=True)
    orders_count = serializers.IntegerField()
    aov = serializers.DecimalField(**MONEY)
    purchase_frequency = serializers.FloatField(help_text="Paid orders per year.")
    lifespan_years = serializers.FloatField()
    formula_clv = serializers.DecimalField(**MONEY)
    historic_value = serializers.DecimalField(**MONEY)
    revenue = serializers.DecimalField(**MONEY)
    refunds = serializers.DecimalField(**MONEY)
    frequency = serializers.IntegerField(allow_null=True, help_text="Repeat purchase days.")
    recency = serializers.FloatField(allow_null=True, help_text="First to last purchase day, in the run's time unit.")
    T = serializers.FloatField(allow_null=True, help_text="First purchase day to the as-of day, in the run's time unit.")
    time_unit = serializers.SerializerMethodField()
    monetary_value = serializers.DecimalField(allow_null=True, **MONEY)
    p_alive = serializers.FloatField(allow_null=True)
    expected_purchases = ExpectedPurchasesSerializer(source="*")
    expected_order_value = serializers.DecimalField(allow_null=True, **MONEY)
    predicted_clv = serializers.DecimalField(allow_null=True, **MONEY)
    rfm = RfmSerializer(source="*")
    computed_at = serializers.DateTimeField()

    def get_time_unit(self, value) -> str | None:
        return value.run.time_unit if value.run_id else None


class BgNbdSerializer(serializers.Serializer):
    r = serializers.FloatField(allow_null=True)
    alpha = serializers.FloatField(allow_null=True)
    a = serializers.FloatField(allow_null=True)
    b = serializers.FloatField(allow_null=True)
    converged = serializers.BooleanField(allow_null=True)


class GammaGammaSerializer(serializers.Serializer):
    p = serializers.FloatField(allow_null=True)
    q = serializers.FloatField(allow_null=True)
    v = serializers.FloatField(allow_null=True)
    converged = serializers.BooleanField(allow_null=True)


class LogLikelihoodSerializer(serializers.Serializer):
    bgnbd = serializers.FloatField(allow_null=True)
    gamma_gamma = serializers.FloatField(allow_null=True)


class ClvModelOutputSerializer(serializers.Serializer):
    run_id = serializers.IntegerField()
    status = serializers.CharField()
    as_of = serializers.DateField()
    time_unit = serializers.CharField()
    horizon_months = serializers.IntegerField()
    n_customers = serializers.IntegerField()
    n_purchasers = serializers.IntegerField()
    converged = serializers.BooleanField()
    log_likelihood = LogLikelihoodSerializer()
    bgnbd = BgNbdSerializer()
    gamma_gamma = GammaGammaSerializer()
    message = serializers.CharField(allow_blank=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class ChannelMonthSerializer(serializers.Serializer):
    month = serializers.DateField()
    spend = serializers.DecimalField(allow_null=True, **MONEY)
    acquired = serializers.IntegerField()
    cac = serializers.DecimalField(allow_null=True, **MONEY)


class ChannelValueSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    spend = serializers.DecimalField(**MONEY)
    acquired = serializers.IntegerField()
    cac = serializers.DecimalField(allow_null=True, **MONEY)
    customers_valued = serializers.IntegerField()
    buyers = serializers.IntegerField()
    avg_formula_clv = serializers.DecimalField(allow_null=True, **MONEY)
    avg_predicted_clv = serializers.DecimalField(allow_null=True, **MONEY)
    avg_historic_value = serializers.DecimalField(allow_null=True, **MONEY)
    ltv = serializers.DecimalField(allow_null=True, help_text="Average formula CLV of the channel's customers.", **MONEY)
    ltv_cac = serializers.DecimalField(allow_null=True, max_digits=14, decimal_places=2)
    flagged = serializers.BooleanField(help_text="LTV/CAC below 3.")
    monthly = ChannelMonthSerializer(many=True)


class BudgetAllocationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    share = serializers.DecimalField(max_digits=6, decimal_places=4)
    amount = serializers.DecimalField(**MONEY)


class BudgetSplitSerializer(serializers.Serializer):
    total = serializers.DecimalField(**MONEY)
    reserve_share = serializers.DecimalField(max_digits=6, decimal_places=4)
    reserve = serializers.DecimalField(**MONEY)
    channels = BudgetAllocationSerializer(many=True)


class ClvChannelsOutputSerializer(serializers.Serializer):
    ltv_basis = serializers.CharField()
    ltv_cac_target = serializers.DecimalField(max_digits=4, decimal_places=1)
    channels = ChannelValueSerializer(many=True)
    budget_split = BudgetSplitSerializer()
