"""The optional date of birth (read by the loyalty programme's birthday bonus): one plausibility rule
(customers.rules) for the staff forms, the API, the CSV import and the admin, shown on the customer
page and in the portal."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from core.times import shop_day
from customers.models import Customer
from customers.rules import RuleError, birth_date_clean
from customers.services.imports import import_csv
from tests.customers.test_apis import _assert_field_error
from tests.customers.test_views import _edit_data
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

HEADER = "customer_id,email,birth_date\n"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (dt.date(1899, 12, 31), "before 1900"),
        (dt.date.max, "in the future"),
    ],
)
def test_implausible_dates_are_refused_with_a_reason(value, reason):
    with pytest.raises(RuleError, match=reason):
        birth_date_clean(value)
    with pytest.raises(ValidationError, match=reason):  # the admin's path: the model's validator
        CustomerFactory.build(birth_date=value).full_clean(exclude=["channel"])


def test_plausible_dates_pass_including_today():
    for value in (dt.date(1900, 1, 1), dt.date(1984, 2, 29), shop_day()):
        assert birth_date_clean(value) == value


def test_tomorrow_is_in_the_future(settings):
    with pytest.raises(RuleError):
        birth_date_clean(shop_day() + dt.timedelta(days=1))


def test_staff_edit_sets_and_shows_the_birth_date(client, manager):
    customer = CustomerFactory()
    client.force_login(manager)
    url = reverse("customers:edit", args=[customer.pk])
    assert 'name="birth_date"' in client.get(url).content.decode()
    response = client.post(url, _edit_data(customer, birth_date="1984-03-05"))
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.birth_date == dt.date(1984, 3, 5)
    page = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert "Date of birth" in page and "March 5, 1984" in page
    response = client.post(url, _edit_data(customer, birth_date="1850-01-01"))
    assert response.status_code == 200 and "not a plausible date of birth" in response.content.decode()
    customer.refresh_from_db()
    assert customer.birth_date == dt.date(1984, 3, 5)
    client.post(url, _edit_data(customer, birth_date=""))
    customer.refresh_from_db()
    assert customer.birth_date is None


def test_staff_create_form_takes_a_birth_date(client, manager):
    client.force_login(manager)
    response = client.post(reverse("customers:create"), {"email": "new@example.com", "birth_date": "2001-12-24"})
    assert response.status_code == 302
    assert Customer.objects.get(email="new@example.com").birth_date == dt.date(2001, 12, 24)


def test_api_reads_and_writes_the_birth_date(manager_api):
    response = manager_api.post("/api/v1/customers/", {"email": "b@example.com", "birth_date": "1990-07-01"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["birth_date"] == "1990-07-01"
    url = f"/api/v1/customers/{body['id']}/"
    response = manager_api.patch(url, {"birth_date": "1800-01-01"}, format="json")
    _assert_field_error(response, "birth_date")
    assert manager_api.patch(url, {"birth_date": None}, format="json").json()["birth_date"] is None


def test_import_takes_a_birth_date_column_and_refuses_bad_ones(tmp_path):
    CustomerFactory(external_id="C1", email="c1@example.com", birth_date=dt.date(1970, 1, 1))
    path = tmp_path / "customers.csv"
    path.write_text(
        HEADER
        + "C1,c1@example.com,1971-02-03\n"  # an update
        + "C2,c2@example.com,\n"  # none given
        + "C3,c3@example.com,3.4.1980\n"  # not ISO
        + "C4,c4@example.com,1880-01-01\n"  # implausible
        + "C5,c5@example.com,2000-02-29\n",
        encoding="utf-8",
    )
    result = import_csv(kind="customers", file=path)
    reasons = {row.line: row.reason for row in result.rejected}
    assert sorted(reasons) == [4, 5]
    assert reasons[4].startswith("birth_date: '3.4.1980' is not an ISO date")
    assert reasons[5].startswith("birth_date:") and "1900" in reasons[5]
    dates = dict(Customer.objects.values_list("external_id", "birth_date"))
    assert dates == {"C1": dt.date(1971, 2, 3), "C2": None, "C5": dt.date(2000, 2, 29)}
    # Re-importing without the column leaves the dates alone.
    path.write_text("customer_id,email\nC1,c1@example.com\n", encoding="utf-8")
    import_csv(kind="customers", file=path)
    assert Customer.objects.get(external_id="C1").birth_date == dt.date(1971, 2, 3)


def test_portal_home_shows_the_birth_date(client):
    from tests.portal.conftest import portal_login_as

    customer = CustomerFactory(email="p@example.com", birth_date=dt.date(1984, 3, 5))
    page = portal_login_as(client, customer).get(reverse("portal:home")).content.decode()
    assert "Your date of birth with us: March 5, 1984." in page
    Customer.objects.filter(pk=customer.pk).update(birth_date=None)
    assert "date of birth" not in client.get(reverse("portal:home")).content.decode()
