"""The suppression list's API: Manager role only, normalised addresses, field errors, the schema."""

import pytest

from messaging.models import Suppression

pytestmark = pytest.mark.django_db

URL = "/api/v1/suppressions/"


def test_a_manager_adds_lists_changes_and_lifts(manager_api):
    created = manager_api.post(
        URL, {"address": " Someone@Example.COM ", "reason": "manual", "note": "asked by phone"}, format="json"
    )
    assert created.status_code == 201, created.json()
    assert created.json()["address"] == "someone@example.com"
    again = manager_api.post(URL, {"address": "someone@example.com", "reason": "complaint"}, format="json")
    assert again.status_code == 201 and again.json()["id"] == created.json()["id"]
    assert again.json()["reason"] == "complaint"  # a complaint outranks a manual entry
    listed = manager_api.get(URL, {"address": "SOMEONE@example.com"}).json()["results"]
    assert [row["id"] for row in listed] == [created.json()["id"]]
    assert (
        manager_api.patch(f"{URL}{created.json()['id']}/", {"note": "checked"}, format="json").json()["note"]
        == "checked"
    )
    assert manager_api.delete(f"{URL}{created.json()['id']}/").status_code == 204
    assert not Suppression.objects.exists()


def test_bad_input_is_a_400_with_field_errors(manager_api):
    response = manager_api.post(URL, {"address": "not an address", "reason": "bored"}, format="json")
    assert response.status_code == 400
    body = str(response.json())
    assert "address" in body and "reason" in body


def test_an_agent_may_not_read_or_write(agent_api):
    assert agent_api.get(URL).status_code == 403
    assert agent_api.post(URL, {"address": "a@example.com", "reason": "manual"}, format="json").status_code == 403


def test_anonymous_is_401(api_client):
    assert api_client.get(URL).status_code == 401


def test_in_the_openapi_schema(manager_api):
    schema = manager_api.get("/api/schema/", {"format": "json"}).json()
    assert "/api/v1/suppressions/" in schema["paths"]
    assert "post" in schema["paths"]["/api/v1/suppressions/"]


def test_a_customers_language_is_set_through_the_customer_api(manager_api):
    from tests.factories import CustomerFactory

    customer = CustomerFactory()
    assert customer.language == "en"
    response = manager_api.patch(f"/api/v1/customers/{customer.pk}/", {"language": "zh-hans"}, format="json")
    assert response.status_code == 200 and response.json()["language"] == "zh-hans"
    assert manager_api.patch(f"/api/v1/customers/{customer.pk}/", {"language": "fr"}, format="json").status_code == 400
