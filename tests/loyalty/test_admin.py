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
