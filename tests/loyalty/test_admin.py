"""The admin's preview of a tier change shows its effect and saves nothing; the save form it
renders then saves the same values."""

from decimal import Decimal

import pytest
from django.urls import reverse

from loyalty.models import Tier

pytestmark = pytest.mark.django_db


def test_tier_preview_then_save(client, admin_user):
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    tier = Tier.objects.create(name="Gold", threshold=Decimal("500"))
    change_url = reverse("admin:loyalty_tier_change", args=[tier.pk])
    assert 'formaction="/admin/loyalty/tier/' in client.get(change_url).content.decode()
    data = {"name": "Gold", "threshold": "300", "multiplier": "2", "benefits": "Free shipping"}
    response = client.post(reverse("admin:loyalty_tier_preview", args=[tier.pk]), {**data, "_preview": "1"})
    assert response.status_code == 200
    assert response.context["preview"]["members"] == 0
    assert b'name="threshold" value="300"' in response.content
    assert Tier.objects.get(pk=tier.pk).threshold == Decimal("500")
    client.post(change_url, {**data, "_save": "1"})
    assert Tier.objects.get(pk=tier.pk).threshold == Decimal("300")


def test_preview_with_bad_values_shows_errors(client, admin_user):
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    response = client.post(reverse("admin:loyalty_tier_preview_add"), {"name": "", "threshold": "x", "multiplier": "1"})
    assert response.status_code == 200 and response.context["preview"] is None
    assert Tier.objects.count() == 0


def test_preview_needs_admin(client, manager):
    client.force_login(manager)
    response = client.post(reverse("admin:loyalty_tier_preview_add"), {"name": "A", "threshold": "1", "multiplier": "1"})
    assert response.status_code == 302  # to the admin login


def test_deleting_a_tier_in_use_counts_its_members_instead_of_listing_them(
    client, admin_user, django_assert_max_num_queries
):
    """The confirmation page of a tier with members (or named by tier changes) says how many and
    refuses; its queries do not grow with the members (Django's own page loads every one)."""
    from loyalty.models import LoyaltyAccount, TierChange
    from tests.factories import CustomerFactory

    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    gold = Tier.objects.create(name="Gold", threshold=Decimal("500"))
    silver = Tier.objects.create(name="Silver", threshold=Decimal("100"))
    unused = Tier.objects.create(name="Unused", threshold=Decimal("900"))
    accounts = [LoyaltyAccount.objects.create(customer=CustomerFactory(), tier=gold) for _ in range(30)]
    TierChange.objects.create(account=accounts[0], from_tier=silver, to_tier=gold, reason="upgrade")
    url = reverse("admin:loyalty_tier_delete", args=[gold.pk])
    with django_assert_max_num_queries(12):
        page = client.get(url)
    text = page.content.decode()
    assert "Gold: 30 members, named by 1 tier changes" in text
    assert str(accounts[0].customer) not in text
    client.post(url, {"post": "yes"})
    assert Tier.objects.filter(pk=gold.pk).exists()
    # Silver has no members but a change names it: protected too. An unused tier deletes.
    assert "Silver: 0 members, named by 1 tier changes" in client.get(
        reverse("admin:loyalty_tier_delete", args=[silver.pk])).content.decode()
    client.post(reverse("admin:loyalty_tier_delete", args=[unused.pk]), {"post": "yes"})
    assert not Tier.objects.filter(pk=unused.pk).exists()
