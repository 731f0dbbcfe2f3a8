"""Staff loyalty screens: the customer panel (query count bounded), the ledger fragment with
filters, the manual adjustment (Manager, a double submit adjusts once) and the dashboard."""

import pytest
from django.urls import reverse

from loyalty.models import LedgerEntry, LoyaltyAccount, Tier
from tests.factories import CustomerFactory
from tests.loyalty.helpers import earn_spendable

pytestmark = pytest.mark.django_db


def test_customer_page_shows_the_panel_with_a_bounded_query_count(client, agent, django_assert_max_num_queries):
    customer = CustomerFactory()
    Tier.objects.create(name="Silver", threshold=100)
    for n in range(15):
        earn_spendable(customer, 10, f"k{n}", expires_in_days=20)
    client.force_login(agent)
    with django_assert_max_num_queries(40):
        response = client.get(reverse("customers:detail", args=[customer.pk]))
    body = response.content.decode()
    assert 'id="loyalty-panel"' in body and 'data-testid="loyalty-balance">150<' in body
    assert "Older entries" in body
    assert 'data-testid="loyalty-adjust"' not in body  # an Agent may not adjust


def test_ledger_fragment_filters_and_pages(client, agent):
    customer = CustomerFactory()
    for n in range(30):
        earn_spendable(customer, 1, f"k{n}")
    LedgerEntry.objects.filter(idempotency_key="k0").update(kind="adjust")
    client.force_login(agent)
    url = reverse("loyalty:customer_ledger", args=[customer.pk])
    page = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert page.count("<tr data-entry") == 25 and "before=" in page
    adjust_only = client.get(url, {"kind": "adjust"}).content.decode()
    assert adjust_only.count("<tr data-entry") == 1
    assert client.get(url, {"kind": "nonsense"}).status_code == 200


def test_adjust_needs_manager_and_a_double_submit_adjusts_once(client, agent, manager):
    customer = CustomerFactory()
    url = reverse("loyalty:customer_adjust", args=[customer.pk])
    data = {"points": "30", "reason": "Late delivery", "idempotency_key": "staff-1"}
    client.force_login(agent)
    assert client.post(url, data).status_code == 403
    client.force_login(manager)
    client.post(url, data)
    client.post(url, data)
    account = LoyaltyAccount.objects.get(customer=customer)
    assert account.balance == 30 and LedgerEntry.objects.get().staff == manager
    page = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert 'data-testid="loyalty-adjust"' in page
    response = client.post(url, {**data, "points": "-100", "idempotency_key": "staff-2"}, follow=True)
    assert "Not enough points" in response.content.decode()


def test_dashboard(client, agent, django_assert_max_num_queries):
    customer = CustomerFactory()
    earn_spendable(customer, 100)
    client.force_login(agent)
    with django_assert_max_num_queries(15):
        response = client.get(reverse("loyalty:dashboard"))
    assert response.status_code == 200
    figures = response.context["figures"]
    assert figures["members"] == 1 and figures["outstanding"] == 100 and figures["earned"] == 100


def test_manager_sets_and_holds_a_tier(client, agent, manager):
    import datetime as dt

    from django.utils import timezone

    from loyalty.models import TierChange

    gold = Tier.objects.create(name="Gold", threshold=1000)
    customer = CustomerFactory()
    url = reverse("loyalty:customer_tier_hold", args=[customer.pk])
    until = (timezone.localdate() + dt.timedelta(days=30)).isoformat()
    client.force_login(agent)
    assert client.post(url, {"tier": gold.pk, "held_until": until}).status_code == 403
    client.force_login(manager)
    client.post(url, {"tier": gold.pk, "held_until": until})
    account = LoyaltyAccount.objects.get(customer=customer)
    assert account.tier == gold and account.tier_held_until.isoformat() == until
    assert TierChange.objects.get().staff == manager
    response = client.post(url, {"tier": gold.pk, "held_until": "2001-01-01"}, follow=True)
    assert "The hold must end today or later." in response.content.decode()
