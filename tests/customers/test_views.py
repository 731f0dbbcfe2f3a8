import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer, Note, Order, Task
from lifecycle.models import ClvRun, CustomerValue, RfmSegment
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

LIST = reverse("customers:list")
HTMX = {"HTTP_HX_REQUEST": "true"}


def _ids(response) -> list[int]:
    return [c.pk for c in response.context["page"].customers]


def _queries(callable_) -> int:
    with CaptureQueriesContext(connection) as ctx:
        callable_()
    return len(ctx.captured_queries)


# --- List -----------------------------------------------------------------------------------------

def test_list_full_page_and_htmx_fragment(client, agent):
    CustomerFactory(first_name="Ada", last_name="Lovelace")
    client.force_login(agent)
    full = client.get(LIST).content.decode()
    assert "<html" in full and 'id="customer-filters"' in full and 'id="customer-table"' in full
    assert 'hx-trigger="input changed delay:300ms, search"' in full and 'hx-push-url="true"' in full

    response = client.get(LIST, {"q": "love"}, **HTMX)
    fragment = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in fragment and "customer-filters\" class" not in fragment
    assert fragment.lstrip().startswith('<div id="customer-table"') and "Lovelace" in fragment
    assert "HX-Request" in response["Vary"]


def test_htmx_history_restore_gets_the_whole_page(client, agent):
    client.force_login(agent)
    html = client.get(LIST, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true").content.decode()
    assert "<html" in html


def test_list_search_by_name_email_and_external_id(client, agent):
    ada = CustomerFactory(first_name="Ada", last_name="Lovelace", email="countess@example.org", external_id="X-1")
    CustomerFactory(first_name="Alan", last_name="Turing", email="alan@example.com", external_id="X-2")
    client.force_login(agent)
    for term in ("ada love", "COUNTESS", "x-1"):
        assert _ids(client.get(LIST, {"q": term}, **HTMX)) == [ada.pk], term
    empty = client.get(LIST, {"q": "nobody"}, **HTMX).content.decode()
    assert "No customers found" in empty


def test_list_filters_by_channel_country_owner_and_tag(client, agent, manager):
    web = ChannelFactory(code="web")
    vip = TagFactory(name="vip")
    hit = CustomerFactory(channel=web, country="FR", owner=agent)
    hit.tags.add(vip)
    CustomerFactory(channel=web, country="FR", owner=manager).tags.add(vip)
    CustomerFactory(country="FR", owner=agent).tags.add(vip)
    CustomerFactory(channel=web, country="DE", owner=agent).tags.add(vip)
    CustomerFactory(channel=web, country="FR", owner=agent)
    client.force_login(agent)
    params = {"channel": web.pk, "country": "fr", "owner": agent.pk, "tag": vip.pk}
    assert _ids(client.get(LIST, params)) == [hit.pk]
    # An invalid filter value is ignored, not an error.
    assert len(_ids(client.get(LIST, {"channel": "999999", "country": "France"}))) == 5


def test_list_sorts_by_whitelisted_columns_only(client, agent):
    b = CustomerFactory(first_name="B", last_name="Bravo")
    a = CustomerFactory(first_name="A", last_name="Alpha")
    c = CustomerFactory(first_name="C", last_name="Charlie")
    client.force_login(agent)
    assert _ids(client.get(LIST, {"sort": "name"})) == [a.pk, b.pk, c.pk]
    assert _ids(client.get(LIST, {"sort": "-name"})) == [c.pk, b.pk, a.pk]
    response = client.get(LIST, {"sort": "email; DROP TABLE"})
    assert response.status_code == 200 and _ids(response) == [c.pk, a.pk, b.pk]  # newest first
    html = client.get(LIST, {"sort": "name"}).content.decode()
    assert 'aria-sort="ascending"' in html and "sort=-name" in html


def test_list_pages_with_cursors_without_count(client, agent):
    for i in range(120):
        CustomerFactory(last_name=f"Name{i % 7}")  # ties in the sort key
    client.force_login(agent)
    seen, params = [], {"sort": "name"}
    while True:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(LIST, params, **HTMX)
        assert not any("COUNT(" in q["sql"].upper() for q in ctx.captured_queries)
        seen += _ids(response)
        page = response.context["page"]
        if not page.next_cursor:
            break
        assert "Showing 50 rows" in response.content.decode()
        params = {"sort": "name", "cursor": page.next_cursor}
    assert len(seen) == len(set(seen)) == 120
    expected = list(Customer.objects.order_by("last_name", "first_name", "id").values_list("pk", flat=True))
    assert seen == expected


def test_list_queries_do_not_grow_with_data(client, agent):
    client.force_login(agent)
    tags = [TagFactory(), TagFactory()]

    def make(n):
        for _ in range(n):
            customer = CustomerFactory(owner=UserFactory())
            customer.tags.set(tags)

    def make_with_health(n):
        for i in range(n):
            customer = CustomerFactory(owner=UserFactory())
            customer.tags.set(tags)
            _health(customer, i % 101)
            _staged(customer, "lead")

    make(3)
    make_with_health(3)
    few = _queries(lambda: client.get(LIST, {"q": "example"}))
    by_health = _queries(lambda: client.get(LIST, {"sort": "-health"}))
    make(27)
    make_with_health(27)
    assert _queries(lambda: client.get(LIST, {"q": "example"})) == few
    assert _queries(lambda: client.get(LIST, {"sort": "-health"})) == by_health
    assert _queries(lambda: client.get(LIST, **HTMX)) <= few


def _valued(customer, run, **fields):
    defaults = {"computed_at": run.created_at, "run": run, "historic_value": Decimal("10.00")}
    return CustomerValue.objects.create(customer=customer, **{**defaults, **fields})


def test_list_shows_value_columns_sorts_by_them_and_filters_by_segment(client, agent):
    run = ClvRun.objects.create(as_of=dt.date(2026, 6, 30), status=ClvRun.Status.SUCCEEDED, time_unit="day")
    rich = CustomerFactory(first_name="Rich", last_name="Buyer")
    _valued(rich, run, historic_value=Decimal("1234.50"), predicted_clv=Decimal("300.00"), recency=10.0, T=40.0,
            rfm_segment=RfmSegment.CHAMPIONS)
    poor = CustomerFactory(first_name="Poor", last_name="Buyer")
    _valued(poor, run, historic_value=Decimal("5.00"), predicted_clv=None, recency=0.0, T=200.0, rfm_segment=RfmSegment.LOST)
    CustomerFactory(first_name="Newer", last_name="Customer")  # no value row yet
    client.force_login(agent)
    html = client.get(LIST).content.decode()
    assert "USD\xa01,234.50" in html and "USD\xa0300.00" in html
    assert '<time datetime="2026-05-31">' in html  # the last order: T - recency = 30 days before the as-of day
    assert "Champions" in html and "Lost" in html
    # Value headers sort highest first on the first click.
    assert "sort=-predicted_clv" in html and "sort=-historic_value" in html and "sort=-last_order" in html
    by_clv = client.get(LIST, {"sort": "-predicted_clv"}, **HTMX)
    assert _ids(by_clv) == [rich.pk, poor.pk]
    by_last_order = client.get(LIST, {"sort": "-last_order"}, **HTMX)
    assert _ids(by_last_order) == [rich.pk, poor.pk]  # 30 days ago before 200
    lost = client.get(LIST, {"segment": RfmSegment.LOST}, **HTMX)
    assert _ids(lost) == [poor.pk]
    assert "Customers matching the filters" in lost.content.decode()
    assert _ids(client.get(LIST, {"segment": "not-a-segment"}, **HTMX))  # an unknown segment is dropped, not a 500


def test_list_value_columns_cost_no_query_per_row(client, agent):
    run = ClvRun.objects.create(as_of=dt.date(2026, 6, 30), status=ClvRun.Status.SUCCEEDED)
    client.force_login(agent)
    for _ in range(3):
        _valued(CustomerFactory(), run, predicted_clv=Decimal("1.00"), recency=1.0, T=3.0)
    few = _queries(lambda: client.get(LIST, {"sort": "-predicted_clv"}))
    for _ in range(20):
        _valued(CustomerFactory(), run, predicted_clv=Decimal("2.00"), recency=1.0, T=3.0)
    assert _queries(lambda: client.get(LIST, {"sort": "-predicted_clv"})) == few
    assert _queries(lambda: client.get(LIST)) == few


# --- Export -----------------------------------------------------------------------------------------

def test_export_streams_the_current_filter_as_csv(client, agent):
    web = ChannelFactory(code="web")
    tag = TagFactory(name="vip")
    keep = CustomerFactory(channel=web, first_name="=HYPERLINK(\"x\")", last_name="Evil", email="e@example.com")
    keep.tags.add(tag)
    CustomerFactory(channel=web, first_name="Zed", last_name="Second")
    CustomerFactory(channel=ChannelFactory(code="shop"))
    client.force_login(agent)
    response = client.get(reverse("customers:export"), {"channel": web.pk, "sort": "name", "cursor": "ignored"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["last_name"] for r in rows] == ["Evil", "Second"]
    first = rows[0]
    assert first["first_name"].startswith("'=")  # a formula stays text in a spreadsheet
    assert first["email"] == "e@example.com" and first["channel"] == "web" and first["tags"] == "vip"
    assert first["id"] == str(keep.pk) and first["email_opt_in"] == "false"


def test_export_needs_a_role(client, no_role_user):
    client.force_login(no_role_user)
    assert client.get(reverse("customers:export")).status_code == 403


# --- Detail -----------------------------------------------------------------------------------------

def _rich_customer(n: int, owner=None) -> Customer:
    customer = CustomerFactory(owner=owner)
    customer.tags.set([TagFactory(), TagFactory()])
    now = timezone.now()
    for i in range(n):
        OrderFactory(customer=customer, ordered_at=now - dt.timedelta(days=i))
        EventFactory(customer=customer, occurred_at=now - dt.timedelta(hours=i))
        NoteFactory(customer=customer)
        TaskFactory(customer=customer, assignee=UserFactory())
    return customer


def test_detail_shows_profile_figures_and_timeline(client, agent):
    customer = CustomerFactory(first_name="Grace", last_name="Hopper", email_opt_in=False)
    OrderFactory(customer=customer, amount=Decimal("1234.50"))
    OrderFactory(customer=customer, amount=Decimal("10.00"), status=Order.Status.REFUNDED)
    NoteFactory(customer=customer, body="Prefers e-mail.")
    client.force_login(agent)
    response = client.get(reverse("customers:detail", args=[customer.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Grace Hopper" in html and "Prefers e-mail." in html
    assert "USD\xa01,234.50" in html  # paid only; refunds apart
    assert response.context["figures"].orders == 2 and response.context["figures"].refunds == 1
    assert 'hx-get' not in html.split('id="timeline"')[1].split("</ol>")[0]  # 3 entries: no "Load more"
    assert "VALUE PANEL" not in html  # the marker is a template comment


def test_detail_timeline_loads_more_as_a_fragment(client, agent):
    customer = _rich_customer(9)  # 27 entries: 20 + 7
    client.force_login(agent)
    page = client.get(reverse("customers:detail", args=[customer.pk]))
    timeline = page.context["timeline"]
    assert len(timeline.entries) == 20 and timeline.next_cursor
    html = page.content.decode()
    assert "Load more" in html and 'hx-target="closest li"' in html

    more = client.get(reverse("customers:detail", args=[customer.pk]), {"before": timeline.next_cursor}, **HTMX)
    fragment = more.content.decode()
    assert "<html" not in fragment and fragment.count('class="timeline__item') == 7
    assert "Load more" not in fragment
    first_ids = {f"{e.kind}-{e.obj.pk}" for e in timeline.entries}
    more_ids = set(re.findall(r'data-entry="([a-z]+-\d+)"', fragment))
    assert len(more_ids) == 7 and not first_ids & more_ids
    assert len(first_ids | more_ids) == 27


def test_detail_queries_do_not_grow_with_data(client, manager):
    client.force_login(manager)
    small, big = _rich_customer(3), _rich_customer(30)
    url_small = reverse("customers:detail", args=[small.pk])
    url_big = reverse("customers:detail", args=[big.pk])
    assert _queries(lambda: client.get(url_small)) == _queries(lambda: client.get(url_big))


def test_detail_404(client, agent):
    client.force_login(agent)
    assert client.get(reverse("customers:detail", args=[999999])).status_code == 404


# --- Edit -------------------------------------------------------------------------------------------

def test_agent_may_not_edit(client, agent):
    customer = CustomerFactory(owner=agent)
    client.force_login(agent)
    url = reverse("customers:edit", args=[customer.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"first_name": "Hacked"}).status_code == 403
    customer.refresh_from_db()
    assert customer.first_name != "Hacked"
    detail = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert url not in detail  # no Edit button either


def _edit_data(customer, **overrides):
    data = {
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "email": customer.email,
        "phone": "",
        "external_id": customer.external_id,
        "country": customer.country,
        "signed_up_at": "",
        "channel": customer.channel_id or "",
        "owner": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_manager_edits_a_customer(client, manager, agent):
    customer = CustomerFactory()
    vip = TagFactory(name="vip")
    client.force_login(manager)
    url = reverse("customers:edit", args=[customer.pk])
    assert client.get(url).status_code == 200
    data = _edit_data(
        customer, email="New@Example.COM", country="fr", owner=agent.pk, tags=[vip.pk], email_opt_in="on",
        signed_up_at="2024-05-06T07:08",
    )
    response = client.post(url, data)
    assert response.status_code == 302 and response["Location"] == reverse("customers:detail", args=[customer.pk])
    customer.refresh_from_db()
    assert customer.email == "new@example.com" and customer.country == "FR" and customer.owner == agent
    assert customer.email_opt_in and customer.email_opt_in_at is not None
    assert list(customer.tags.all()) == [vip]
    assert customer.signed_up_at == dt.datetime(2024, 5, 6, 7, 8, tzinfo=dt.UTC)
    assert "Customer saved." in client.get(response["Location"]).content.decode()


def test_edit_shows_validation_errors_inline(client, manager):
    customer = CustomerFactory()
    client.force_login(manager)
    url = reverse("customers:edit", args=[customer.pk])
    response = client.post(url, _edit_data(customer, email="not-an-email", country="France"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Enter a valid email address." in html and "at most 2 characters" in html
    assert html.count("field field--invalid") == 2  # e-mail and country, nothing else


def test_times_with_any_offset_are_stored_in_utc_and_impossible_ones_are_field_errors(client, manager):
    # ISO 8601 with an offset PostgreSQL refuses (beyond 15:59): a DataError and a 500 before.
    customer = CustomerFactory(owner=manager)
    client.force_login(manager)
    edit = reverse("customers:edit", args=[customer.pk])
    assert client.post(edit, _edit_data(customer, signed_up_at="2025-01-01T00:00:00-23:03")).status_code == 302
    customer.refresh_from_db()
    assert customer.signed_up_at == dt.datetime(2025, 1, 1, 23, 3, tzinfo=dt.UTC)
    response = client.post(reverse("customers:task_create", args=[customer.pk]), {"title": "Call", "due_at": "2030-01-02T09:30:00+23:30"})
    assert response.status_code == 302
    assert Task.objects.get(customer=customer).due_at == dt.datetime(2030, 1, 1, 10, 0, tzinfo=dt.UTC)
    # A moment before year 1 in UTC cannot be stored anywhere: said so, nothing saved.
    response = client.post(edit, _edit_data(customer, signed_up_at="0001-01-01T00:00:00+05:00"))
    assert response.status_code == 200 and "signed_up_at" in response.context["form"].errors
    customer.refresh_from_db()
    assert customer.signed_up_at == dt.datetime(2025, 1, 1, 23, 3, tzinfo=dt.UTC)


def test_edit_duplicate_email_is_a_field_error(client, manager):
    CustomerFactory(email="taken@example.com")
    customer = CustomerFactory(first_name="Keep")
    client.force_login(manager)
    response = client.post(
        reverse("customers:edit", args=[customer.pk]), _edit_data(customer, email="TAKEN@example.com", first_name="Changed")
    )
    assert response.status_code == 200
    assert response.context["form"].errors["email"] == ["A customer with this e-mail already exists."]
    assert response.context["customer"].first_name == "Keep"
    customer.refresh_from_db()
    assert customer.first_name == "Keep"


# --- Notes and tasks --------------------------------------------------------------------------------

def test_agent_adds_a_note_to_an_own_customer_only(client, agent):
    own, other = CustomerFactory(owner=agent), CustomerFactory(owner=UserFactory())
    client.force_login(agent)
    response = client.post(reverse("customers:note_create", args=[own.pk]), {"body": "Called, will buy."})
    assert response.status_code == 302
    assert Note.objects.get(customer=own).author == agent

    response = client.post(reverse("customers:note_create", args=[other.pk]), {"body": "Sneaky"})
    assert response.status_code == 403
    assert "only write notes and tasks for your own customers" in response.content.decode()
    assert not Note.objects.filter(customer=other).exists()
    # The form is not offered where it would be refused.
    assert reverse("customers:note_create", args=[other.pk]) not in client.get(
        reverse("customers:detail", args=[other.pk])
    ).content.decode()


def test_manager_adds_notes_to_any_customer_and_empty_notes_are_refused(client, manager):
    customer = CustomerFactory()
    client.force_login(manager)
    url = reverse("customers:note_create", args=[customer.pk])
    assert client.post(url, {"body": "Fine."}).status_code == 302
    response = client.post(url, {"body": "   "}, follow=True)
    assert "A note cannot be empty." in response.content.decode()
    assert Note.objects.filter(customer=customer).count() == 1
    assert client.get(url).status_code == 405


def test_tasks_create_and_complete(client, agent):
    customer = CustomerFactory(owner=agent)
    client.force_login(agent)
    response = client.post(
        reverse("customers:task_create", args=[customer.pk]), {"title": "Send offer", "due_at": "2030-01-02T09:30"}
    )
    assert response.status_code == 302
    task = Task.objects.get(customer=customer)
    assert task.assignee == agent and task.due_at == dt.datetime(2030, 1, 2, 9, 30, tzinfo=dt.UTC)
    assert "Send offer" in client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    response = client.post(reverse("customers:task_complete", args=[customer.pk, task.pk]))
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.done_at is not None


def test_agent_may_not_complete_tasks_of_others_customers(client, agent):
    task = TaskFactory(customer=CustomerFactory(owner=UserFactory()))
    client.force_login(agent)
    response = client.post(reverse("customers:task_complete", args=[task.customer_id, task.pk]))
    assert response.status_code == 403
    task.refresh_from_db()
    assert task.done_at is None


def test_task_of_another_customer_is_404(client, manager):
    task = TaskFactory()
    client.force_login(manager)
    other = CustomerFactory()
    assert client.post(reverse("customers:task_complete", args=[other.pk, task.pk])).status_code == 404


# --- Lifecycle stage, churn risk and health ---------------------------------------------------------

def _health(customer, score, risk=0):
    from lifecycle.models_health import CustomerHealth

    return CustomerHealth.objects.create(
        customer=customer, score=score, activity_points=score, breadth_points=0, service_points=0,
        feedback_points=0, churn_risk=risk, changed_at=timezone.now(),
    )


def _staged(customer, stage):
    from lifecycle.models_stages import CustomerStage

    return CustomerStage.objects.create(customer=customer, stage=stage, changed_at=timezone.now())


def test_list_filters_by_stage_risk_and_health_range(client, agent):
    from lifecycle.models_health import ChurnRisk
    from lifecycle.models_stages import Stage

    sick = CustomerFactory(last_name="Sick")
    _health(sick, 20, ChurnRisk.HIGH)
    _staged(sick, Stage.AT_RISK)
    fine = CustomerFactory(last_name="Fine")
    _health(fine, 80)
    _staged(fine, Stage.ACTIVE)
    bare = CustomerFactory(last_name="Bare")  # no stage, no health row
    client.force_login(agent)

    full = client.get(LIST).content.decode()
    assert 'name="stage"' in full and 'name="risk"' in full and 'name="health_min"' in full and 'name="health_max"' in full
    fragment = client.get(LIST, {"stage": Stage.AT_RISK}, **HTMX)
    assert fragment.content.decode().lstrip().startswith('<div id="customer-table"') and "Sick" in fragment.content.decode()
    assert _ids(fragment) == [sick.pk]
    assert _ids(client.get(LIST, {"stage": Stage.ACTIVE}, **HTMX)) == [fine.pk]
    assert _ids(client.get(LIST, {"stage": Stage.CHURNED}, **HTMX)) == []
    assert _ids(client.get(LIST, {"risk": ChurnRisk.HIGH}, **HTMX)) == [sick.pk]
    assert _ids(client.get(LIST, {"risk": ChurnRisk.NONE}, **HTMX)) == [fine.pk]
    assert _ids(client.get(LIST, {"health_min": 50}, **HTMX)) == [fine.pk]
    assert _ids(client.get(LIST, {"health_max": 20}, **HTMX)) == [sick.pk]
    assert _ids(client.get(LIST, {"health_min": 20, "health_max": 80, "sort": "name"}, **HTMX)) == [fine.pk, sick.pk]
    response = client.get(LIST, {"health_min": 21, "health_max": 79}, **HTMX)
    assert _ids(response) == []
    assert "Customers matching the filters" in client.get(LIST, {"risk": ChurnRisk.NONE}, **HTMX).content.decode()

    # Invalid values are dropped by the form, never a 500: every customer again.
    everyone = {sick.pk, fine.pk, bare.pk}
    for params in ({"stage": "nope"}, {"risk": "9"}, {"risk": "x"}, {"health_min": "-1"}, {"health_max": "101"},
                   {"health_min": "abc"}):
        response = client.get(LIST, params, **HTMX)
        assert response.status_code == 200 and set(_ids(response)) == everyone, params


def test_list_shows_health_with_its_band_and_sorts_by_it(client, agent):
    red, yellow, green = CustomerFactory(), CustomerFactory(), CustomerFactory()
    _health(red, 10)
    _health(yellow, 60)
    _health(green, 90)
    unscored = CustomerFactory()  # no health row yet: last, whichever way the list is sorted
    client.force_login(agent)
    html = client.get(LIST).content.decode()
    assert 'class="band band--red"' in html and 'class="band band--yellow"' in html and 'class="band band--green"' in html
    assert "sort=-health" in html  # highest first on the first click
    assert _ids(client.get(LIST, {"sort": "-health"}, **HTMX)) == [green.pk, yellow.pk, red.pk, unscored.pk]
    assert _ids(client.get(LIST, {"sort": "health"}, **HTMX)) == [red.pk, yellow.pk, green.pk, unscored.pk]


@pytest.mark.parametrize("sort", ["health", "-health"])
def test_list_health_sort_pages_with_cursors_across_ties(client, agent, sort):
    customers = [CustomerFactory() for _ in range(130)]
    for i, customer in enumerate(customers):
        _health(customer, [0, 50, 100][i % 3])  # many ties on the score
    client.force_login(agent)
    seen, params, pages = [], {"sort": sort}, []
    while True:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(LIST, params, **HTMX)
        assert not any("COUNT(" in q["sql"].upper() for q in ctx.captured_queries)
        page = response.context["page"]
        pages.append(page)
        seen += _ids(response)
        if not page.next_cursor:
            break
        params = {"sort": sort, "cursor": page.next_cursor}
    expected = sorted(customers, key=lambda c: (c.health.score, c.pk), reverse=sort.startswith("-"))
    assert seen == [c.pk for c in expected] and len(pages) == 3
    # Back from the last page with its previous cursor: the middle page again.
    back = client.get(LIST, {"sort": sort, "cursor": pages[-1].previous_cursor}, **HTMX)
    assert _ids(back) == [c.pk for c in pages[1].customers]
    # A cursor of another sort, or a forged value, is ignored: the first page.
    assert _ids(client.get(LIST, {"sort": sort, "cursor": "bm9wZQ"}, **HTMX)) == [c.pk for c in pages[0].customers]


def test_list_health_sort_and_filters_cost_no_query_per_row(client, agent):
    from lifecycle.models_stages import Stage

    client.force_login(agent)
    params = {"sort": "-health", "stage": Stage.values[0], "risk": 0, "health_min": 0, "health_max": 100}

    def make(n):
        for _ in range(n):
            customer = CustomerFactory()
            _health(customer, 40)
            _staged(customer, Stage.values[0])

    make(3)
    few = _queries(lambda: client.get(LIST, params))
    make(30)
    response = client.get(LIST, params)
    assert len(_ids(response)) == 33
    assert _queries(lambda: client.get(LIST, params)) == few
