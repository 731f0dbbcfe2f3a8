import base64
import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from customers import selectors
from customers.models import Customer, Note, Order
from customers.selectors import (
    SORT_CHOICES,
    customer_filter,
    customer_key_figures,
    customer_ordering,
    customer_page,
    customer_search_is_selective,
    customer_sorted,
    customer_timeline,
    dashboard_figures,
    user_next_tasks,
)
from lifecycle.models import CustomerValue, RfmSegment
from lifecycle.models_health import CustomerHealth
from tests.factories import (
    ChannelFactory,
    CustomerFactory,
    EventFactory,
    NoteFactory,
    OrderFactory,
    TagFactory,
    TaskFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def tied_customers():
    """23 customers with many ties in every sort key, and some without a sign-up date."""
    customers = []
    for i in range(23):
        customers.append(
            CustomerFactory(
                first_name=["Ann", "Bob", "Cy"][i % 3],
                last_name=["Lee", "Ng"][i % 2],
                signed_up_at=None if i % 5 == 0 else T0 + dt.timedelta(days=i % 4),
            )
        )
    # Ties on created_at too: auto_now_add differs per row, so force a few equal values.
    Customer.objects.filter(pk__in=[c.pk for c in customers[:6]]).update(created_at=T0)
    # Value rows with ties and NULLs in every value sort (lifecycle.CustomerValue).
    CustomerValue.objects.bulk_create(
        CustomerValue(
            customer=c,
            computed_at=T0,
            historic_value=Decimal(["0.00", "10.50", "10.50", "99.99"][i % 4]),
            predicted_clv=None if i % 3 == 0 else Decimal(["5.00", "5.00", "7.25"][i % 3]),
            recency=None if i % 4 == 0 else float(i % 3),
            T=None if i % 4 == 0 else 5.0,
            rfm_segment=[RfmSegment.CHAMPIONS, RfmSegment.LOST][i % 2],
        )
        for i, c in enumerate(customers)
    )
    # Health rows with ties on the score (lifecycle.CustomerHealth), for the health sort.
    CustomerHealth.objects.bulk_create(
        CustomerHealth(
            customer=c, score=s, activity_points=s, breadth_points=0, service_points=0, feedback_points=0, changed_at=T0
        )
        for i, c in enumerate(customers)
        for s in [[0, 55, 55, 100][i % 4]]
    )
    return customers


def _expected(sort, qs=None):
    qs = Customer.objects.all() if qs is None else qs
    return list(customer_sorted(qs, sort).order_by(*customer_ordering(sort)).values_list("pk", flat=True))


@pytest.mark.parametrize("sort", SORT_CHOICES)
def test_keyset_pages_forward_and_back_cover_every_row_once(tied_customers, sort):
    expected = _expected(sort)
    qs = Customer.objects.all()
    pages, cursor = [], ""
    while True:
        page = customer_page(qs=qs, sort=sort, cursor=cursor, size=4)
        pages.append([c.pk for c in page.customers])
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert [pk for p in pages for pk in p] == expected
    assert len(pages) == 6  # 23 rows, 4 a page

    # And back again from the last page with the "previous" cursors.
    back = [pages[-1]]
    cursor = page.previous_cursor
    while cursor:
        page = customer_page(qs=qs, sort=sort, cursor=cursor, size=4)
        back.append([c.pk for c in page.customers])
        cursor = page.previous_cursor
    assert back[::-1] == pages


def test_value_sorts_put_the_highest_first_and_customers_without_one_last(tied_customers):
    """Historic value, predicted CLV and last order from the customer's value row: descending is
    the useful order, so those with no prediction or no order come last, not first."""
    by_pk = {v.customer_id: v for v in CustomerValue.objects.all()}
    clv = [by_pk[pk].predicted_clv for pk in _expected("-predicted_clv")]
    assert clv[0] == Decimal("7.25") and clv[-1] is None
    assert clv == sorted(clv, key=lambda v: (v is not None, v or 0), reverse=True)
    historic = [by_pk[pk].historic_value for pk in _expected("-historic_value")]
    assert historic == sorted(historic, reverse=True)
    gaps = [None if by_pk[pk].T is None else by_pk[pk].T - by_pk[pk].recency for pk in _expected("-last_order")]
    assert gaps[0] == 3.0 and gaps[-1] is None  # the most recent order first (3 units ago), never buyers last
    # A customer added since the last recompute has no value row: the value sorts leave them out.
    newcomer = CustomerFactory()
    assert newcomer.pk not in _expected("-predicted_clv") and newcomer.pk in _expected("-created")


def test_rfm_segment_filter(tied_customers):
    lost = customer_filter(segment=RfmSegment.LOST)
    assert lost.count() == 11
    page = customer_page(qs=lost, sort="-predicted_clv", size=50)
    assert {c.value.rfm_segment for c in page.customers} == {RfmSegment.LOST}


def test_a_value_cursor_round_trips_decimals_exactly_and_refuses_garbage(tied_customers):
    first = customer_page(qs=Customer.objects.all(), sort="historic_value", size=8)
    raw = json.loads(base64.urlsafe_b64decode(first.next_cursor + "=" * (-len(first.next_cursor) % 4)))
    assert raw["v"][0] == "10.50"
    for bad in ("NaN", "abc", 1.5, None):
        forged = base64.urlsafe_b64encode(json.dumps({"s": "historic_value", "d": "n", "v": [bad, 1]}).encode()).decode()
        page = customer_page(qs=Customer.objects.all(), sort="historic_value", cursor=forged, size=4)
        assert [c.pk for c in page.customers] == _expected("historic_value")[:4]


def test_first_page_has_no_previous_and_last_page_no_next(tied_customers):
    first = customer_page(qs=Customer.objects.all(), size=20)
    assert first.previous_cursor is None and first.next_cursor
    last = customer_page(qs=Customer.objects.all(), cursor=first.next_cursor, size=20)
    assert len(last.customers) == 3 and last.next_cursor is None and last.previous_cursor


def test_cursor_of_another_sort_or_garbage_starts_at_the_first_page(tied_customers):
    page = customer_page(qs=Customer.objects.all(), sort="name", size=5)
    other = customer_page(qs=Customer.objects.all(), sort="-created", cursor=page.next_cursor, size=5)
    assert [c.pk for c in other.customers] == _expected("-created")[:5]
    garbage = customer_page(qs=Customer.objects.all(), sort="name", cursor="not-a-cursor!!", size=5)
    assert [c.pk for c in garbage.customers] == _expected("name")[:5]


def test_unknown_sort_falls_back_to_newest_first(tied_customers):
    page = customer_page(qs=Customer.objects.all(), sort="password", size=5)
    assert page.sort == "-created"


def _hand_made_cursor(sort: str, values: list) -> str:
    raw = json.dumps({"s": sort, "d": "n", "v": values})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def test_a_hand_made_cursor_at_any_offset_reads_like_the_same_moment_in_utc(tied_customers):
    moment = T0 + dt.timedelta(hours=12)
    # -23:03 is valid ISO 8601 and Python, but PostgreSQL refuses offsets beyond 15:59 (a 500 before).
    far = moment.astimezone(dt.timezone(-dt.timedelta(hours=23, minutes=3))).isoformat()
    qs = Customer.objects.all()
    utc_page = customer_page(qs=qs, sort="-created", cursor=_hand_made_cursor("-created", [moment.isoformat(), 10**9]))
    far_page = customer_page(qs=qs, sort="-created", cursor=_hand_made_cursor("-created", [far, 10**9]))
    assert [c.pk for c in far_page.customers] == [c.pk for c in utc_page.customers]
    assert far_page.customers and all(c.created_at <= moment for c in far_page.customers)
    # Beyond the years UTC can express: a malformed cursor, so the first page.
    first = customer_page(qs=qs, sort="-created", cursor=_hand_made_cursor("-created", ["0001-01-01T00:00:00+05:00", 1]))
    assert [c.pk for c in first.customers] == _expected("-created")[:50]


def test_nulls_sort_as_largest_in_both_directions(tied_customers):
    ascending = list(Customer.objects.order_by(*customer_ordering("signed_up")))
    descending = list(Customer.objects.order_by(*customer_ordering("-signed_up")))
    assert ascending[-1].signed_up_at is None and descending[0].signed_up_at is None
    assert ascending == descending[::-1]


def test_search_matches_full_name_email_and_external_id_case_insensitively():
    ada = CustomerFactory(first_name="Ada", last_name="Lovelace", email="countess@example.org", external_id="EXT-77")
    CustomerFactory(first_name="Alan", last_name="Turing", email="alan@example.com", external_id="EXT-12")
    assert list(customer_filter(q="ada LOVE")) == [ada]
    assert list(customer_filter(q="COUNTESS@")) == [ada]
    assert list(customer_filter(q="ext-77")) == [ada]
    assert customer_filter(q="  ").count() == 2
    assert customer_filter(q="nobody").count() == 0


def test_search_treats_like_wildcards_as_text():
    CustomerFactory(first_name="Ann", last_name="Lee", email="ann@example.com")
    percent = CustomerFactory(first_name="100%", last_name="Sure", email="sure@example.com")
    assert list(customer_filter(q="%")) == [percent]
    assert customer_filter(q="_").count() == 0


def test_filters_combine():
    web, shop = ChannelFactory(code="web"), ChannelFactory(code="shop")
    vip = TagFactory(name="vip")
    agent = UserFactory()
    hit = CustomerFactory(channel=web, country="FR", owner=agent)
    hit.tags.add(vip)
    CustomerFactory(channel=web, country="FR")  # no owner, no tag
    CustomerFactory(channel=shop, country="FR", owner=agent).tags.add(vip)
    CustomerFactory(channel=web, country="DE", owner=agent).tags.add(vip)
    assert list(customer_filter(channel=web, country="fr", owner=agent, tag=vip)) == [hit]
    assert customer_filter(tag=vip).count() == 3
    assert customer_filter(country="FR").count() == 3


def test_key_figures_count_paid_orders_as_spent_per_currency():
    customer = CustomerFactory()
    OrderFactory(customer=customer, amount=Decimal("10.00"), ordered_at=T0)
    OrderFactory(customer=customer, amount=Decimal("5.50"), ordered_at=T0 + dt.timedelta(days=3))
    OrderFactory(customer=customer, amount=Decimal("7.00"), status=Order.Status.REFUNDED, ordered_at=T0 - dt.timedelta(days=1))
    OrderFactory(customer=customer, amount=Decimal("3.00"), status=Order.Status.CANCELLED, ordered_at=T0)
    OrderFactory(customer=customer, amount=Decimal("100.00"), currency="EUR", ordered_at=T0 + dt.timedelta(days=9))
    OrderFactory(amount=Decimal("999.00"))  # someone else's
    figures = customer_key_figures(customer=customer)
    assert figures.orders == 5 and figures.paid_orders == 3 and figures.refunds == 1
    assert [(m.currency, m.amount) for m in figures.spent] == [("EUR", Decimal("100.00")), ("USD", Decimal("15.50"))]
    assert [(m.currency, m.amount) for m in figures.refunded] == [("USD", Decimal("7.00"))]
    assert figures.first_order_at == T0 - dt.timedelta(days=1)
    assert figures.last_order_at == T0 + dt.timedelta(days=9)


def test_key_figures_of_a_customer_without_orders():
    figures = customer_key_figures(customer=CustomerFactory())
    assert figures.orders == 0 and figures.spent == [] and figures.first_order_at is None


def test_timeline_merges_sources_newest_first_and_pages_without_gaps():
    customer = CustomerFactory()
    for i in range(9):
        OrderFactory(customer=customer, ordered_at=T0 + dt.timedelta(hours=i))
        EventFactory(customer=customer, name=f"e{i}", occurred_at=T0 + dt.timedelta(hours=i))  # same instants
    notes = [NoteFactory(customer=customer) for _ in range(7)]
    Note.objects.filter(pk__in=[n.pk for n in notes]).update(created_at=T0 + dt.timedelta(hours=4))  # ties galore
    EventFactory(name="other customer")

    seen, cursor, pages = [], "", 0
    while True:
        page = customer_timeline(customer=customer, before=cursor, size=5)
        seen.extend(page.entries)
        pages += 1
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert pages == 5  # 25 entries, 5 a page
    keys = [(e.kind, e.obj.pk) for e in seen]
    assert len(keys) == len(set(keys)) == 25
    times = [e.at for e in seen]
    assert times == sorted(times, reverse=True)
    # At one instant: orders, then events, then notes.
    at_four = [e.kind for e in seen if e.at == T0 + dt.timedelta(hours=4)]
    assert at_four == ["order", "event"] + ["note"] * 7


def test_timeline_ignores_a_malformed_cursor():
    customer = CustomerFactory()
    OrderFactory(customer=customer)
    assert len(customer_timeline(customer=customer, before="bogus~x~1").entries) == 1
    # Hand-made: an id beyond a BIGINT, a time beyond UTC's years: the first page, not an error.
    for cursor in (f"{T0.isoformat()}~order~{'9' * 25}", "0001-01-01T00:00:00+05:00~order~1"):
        assert len(customer_timeline(customer=customer, before=cursor).entries) == 1


def test_timeline_cursor_at_any_offset_reads_like_the_same_moment_in_utc():
    customer = CustomerFactory()
    for hours in (1, 2, 3):
        OrderFactory(customer=customer, ordered_at=T0 + dt.timedelta(hours=hours))
    # PostgreSQL refuses offsets beyond 15:59 (a 500 before); the cursor names T0 + 2:30 at -23:03.
    far = (T0 + dt.timedelta(hours=2, minutes=30)).astimezone(dt.timezone(-dt.timedelta(hours=23, minutes=3)))
    page = customer_timeline(customer=customer, before=f"{far.isoformat()}~order~1")
    assert [entry.at for entry in page.entries] == [T0 + dt.timedelta(hours=2), T0 + dt.timedelta(hours=1)]


def test_dashboard_figures(agent):
    now = timezone.now()
    CustomerFactory(signed_up_at=now - dt.timedelta(days=400))
    fresh = CustomerFactory(signed_up_at=now)
    OrderFactory(customer=fresh, ordered_at=now - dt.timedelta(days=2), amount=Decimal("20.00"))
    OrderFactory(customer=fresh, ordered_at=now - dt.timedelta(days=3), amount=Decimal("5.00"), status=Order.Status.REFUNDED)
    OrderFactory(customer=fresh, ordered_at=now - dt.timedelta(days=45), amount=Decimal("70.00"))
    TaskFactory(customer=fresh, assignee=agent)
    TaskFactory(customer=fresh, assignee=agent, done_at=now)
    TaskFactory(customer=fresh)
    figures = dashboard_figures(user=agent, now=now)
    assert figures.customers == 2
    assert figures.new_this_month == 1
    assert figures.orders_30d == 2 and figures.paid_orders_30d == 1
    assert [(m.currency, m.amount) for m in figures.revenue_30d] == [("USD", Decimal("20.00"))]
    assert figures.open_tasks == 1 and [t.assignee for t in user_next_tasks(user=agent)] == [agent]


def test_dashboard_figures_take_three_queries_and_the_next_tasks_one(agent, django_assert_num_queries):
    now = timezone.now()
    later = TaskFactory(assignee=agent, due_at=now + dt.timedelta(days=2))
    undated = TaskFactory(assignee=agent, due_at=None)
    sooner = TaskFactory(assignee=agent, due_at=now + dt.timedelta(days=1))
    with django_assert_num_queries(3):
        dashboard_figures(user=agent)
    with django_assert_num_queries(1):
        tasks = user_next_tasks(user=agent)
        assert [t.customer.pk for t in tasks] == [sooner.customer_id, later.customer_id, undated.customer_id]
    assert user_next_tasks(user=agent, limit=2) == [sooner, later]


@pytest.mark.postgres
def test_search_can_use_the_trigram_indexes():
    CustomerFactory.create_batch(5)
    qs = customer_filter(q="lovelace").order_by("-created_at", "-id")[:51]
    with connection.cursor() as cursor:
        # Tiny test table: forbid the plans that win only because it is tiny.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        plan = qs.explain()
    assert "customer_email_trgm_idx" in plan
    assert "customer_fullname_trgm_idx" in plan
    assert "customer_external_id_trgm_idx" in plan


# --- Searches with few matches are paged by sorting their matches (customer_search_is_selective) ---


def _all_pages(qs, sort, search):
    pages, cursor = [], ""
    while True:
        page = customer_page(qs=qs, sort=sort, cursor=cursor, size=3, search=search)
        pages.append([c.pk for c in page.customers])
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    back, cursor = [pages[-1]], page.previous_cursor
    while cursor:
        page = customer_page(qs=qs, sort=sort, cursor=cursor, size=3, search=search)
        back.append([c.pk for c in page.customers])
        cursor = page.previous_cursor
    assert back[::-1] == pages
    return pages


@pytest.mark.parametrize("limit", [1000, 5])  # the matches sorted, or too many for that: the plain walk
@pytest.mark.parametrize("sort", SORT_CHOICES)
def test_a_search_pages_the_same_whichever_way_it_is_planned(tied_customers, monkeypatch, sort, limit):
    monkeypatch.setattr(selectors, "SEARCH_SELECTIVE_LIMIT", limit)
    qs = customer_filter(q="lee")  # 12 of the 23
    expected = _expected(sort, qs)
    assert len(expected) == 12
    assert _all_pages(qs, sort, search="lee") == _all_pages(qs, sort, search="")
    assert [pk for page in _all_pages(qs, sort, search="lee") for pk in page] == expected


@pytest.mark.postgres
def test_selective_means_few_matches_of_a_term_with_a_trigram(tied_customers):
    lee = customer_filter(q="lee")
    assert customer_search_is_selective(lee, "lee", limit=12)
    assert not customer_search_is_selective(lee, "lee", limit=11)
    # Without three letters or digits in a row the trigram indexes cannot count it: never selective.
    assert not customer_search_is_selective(customer_filter(q="ng"), "ng", limit=1000)
    assert not customer_search_is_selective(customer_filter(q="o'"), "o'", limit=1000)
    assert not customer_search_is_selective(lee, "", limit=1000)


def test_selective_is_never_claimed_on_sqlite_or_without_a_term(tied_customers):
    if connection.vendor == "sqlite":
        assert not customer_search_is_selective(customer_filter(q="lee"), "lee", limit=1000)
    assert not customer_search_is_selective(Customer.objects.all(), "  ", limit=1000)


@pytest.mark.postgres
def test_a_selective_search_is_planned_through_the_trigram_indexes(tied_customers):
    qs = customer_filter(q="lee").order_by(*customer_ordering("name"))[:51]
    with selectors._by_search_indexes(True):
        plan = qs.explain()
    assert "customer_fullname_trgm_idx" in plan and "Bitmap" in plan
    assert "customer_name_id_idx" not in plan  # no walk of the sort's index


@pytest.mark.postgres
def test_the_planner_settings_are_back_after_a_selective_page(tied_customers, django_assert_num_queries):
    # The test runs in a transaction, as a view inside ATOMIC_REQUESTS would: SET LOCAL outlives the
    # savepoint, so the page must put the settings back itself.
    with django_assert_num_queries(7):  # count, savepoint, settings, page, tags, settings back, release
        page = customer_page(qs=customer_filter(q="lee"), sort="name", search="lee")
    assert len(page.customers) == 12
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_indexscan'), current_setting('enable_seqscan')")
        assert cursor.fetchone() == ("on", "on")


def test_a_search_with_many_matches_costs_one_query_more(tied_customers, monkeypatch, django_assert_num_queries):
    monkeypatch.setattr(selectors, "SEARCH_SELECTIVE_LIMIT", 5)
    expected = 3 if connection.vendor == "postgresql" else 2  # (the count,) the page, its tags
    with django_assert_num_queries(expected):
        customer_page(qs=customer_filter(q="lee"), sort="name", search="lee")


@pytest.mark.parametrize("sort", ["health", "-health"])
def test_health_sort_lists_customers_without_health_last_in_both_directions(tied_customers, sort, django_assert_max_num_queries):
    # Four customers not yet evaluated (no health row): after every scored one, whichever direction.
    missing = {c.pk for c in tied_customers[::6]}
    CustomerHealth.objects.filter(customer_id__in=missing).delete()
    expected = _expected(sort)
    assert len(expected) == 23 and set(expected[-len(missing):]) == missing
    scores = dict(CustomerHealth.objects.values_list("customer_id", "score"))
    scored = [scores[pk] for pk in expected[: -len(missing)]]
    assert scored == sorted(scored, reverse=sort.startswith("-"))
    for size in (3, 4, 19, 20, 23):
        pages, cursor = [], ""
        while True:
            with django_assert_max_num_queries(3):  # the scored walk, the unscored walk, the tags
                page = customer_page(qs=Customer.objects.all(), sort=sort, cursor=cursor, size=size)
            pages.append([c.pk for c in page.customers])
            if not page.next_cursor:
                break
            cursor = page.next_cursor
        assert [pk for p in pages for pk in p] == expected, size
        back = [pages[-1]]
        cursor = customer_page(qs=Customer.objects.all(), sort=sort, cursor=cursor, size=size).previous_cursor
        while cursor:
            page = customer_page(qs=Customer.objects.all(), sort=sort, cursor=cursor, size=size)
            back.append([c.pk for c in page.customers])
            cursor = page.previous_cursor
        assert [pk for p in back[::-1] for pk in p] == expected, size
