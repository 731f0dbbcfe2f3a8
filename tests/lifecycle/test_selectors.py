import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from lifecycle import selectors
from lifecycle.models import ClvRun, CustomerValue, RfmSegment
from tests.factories import ChannelFactory, ChannelSpendFactory, CustomerFactory

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def valued(customer, formula="0.00", predicted=None, segment=RfmSegment.NO_PURCHASES, **fields):
    return CustomerValue.objects.create(
        customer=customer,
        formula_clv=Decimal(formula),
        predicted_clv=None if predicted is None else Decimal(predicted),
        rfm_segment=segment,
        orders_count=fields.pop("orders_count", 1 if predicted is not None else 0),
        computed_at=timezone.now(),
        **fields,
    )


def signup(channel, month: int, n: int, formula: str, predicted: str | None = None):
    for _ in range(n):
        valued(CustomerFactory(channel=channel, signed_up_at=dt.datetime(2025, month, 15, tzinfo=UTC)), formula, predicted)


@pytest.fixture
def channels():
    testing = ChannelFactory(code="social", name="Social", status="testing")
    proven = ChannelFactory(code="search", name="Search", status="proven")
    organic = ChannelFactory(code="organic", name="Organic", status="testing")
    paused = ChannelFactory(code="print", name="Print", status="paused")
    ChannelSpendFactory(channel=testing, month=dt.date(2025, 1, 1), amount=Decimal("1000.00"))
    ChannelSpendFactory(channel=testing, month=dt.date(2025, 2, 1), amount=Decimal("500.00"))
    signup(testing, 1, 10, "300.00", "120.00")
    signup(testing, 3, 5, "300.00")  # acquired in a month without spend: not in the CAC
    ChannelSpendFactory(channel=proven, month=dt.date(2025, 2, 1), amount=Decimal("400.00"))
    signup(proven, 2, 4, "600.00")
    signup(organic, 1, 3, "50.00")
    return {"testing": testing, "proven": proven, "organic": organic, "paused": paused}


def by_code(rows):
    return {row["code"]: row for row in rows}


def test_cac_ltv_and_flags(channels):
    rows = by_code(selectors.channel_value_summary())
    social = rows["social"]
    assert social["spend"] == Decimal("1500.00") and social["acquired"] == 15
    assert social["cac"] == Decimal("150.00")  # 1500 / the 10 acquired in months with spend
    assert [(m["month"], m["spend"], m["acquired"], m["cac"]) for m in social["monthly"]] == [
        (dt.date(2025, 1, 1), Decimal("1000.00"), 10, Decimal("100.00")),
        (dt.date(2025, 2, 1), Decimal("500.00"), 0, None),
        (dt.date(2025, 3, 1), None, 5, None),
    ]
    assert social["ltv"] == Decimal("300.00") and social["ltv_cac"] == Decimal("2.00") and social["flagged"]
    assert social["avg_predicted_clv"] == Decimal("120.00")
    search = rows["search"]
    assert (search["cac"], search["ltv_cac"], search["flagged"]) == (Decimal("100.00"), Decimal("6.00"), False)
    organic = rows["organic"]
    assert organic["cac"] is None and organic["ltv_cac"] is None and not organic["flagged"]


def test_signup_month_is_the_shop_time_zone_month(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    channel = ChannelFactory(code="x", status="testing")
    ChannelSpendFactory(channel=channel, month=dt.date(2025, 2, 1), amount=Decimal("90.00"))
    # 31 January 20:00 UTC is 1 February 04:00 in Shanghai.
    valued(CustomerFactory(channel=channel, signed_up_at=dt.datetime(2025, 1, 31, 20, tzinfo=UTC)), "10.00")
    row = by_code(selectors.channel_value_summary())["x"]
    assert row["monthly"] == [{"month": dt.date(2025, 2, 1), "spend": Decimal("90.00"), "acquired": 1, "cac": Decimal("90.00")}]


def test_channel_summary_query_count_does_not_grow(channels, django_assert_num_queries):
    with django_assert_num_queries(4):
        selectors.channel_value_summary()
    for i in range(5):
        signup(ChannelFactory(code=f"more-{i}"), 4, 3, "10.00")
    with django_assert_num_queries(4):
        selectors.channel_value_summary()


def test_budget_split(channels):
    split = selectors.budget_split(total=Decimal("10000.00"))
    amounts = {a["name"]: a["amount"] for a in split["channels"]}
    assert amounts == {
        "Search": Decimal("6000.00"),  # the only proven channel takes the 60%
        "Social": Decimal("3000.00"),  # the only testing channel with a ratio takes the 30%
        "Organic": Decimal("0.00"),
        "Print": Decimal("0.00"),  # paused
    }
    assert split["reserve"] == Decimal("1000.00")
    assert sum(amounts.values()) + split["reserve"] == split["total"]


def test_budget_split_by_ltv_cac_and_empty_groups(channels):
    rows = selectors.channel_value_summary()
    for row in rows:
        row["status"] = "testing" if row["code"] != "print" else "paused"
    split = selectors.budget_split(total=Decimal("1000.00"), channels=rows)
    amounts = {a["name"]: a["amount"] for a in split["channels"]}
    # Testing: Social (2) and Search (6) split 30% by LTV/CAC; no proven channel: 60% to the reserve.
    assert amounts["Social"] == Decimal("75.00") and amounts["Search"] == Decimal("225.00")
    assert split["reserve_share"] == Decimal("0.70") and split["reserve"] == Decimal("700.00")


def test_budget_defaults_to_the_latest_month_of_spend(channels):
    assert selectors.budget_split()["total"] == Decimal("900.00")  # February: 500 + 400


def test_histogram_caps_the_tail_into_the_last_bin():
    for amount in [*range(100), 100_000]:
        valued(CustomerFactory(), predicted=f"{amount}.00")
    valued(CustomerFactory())  # no prediction: not counted
    hist = selectors.clv_histogram(field="predicted_clv", bins=10)
    assert hist["count"] == 101 and sum(b["count"] for b in hist["bins"]) == 101
    assert hist["upper"] == 99.0 and hist["bins"][0]["lo"] == 0.0
    assert hist["bins"][-1]["count"] == 11  # 90..99 and the outlier
    with pytest.raises(ValueError):
        selectors.clv_histogram(field="email")


def test_histogram_without_values():
    assert selectors.clv_histogram()["bins"] == []


def test_p_alive_heatmap():
    valued(CustomerFactory(), "1.00", "1.00", frequency=0, recency=0.0, T=10.0, p_alive=1.0)
    valued(CustomerFactory(), "1.00", "1.00", frequency=4, recency=9.5, T=10.0, p_alive=0.9)
    valued(CustomerFactory(), "1.00", "1.00", frequency=4, recency=9.9, T=10.0, p_alive=0.7)
    valued(CustomerFactory(), "1.00", "1.00", frequency=30, recency=1.0, T=10.0, p_alive=0.01)
    heat = selectors.p_alive_heatmap(recency_buckets=10)
    assert heat["frequency_labels"][0] == "0" and heat["frequency_labels"][-1] == "21+"
    assert heat["cells"][0][0] == {"p_alive": 1.0, "count": 1}
    assert heat["cells"][3][9]["p_alive"] == pytest.approx(0.8) and heat["cells"][3][9]["count"] == 2  # 3-4 repeat days
    assert heat["cells"][-1][1]["p_alive"] == pytest.approx(0.01)
    assert sum(c["count"] for row in heat["cells"] for c in row) == 4


def test_groups_by_segment_cohort_and_channel(channels):
    CustomerValue.objects.filter(customer__channel=channels["proven"]).update(rfm_segment=RfmSegment.CHAMPIONS)
    segments = selectors.clv_by_segment()
    assert [s["key"] for s in segments] == [s.value for s in RfmSegment]
    counts = {s["segment"]: s["customers"] for s in selectors.rfm_segment_counts()}
    assert counts["champions"] == 4 and counts["no_purchases"] == 18 and counts["lost"] == 0
    cohorts = {c["key"]: c for c in selectors.clv_by_cohort()}
    assert cohorts["2025-01-01"]["customers"] == 13 and cohorts["2025-01-01"]["label"] == "2025-01"
    assert cohorts["2025-02-01"]["avg_formula_clv"] == Decimal("600.00")
    by_channel = {c["label"]: c for c in selectors.clv_by_channel()}
    assert by_channel["Social"]["customers"] == 15 and by_channel["Social"]["avg_predicted_clv"] == Decimal("120.00")


def test_latest_run_skips_failed_and_running_runs():
    done = ClvRun.objects.create(as_of=dt.date(2026, 1, 1), status=ClvRun.Status.SUCCEEDED, bgnbd_converged=True, gg_converged=True)
    ClvRun.objects.create(as_of=dt.date(2026, 1, 2), status=ClvRun.Status.FAILED)
    ClvRun.objects.create(as_of=dt.date(2026, 1, 3), status=ClvRun.Status.RUNNING)
    assert selectors.clv_run_latest() == done
    assert selectors.clv_model_summary()["converged"] is True
    assert selectors.clv_run_active().as_of == dt.date(2026, 1, 3)
    assert len(selectors.clv_run_list(limit=2)) == 2
