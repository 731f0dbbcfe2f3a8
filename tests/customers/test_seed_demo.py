import datetime as dt
from decimal import Decimal
from io import StringIO

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Min, Sum
from django.test.utils import CaptureQueriesContext

from core.roles import Role, user_role
from customers.models import AcquisitionChannel, ActivityEvent, ChannelSpend, Customer, Note, Order, Task
from customers.services.demo import demo_reset, demo_seed
from customers.services.demo import generate as G
from customers.services.demo import params as P
from tests.factories import CustomerFactory, UserFactory

NOW = dt.datetime(2026, 6, 15, 12, 30, tzinfo=dt.UTC)


def seed(n=300, s=7, now=NOW, **kwargs):
    return demo_seed(customers=n, seed=s, now=now, **kwargs)


def snapshot():
    """Everything that must repeat for the same seed, keyed by external id (not by database id)."""
    customers = list(
        Customer.objects.order_by("external_id").values_list(
            "external_id", "email", "first_name", "last_name", "country", "signed_up_at", "channel__code",
            "owner__username", "email_opt_in_at",
        )
    )
    orders = list(
        Order.objects.order_by("external_id").values_list(
            "external_id", "customer__external_id", "ordered_at", "amount", "status"
        )
    )
    events = list(
        ActivityEvent.objects.order_by("customer__external_id", "occurred_at", "name").values_list(
            "customer__external_id", "name", "occurred_at", "properties"
        )
    )
    notes = list(Note.objects.order_by("customer__external_id", "created_at").values_list("customer__external_id", "body"))
    return customers, orders, events, notes


# --- The generator alone (numpy, no database) -------------------------------------------------------


def test_generator_depends_only_on_the_seed():
    now = int(NOW.timestamp())
    a, b, c = (G.customer_base(s, 3_000, now, 24) for s in (5, 5, 6))
    assert np.array_equal(a.signup, b.signup) and np.array_equal(a.lam, b.lam)
    assert not np.array_equal(a.signup, c.signup)
    orders_a = np.concatenate([ch.orders.cents for ch in G.chunks(5, a)])
    orders_b = np.concatenate([ch.orders.cents for ch in G.chunks(5, b)])
    assert np.array_equal(orders_a, orders_b)


def test_generated_history_follows_the_story():
    """Sign-ups grow, the first order follows sign-up, nothing happens after now, spend per order
    averages the Gamma-Gamma mean, and customers drop out (the buy-till-you-die part)."""
    now = int(NOW.timestamp())
    base = G.customer_base(11, 40_000, now, 24)
    assert np.all(np.diff(base.signup) >= 0) and base.signup.min() >= base.start and base.signup.max() <= now
    first_year = (base.signup < base.start + (now - base.start) // 2).sum()
    assert first_year < len(base) - first_year  # growth: the second year brings more customers
    buyers = base.first_order >= 0
    assert 0.5 < buyers.mean() < 0.85  # some never buy: leads
    assert np.all(base.first_order[buyers] >= base.signup[buyers])

    cents, repeaters, single = [], 0, 0
    for chunk in G.chunks(11, base):
        orders = chunk.orders
        assert np.all(orders.at <= now)
        assert np.all(orders.at >= base.first_order[orders.customer])
        assert np.all(chunk.events.at <= now) and np.all(chunk.events.at >= base.signup[chunk.events.customer])
        counts = np.bincount(orders.customer - chunk.lo, minlength=chunk.hi - chunk.lo)
        repeaters += (counts > 1).sum()
        single += (counts == 1).sum()
        cents.append(orders.cents)
    mean_value = np.concatenate(cents).mean() / 100
    assert mean_value == pytest.approx(P.GG_P * P.GG_GAMMA / (P.GG_Q - 1), rel=0.1)
    assert repeaters > 0 and single > 0


def test_dropout_limits_repeat_purchases():
    """With the same purchase rates, customers who drop out after every repeat order (p = 1) make at
    most one repeat order; with p near 0 they keep buying."""
    now = int(NOW.timestamp())
    base = G.customer_base(3, 5_000, now, 24)
    base.lam[:] = 0.05
    base.dropout[:] = 1.0
    orders, _ = G._orders(np.random.default_rng(0), base, 0, len(base))
    assert np.bincount(orders.customer).max() <= 2
    base.dropout[:] = 1e-9
    orders, _ = G._orders(np.random.default_rng(0), base, 0, len(base))
    assert np.bincount(orders.customer).max() > 10


# --- Seeding the database ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_command_loads_data_and_prints_the_staff_logins():
    out = StringIO()
    call_command("seed_demo", "--customers", "250", "--seed", "3", "--no-progress", stdout=out)
    text = out.getvalue()
    assert Customer.objects.count() == 250
    assert Order.objects.exists() and ActivityEvent.objects.exists()
    for spec in P.STAFF:
        assert f"Demo staff login: {spec.username} / {spec.password}" in text
        user = get_user_model().objects.get(username=spec.username)
        assert user.check_password(spec.password)
        assert user_role(user) == spec.role
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    assert not get_user_model().objects.get(username="agent1").is_staff
    assert f"{Customer.objects.count()} customers" in text


@pytest.mark.django_db
def test_existing_staff_accounts_are_left_alone():
    UserFactory(username="manager", password="my-own-password")
    out = StringIO()
    call_command("seed_demo", "--customers", "20", "--no-progress", stdout=out)
    manager = get_user_model().objects.get(username="manager")
    assert manager.check_password("my-own-password")
    assert user_role(manager) is None  # no role was added either
    assert "manager (Manager; the account existed" in out.getvalue()
    assert get_user_model().objects.filter(username__in=["admin", "agent1", "agent2"]).count() == 3


@pytest.mark.django_db
def test_same_seed_same_data_and_a_later_now_only_shifts_time():
    seed(n=200, s=9)
    first = snapshot()
    demo_reset()
    assert not Customer.objects.exists()
    seed(n=200, s=9)
    assert snapshot() == first

    demo_reset()
    later = NOW + dt.timedelta(days=40)
    seed(n=200, s=9, now=later)
    customers, orders, events, notes = snapshot()
    assert [c[:5] for c in customers] == [c[:5] for c in first[0]]
    assert [(o[0], o[1], o[3], o[4]) for o in orders] == [(o[0], o[1], o[3], o[4]) for o in first[1]]
    assert {o[2] - f[2] for o, f in zip(orders, first[1])} == {dt.timedelta(days=40)}
    assert [(e[0], e[1], e[3]) for e in events] == [(e[0], e[1], e[3]) for e in first[2]]
    assert notes == first[3]

    demo_reset()
    seed(n=200, s=10)
    assert snapshot()[1] != first[1]


@pytest.mark.django_db
def test_the_data_keeps_every_rule():
    result = seed(n=600, s=21)
    assert result.counts["customers"] == Customer.objects.count() == 600
    assert result.counts["orders"] == Order.objects.count()
    assert result.counts["events"] == ActivityEvent.objects.count()
    assert result.counts["notes"] == Note.objects.count() > 0
    assert result.counts["tasks"] == Task.objects.count() > 0

    # Customers: unique lower-case e-mails, consent with a time, channels, owners, tags, leads.
    emails = list(Customer.objects.values_list("email", flat=True))
    assert len(set(emails)) == 600 and all(e == e.lower() and e.split("@")[1].count("example") for e in emails)
    assert Customer.objects.filter(email_opt_in=True, email_opt_in_at__isnull=True).count() == 0
    assert Customer.objects.filter(email_opt_in=True).exists() and Customer.objects.filter(email_opt_in=False).exists()
    assert Customer.objects.filter(channel__isnull=True).count() == 0
    assert set(Customer.objects.exclude(owner=None).values_list("owner__username", flat=True)) == {"agent1", "agent2"}
    assert Customer.objects.filter(tags__isnull=False).exists()
    assert Customer.objects.filter(orders__isnull=True).exists()  # leads who never bought
    assert Customer.objects.filter(signed_up_at__gt=NOW).count() == 0

    # Orders: valid statuses and amounts; nobody orders before signing up or after now.
    statuses = dict(Order.objects.values_list("status").annotate(n=Count("id")))
    assert set(statuses) == {"paid", "refunded", "cancelled"} and statuses["paid"] > 10 * statuses["refunded"]
    amounts = list(Order.objects.values_list("amount", flat=True))
    assert all(isinstance(a, Decimal) and a >= Decimal("1.00") and a == a.quantize(Decimal("0.01")) for a in amounts)
    assert Order.objects.filter(ordered_at__gt=NOW).count() == 0
    buyers = Customer.objects.annotate(first=Min("orders__ordered_at")).filter(first__isnull=False)
    assert buyers.exists() and not buyers.filter(first__lt=F("signed_up_at")).exists()
    assert Order.objects.filter(external_id__startswith=P.ORDER_PREFIX).count() == Order.objects.count()

    # Events: known names with JSON properties, never in the future.
    names = set(ActivityEvent.objects.values_list("name", flat=True))
    assert names >= {"signup", "login", "page_view", "cart_add", "email_open"}
    cart = ActivityEvent.objects.filter(name="cart_add").first()
    assert cart.properties["sku"].startswith("SKU-") and cart.properties["qty"] in (1, 2, 3)
    assert ActivityEvent.objects.filter(occurred_at__gt=NOW).count() == 0

    # Tasks: done ones are done after they were created.
    assert not Task.objects.filter(done_at__lt=F("created_at")).exists()


@pytest.mark.django_db
def test_channels_have_monthly_spend_with_different_cac():
    seed(n=1_500, s=4)
    codes = set(AcquisitionChannel.objects.values_list("code", flat=True))
    assert codes == {c.code for c in P.CHANNELS}
    assert set(AcquisitionChannel.objects.values_list("status", flat=True)) >= {"proven", "testing"}
    months = set(ChannelSpend.objects.values_list("month", flat=True))
    assert all(m.day == 1 for m in months) and len(months) >= 24
    assert ChannelSpend.objects.filter(amount__lte=0).count() == 0
    cac = {}
    spend = dict(ChannelSpend.objects.values_list("channel__code").annotate(total=Sum("amount")))
    acquired = dict(Customer.objects.values_list("channel__code").annotate(n=Count("id")))
    for code, total in spend.items():
        assert isinstance(total, Decimal)
        cac[code] = total / acquired[code]
    assert max(cac.values()) / min(cac.values()) > 5
    expected = {c.code: c.cac for c in P.CHANNELS}
    for code, value in cac.items():
        assert float(value) == pytest.approx(expected[code], rel=P.SPEND_NOISE)


@pytest.mark.django_db
def test_if_empty_refusal_and_reset():
    other = CustomerFactory(external_id="crm-1", email="real@customer.test")
    out = StringIO()
    call_command("seed_demo", "--customers", "50", "--if-empty", "--no-progress", stdout=out)
    assert "already has 1 customers" in out.getvalue()
    assert Customer.objects.count() == 1 and not get_user_model().objects.filter(username="admin").exists()

    with pytest.raises(CommandError, match="--reset"):
        call_command("seed_demo", "--customers", "50", "--no-progress", stdout=StringIO())
    assert Customer.objects.count() == 1

    call_command("seed_demo", "--customers", "50", "--reset", "--no-progress", stdout=StringIO())
    assert Customer.objects.count() == 51
    call_command("seed_demo", "--customers", "30", "--reset", "--no-progress", stdout=StringIO())
    assert Customer.objects.count() == 31 and Customer.objects.filter(pk=other.pk).exists()
    assert Order.objects.exclude(customer__external_id__startswith=P.CUSTOMER_PREFIX).count() == 0


@pytest.mark.django_db
def test_query_count_does_not_grow_with_customers():
    seed(n=10, s=1)  # staff, channels and tags exist from here on, so both runs below take one path
    demo_reset()
    with CaptureQueriesContext(connection) as small:
        seed(n=100, s=1)
    demo_reset()
    with CaptureQueriesContext(connection) as large:
        seed(n=400, s=1)
    assert len(large.captured_queries) == len(small.captured_queries)


@pytest.mark.postgres
@pytest.mark.django_db
def test_bulk_load_on_postgres_restores_every_index_and_constraint():
    def schema():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename IN "
                "('customers_customer', 'customers_order', 'customers_activityevent') ORDER BY 1"
            )
            indexes = cursor.fetchall()
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid::regclass::text IN "
                "('customers_customer', 'customers_order', 'customers_activityevent') OR (contype = 'f' AND "
                "confrelid::regclass::text IN ('customers_customer', 'customers_order')) ORDER BY 1"
            )
            return indexes, cursor.fetchall()

    before = schema()
    assert any("gin_trgm_ops" in row[0] for row in before[0])
    kept = CustomerFactory(external_id="crm-7")
    seed(n=300, s=2, rebuild_indexes=True)
    assert schema() == before
    assert Customer.objects.count() == 301
    order = Order.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(external_id=order.external_id, customer=order.customer, ordered_at=NOW, amount=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        ActivityEvent.objects.create(customer_id=10**12, name="x", occurred_at=NOW)

    assert demo_reset(suspend_references=True) == 300
    assert schema() == before
    assert list(Customer.objects.all()) == [kept] and not Order.objects.exists()
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(external_id="o-1", customer_id=10**12, ordered_at=NOW, amount=1)


@pytest.mark.django_db
def test_roles_of_the_demo_staff():
    seed(n=10, s=1)
    roles = {u.username: user_role(u) for u in get_user_model().objects.all()}
    assert roles == {"admin": Role.ADMIN, "manager": Role.MANAGER, "agent1": Role.AGENT, "agent2": Role.AGENT}


@pytest.mark.django_db
def test_the_demo_orders_reach_the_feed_and_each_apps_demo_step_runs():
    from customers.models import OrderChange
    from loyalty.models import EarningRule, LedgerEntry, LoyaltyAccount

    out = StringIO()
    call_command("seed_demo", "--customers", "120", "--seed", "4", "--no-progress", stdout=out)
    feed = OrderChange.objects.values_list("order_id", "old_status", "new_status", "new_amount")
    assert sorted(feed) == sorted((o.pk, None, o.status, o.amount) for o in Order.objects.all())
    # Loyalty's demo step configured a programme and earned for the paid orders through the feed.
    assert EarningRule.objects.filter(currency="USD").exists()
    paid_buyers = Order.objects.filter(status="paid").values("customer_id").distinct().count()
    assert LoyaltyAccount.objects.count() == paid_buyers > 0
    assert LedgerEntry.objects.filter(kind="earn").count() == Order.objects.filter(status="paid").count()
    assert "Loyalty: points earned for" in out.getvalue()
    # The reset removes the demo customers' loyalty history with them.
    call_command("seed_demo", "--customers", "10", "--seed", "4", "--reset", "--no-progress", stdout=StringIO())
    assert LedgerEntry.objects.filter(account__customer__external_id__startswith=P.CUSTOMER_PREFIX).count() == (
        LedgerEntry.objects.count()
    )
    assert Customer.objects.count() == 10
