"""Defect 9: staff create customers and orders in the UI (Manager role), with the API's rules, and
a country must be an ISO 3166-1 code everywhere (model, API, import, forms)."""

import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from customers.models import Customer, Order
from customers.services.imports import import_csv
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_a_manager_creates_a_customer(client, manager):
    client.force_login(manager)
    response = client.post(reverse("customers:create"), {"email": "New@Example.com", "country": "de"})
    customer = Customer.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("customers:detail", args=[customer.pk])
    assert (customer.email, customer.country) == ("new@example.com", "DE")


def test_an_htmx_post_with_errors_gets_the_form_back_with_field_errors(client, manager):
    client.force_login(manager)
    response = client.post(reverse("customers:create"), {"first_name": "Ann", "country": "ZZ"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and 'id="create-form"' in html
    assert "not a two-letter country code of ISO 3166-1" in html
    assert "A customer needs an external id or an e-mail address." in html  # the API's rule
    assert response["Vary"].find("HX-Request") >= 0
    assert not Customer.objects.exists()


def test_a_successful_htmx_post_sends_the_browser_to_the_new_page(client, manager):
    client.force_login(manager)
    response = client.post(reverse("customers:create"), {"external_id": "C-9"}, **HTMX)
    assert response.status_code == 200 and response["HX-Redirect"].endswith(f"/{Customer.objects.get().pk}/")


def test_an_agent_may_not_create(client, agent):
    client.force_login(agent)
    customer = CustomerFactory(owner=agent)
    assert client.get(reverse("customers:create")).status_code == 403
    assert client.post(reverse("customers:order_create", args=[customer.pk]), {}).status_code == 403


def test_the_pages_are_offered_to_managers_only(client, manager, agent):
    customer = CustomerFactory()
    client.force_login(manager)
    assert reverse("customers:create") in client.get(reverse("customers:list")).content.decode()
    assert reverse("customers:order_create", args=[customer.pk]) in client.get(
        reverse("customers:detail", args=[customer.pk])
    ).content.decode()
    client.force_login(agent)
    assert reverse("customers:create") not in client.get(reverse("customers:list")).content.decode()


def test_an_order_form_shows_the_services_field_errors(client, manager):
    customer = CustomerFactory()
    client.force_login(manager)
    url = reverse("customers:order_create", args=[customer.pk])
    base = {"external_id": "W1", "ordered_at": "2025-05-01T09:00", "amount": "1.00", "currency": "USD", "status": "paid"}

    bad = client.post(url, base | {"amount": "-1", "currency": "EURO"}, **HTMX).content.decode()
    assert "-1 is negative." in bad and "is not a three-letter currency code" in bad
    assert client.post(url, base).status_code == 302
    again = client.post(url, base | {"amount": "2.00"}, **HTMX).content.decode()
    assert "An order with this external id already exists." in again
    assert Order.objects.get().amount == Decimal("1.00")  # the form creates, never updates


def test_the_order_page_in_chinese(client, manager):
    customer = CustomerFactory()
    client.force_login(manager)
    html = client.get(reverse("customers:order_create", args=[customer.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "New order" not in html and "Add order" not in html


@pytest.mark.parametrize("country", ["ZZ", "XX", "UK"])
def test_a_country_outside_iso_3166_is_refused_everywhere(manager_api, tmp_path, country):
    with pytest.raises(ValidationError):
        Customer(external_id="M1", country=country).full_clean()

    response = manager_api.post("/api/v1/customers/", {"external_id": "A1", "country": country}, format="json")
    assert response.status_code == 400 and "ISO 3166-1" in response.json()["country"][0]

    path = tmp_path / "customers.csv"
    path.write_text(f"customer_id,email,country\nI1,i1@example.com,{country}\n")
    result = import_csv(kind="customers", file=path)
    assert [r.reason for r in result.rejected] == [f"country: '{country}' is not a two-letter country code of ISO 3166-1 (e.g. DE)."]
    assert not Customer.objects.exists()


def test_a_real_country_is_accepted_in_any_case(manager_api):
    response = manager_api.post("/api/v1/customers/", {"external_id": "A1", "country": "gb"}, format="json")
    assert response.status_code == 201 and response.json()["country"] == "GB"


def test_the_create_and_the_edit_page_show_every_field_of_the_customer_form(client, manager):
    """One include (customers/_form_fields.html) renders the fields for both pages: neither lacks one
    the form accepts (the create page used to leave out the e-mail language)."""
    from customers.forms import CustomerForm

    client.force_login(manager)
    names = re.compile(r'<(?:input|select|textarea)[^>]*\bname="(\w+)"')
    create = set(names.findall(client.get(reverse("customers:create")).content.decode()))
    edit = set(names.findall(client.get(reverse("customers:edit", args=[CustomerFactory().pk])).content.decode()))
    expected = set(CustomerForm.base_fields) | {"csrfmiddlewaretoken"}
    assert create >= expected and edit >= expected
