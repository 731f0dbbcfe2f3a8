"""CSV import service and the import_* management commands (SQLite and PostgreSQL alike)."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.exceptions import DomainError
from customers.models import AcquisitionChannel, ActivityEvent, Customer, Order
from customers.services.imports import IMPORT_KINDS, ImportFileError, import_csv
from customers.services.imports import staging as staging_module
from customers.services.imports.reader import HEAD_BYTES
from tests.factories import ChannelFactory, CustomerFactory, EventFactory, OrderFactory

pytestmark = pytest.mark.django_db

ORDERS_HEADER = "customer_id,order_id,ordered_at,amount,currency,status\n"
CUSTOMERS_HEADER = "customer_id,email,first_name,last_name,phone,country,signed_up_at,channel\n"
EVENTS_HEADER = "customer_id,event,occurred_at,properties\n"
UTC = dt.UTC


@pytest.fixture
def csv_file(tmp_path):
    """Write text (UTF-8) or bytes to a CSV file and return its path."""
    counter = iter(range(1000))

    def write(content, name=None):
        path = tmp_path / (name or f"import{next(counter)}.csv")
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path

    return write


def reasons(result) -> dict[int, str]:
    return {row.line: row.reason for row in result.rejected}


# --- orders ---------------------------------------------------------------------------------------


def test_orders_are_created_with_defaults_and_unknown_customers(csv_file, settings):
    settings.DEFAULT_CURRENCY = "EUR"
    known = CustomerFactory(external_id="C1")
    path = csv_file(
        ORDERS_HEADER
        + "C1,O1,2024-03-05T10:00:00Z,12.50,usd,REFUNDED\n"
        + "C2,O2,2024-03-06,7,,\n"
    )

    result = import_csv(kind="orders", file=path)

    assert result.summary() == {
        "rows": 2, "created": 2, "updated": 0, "unchanged": 0, "rejected": 0,
        "customers_created": 1, "channels_created": 0,
    }
    first = Order.objects.get(external_id="O1")
    assert first.customer == known
    assert (first.amount, first.currency, first.status) == (Decimal("12.50"), "USD", "refunded")
    assert first.ordered_at == dt.datetime(2024, 3, 5, 10, 0, tzinfo=UTC)
    second = Order.objects.get(external_id="O2")
    assert (second.amount, second.currency, second.status) == (Decimal("7.00"), "EUR", "paid")
    created = second.customer
    assert created.external_id == "C2"
    assert (created.email, created.first_name, created.country) == (None, "", "")


def test_orders_rerun_creates_nothing_and_applies_changes(csv_file):
    first = csv_file(ORDERS_HEADER + "C1,O1,2024-03-05,10.00,,\nC1,O2,2024-03-05,20.00,,\nC2,O3,2024-03-05,30.00,,\n")
    import_csv(kind="orders", file=first)
    again = import_csv(kind="orders", file=first)
    assert (again.created, again.updated, again.unchanged, len(again.rejected)) == (0, 0, 3, 0)
    before = Order.objects.get(external_id="O2").updated_at

    changed = csv_file(ORDERS_HEADER + "C1,O1,2024-03-05,10.00,,\nC2,O2,2024-03-05,25.00,,cancelled\nC2,O3,2024-03-05,30.00,,\n")
    result = import_csv(kind="orders", file=changed)

    assert (result.created, result.updated, result.unchanged) == (0, 1, 2)
    assert Order.objects.count() == 3
    assert Customer.objects.count() == 2
    order = Order.objects.get(external_id="O2")
    assert (order.amount, order.status, order.customer.external_id) == (Decimal("25.00"), "cancelled", "C2")
    assert order.updated_at > before


def test_empty_cells_keep_existing_values_and_update_only_files_work(csv_file):
    order = OrderFactory(external_id="O1", customer__external_id="C1", amount=Decimal("9.99"), currency="GBP")
    path = csv_file("customer_id,order_id,status\nC1,O1,refunded\nC1,O-new,paid\n")

    result = import_csv(kind="orders", file=path)

    order.refresh_from_db()
    assert (order.amount, order.currency, order.status) == (Decimal("9.99"), "GBP", "refunded")
    assert result.updated == 1
    assert reasons(result) == {
        3: "ordered_at and amount are needed for a new order (this order_id is not in the database yet)."
    }
    assert not Order.objects.filter(external_id="O-new").exists()


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("C1,O9,05/03/2024,1.00,,", "ordered_at: '05/03/2024' is not an ISO date or date-time"),
        ("C1,O9,2024-02-30,1.00,,", "ordered_at: '2024-02-30' is not an ISO date"),
        ("C1,O9,0001-01-01T00:00:00+01:00,1.00,,", "ordered_at: '0001-01-01T00:00:00+01:00' is not an ISO date"),
        ("C1,O9,2024-03-05,-1.00,,", "amount: -1.00 is negative."),
        ("C1,O9,2024-03-05,1.005,,", "amount: 1.005 has more than two decimal places."),
        ("C1,O9,2024-03-05,12;50,,", "amount: '12;50' is not a number"),
        ("C1,O9,2024-03-05,NaN,,", "amount: 'NaN' is not a number"),
        ("C1,O9,2024-03-05,1.00,,shipped", "status: 'shipped' is not one of paid, refunded, cancelled."),
        ("C1,O9,2024-03-05,1.00,EURO,", "currency: 'EURO' is not a three-letter currency code"),
        (",O9,2024-03-05,1.00,,", "customer_id is missing."),
        ("C1,,2024-03-05,1.00,,", "order_id is missing."),
        ("C1," + "x" * 65 + ",2024-03-05,1.00,,", "order_id is longer than 64 characters."),
    ],
)
def test_bad_order_rows_are_rejected_with_line_and_reason(csv_file, row, reason):
    path = csv_file(ORDERS_HEADER + "C1,O1,2024-03-05,1.00,,\n" + row + "\nC1,O2,2024-03-05,2.00,,\n")

    result = import_csv(kind="orders", file=path)

    assert list(reasons(result)) == [3]
    assert reasons(result)[3].startswith(reason)
    assert result.rejected[0].raw == row
    assert set(Order.objects.values_list("external_id", flat=True)) == {"O1", "O2"}


def test_amount_with_trailing_zero_decimals_is_accepted(csv_file):
    result = import_csv(kind="orders", file=csv_file(ORDERS_HEADER + "C1,O1,2024-03-05,1.500,,\n"))
    assert result.created == 1
    assert Order.objects.get().amount == Decimal("1.50")


def test_duplicate_key_in_file_keeps_the_first_row(csv_file):
    path = csv_file(ORDERS_HEADER + "C1,O1,2024-03-05,1.00,,\nC1,O2,2024-03-05,2.00,,\nC2,O1,2024-03-05,3.00,,\n")

    result = import_csv(kind="orders", file=path)

    assert reasons(result) == {4: "duplicate order_id, first seen on line 2."}
    assert Order.objects.get(external_id="O1").amount == Decimal("1.00")


def test_duplicates_across_chunks_are_found_too(csv_file):
    path = csv_file(ORDERS_HEADER + "".join(f"C1,O{n},2024-03-05,1.00,,\n" for n in range(5)) + "C1,O0,2024-03-05,9,,\n")
    result = import_csv(kind="orders", file=path, chunk_size=2)
    assert reasons(result) == {7: "duplicate order_id, first seen on line 2."}
    assert result.created == 5


def test_line_numbers_are_physical_lines(csv_file):
    path = csv_file(
        "customer_id,order_id,ordered_at,amount,note\r\n"
        'C1,O1,2024-03-05,1.00,"a note\r\nover two lines"\r\n'
        "\r\n"
        "C1,O2,2024-03-05,-5,\r\n"
    )
    result = import_csv(kind="orders", file=path)
    assert list(reasons(result)) == [5]
    assert result.created == 1


def test_columns_in_any_order_extra_columns_ignored_and_header_case_insensitive(csv_file):
    path = csv_file(" Amount ,ORDER_ID,comment,customer_id,ordered_at\n3.10,O1,ignored,C1,2024-03-05\n")
    result = import_csv(kind="orders", file=path)
    assert result.created == 1
    assert Order.objects.get().amount == Decimal("3.10")


def test_short_and_long_rows(csv_file):
    path = csv_file(ORDERS_HEADER + "C1,O1,2024-03-05,1.00\nC1,O2,2024-03-05,2.00,EUR,paid,extra,cells\n")
    result = import_csv(kind="orders", file=path)
    assert result.created == 2
    assert Order.objects.get(external_id="O2").currency == "EUR"


def test_naive_times_are_in_the_configured_time_zone_and_stored_as_utc(csv_file, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    path = csv_file(
        ORDERS_HEADER
        + "C1,O1,2024-01-15 10:00,1,,\n"  # CET, UTC+1
        + "C1,O2,2024-07-15T10:00:00,1,,\n"  # CEST, UTC+2
        + "C1,O3,2024-07-15,1,,\n"  # a date is local midnight
        + "C1,O4,2024-07-15T10:00:00+05:00,1,,\n"  # an offset wins over the setting
        + "C1,O5,2024-07-15T10:00:00Z,1,,\n"
    )

    import_csv(kind="orders", file=path)

    times = dict(Order.objects.values_list("external_id", "ordered_at"))
    assert times == {
        "O1": dt.datetime(2024, 1, 15, 9, 0, tzinfo=UTC),
        "O2": dt.datetime(2024, 7, 15, 8, 0, tzinfo=UTC),
        "O3": dt.datetime(2024, 7, 14, 22, 0, tzinfo=UTC),
        "O4": dt.datetime(2024, 7, 15, 5, 0, tzinfo=UTC),
        "O5": dt.datetime(2024, 7, 15, 10, 0, tzinfo=UTC),
    }
    # The same instants written another way are recognised as unchanged.
    again = csv_file(ORDERS_HEADER + "C1,O1,2024-01-15T09:00:00Z,1,,\nC1,O2,2024-07-15T08:00:00+00:00,1,,\n")
    result = import_csv(kind="orders", file=again)
    assert (result.updated, result.unchanged) == (0, 2)


def test_a_failure_late_in_the_file_keeps_the_chunks_before_it(csv_file, monkeypatch):
    path = csv_file(ORDERS_HEADER + "".join(f"C1,O{n},2024-03-05,1.00,,\n" for n in range(6)))
    merge = staging_module.OrderStaging.merge
    calls = []

    def failing_merge(self, cursor, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("database went away")
        return merge(self, cursor, **kwargs)

    monkeypatch.setattr(staging_module.OrderStaging, "merge", failing_merge)

    with pytest.raises(RuntimeError):
        import_csv(kind="orders", file=path, chunk_size=2)

    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["O0", "O1", "O2", "O3"]


def test_progress_is_reported_per_chunk_and_reaches_the_file_size(csv_file):
    path = csv_file(ORDERS_HEADER + "".join(f"C{n % 3},O{n},2024-03-05,1.00,,\n" for n in range(50)))
    calls = []

    import_csv(kind="orders", file=path, chunk_size=10, progress=lambda done, total: calls.append((done, total)))

    size = path.stat().st_size
    assert len(calls) >= 2
    assert calls[-1] == (size, size)
    assert all(total == size for _done, total in calls)
    assert [done for done, _total in calls] == sorted(done for done, _total in calls)


def test_number_of_queries_does_not_grow_with_rows(csv_file):
    small = csv_file(ORDERS_HEADER + "".join(f"C{n % 4},O{n},2024-03-05,1.00,,\n" for n in range(10)))
    large = csv_file(ORDERS_HEADER + "".join(f"C{n % 400},P{n},2024-03-05,1.00,,\n" for n in range(1000)))

    with CaptureQueriesContext(connection) as few:
        import_csv(kind="orders", file=small)
    with CaptureQueriesContext(connection) as many:
        import_csv(kind="orders", file=large)

    assert Order.objects.count() == 1010
    assert len(many) == len(few)
    assert len(few) <= 16  # on SQLite the order feed is its own INSERT ... SELECT


@pytest.mark.parametrize("kind", ["customers", "events"])
def test_queries_are_bounded_for_other_kinds(csv_file, django_assert_max_num_queries, kind):
    if kind == "customers":
        body = CUSTOMERS_HEADER + "".join(f"C{n},c{n}@example.com,A,B,,DE,2024-01-01,Ads {n % 3}\n" for n in range(1000))
    else:
        body = EVENTS_HEADER + "".join(f'C{n % 50},login,2024-01-01T00:00:{n % 60:02d}+00:{n // 60:02d},"{{}}"\n' for n in range(1000))
    # 17: customers' writes sit in a savepoint (SAVEPOINT, RELEASE), so a row whose referral lost a
    # race can be refused whole (customers.import_hooks).
    with django_assert_max_num_queries(17):
        result = import_csv(kind=kind, file=csv_file(body))
    assert result.created == 1000


# --- customers ------------------------------------------------------------------------------------


def test_customers_are_created_normalised_with_channels(csv_file):
    existing_channel = ChannelFactory(code="paid-search", name="Paid search")
    path = csv_file(
        CUSTOMERS_HEADER
        + "C1, Ann@Example.COM ,Ann,Lee,+49 30 1234,de,2024-02-01,Paid Search\n"
        + "C2,bob@example.com,Bob,,,,,Podcast Ads\n"
        + "C3,cy@example.com,Cy,,,,,podcast ads\n"
    )

    result = import_csv(kind="customers", file=path)

    assert (result.created, result.channels_created, len(result.rejected)) == (3, 1, 0)
    ann = Customer.objects.get(external_id="C1")
    assert (ann.email, ann.first_name, ann.last_name, ann.phone, ann.country) == (
        "ann@example.com", "Ann", "Lee", "+49 30 1234", "DE",
    )
    assert ann.signed_up_at == dt.datetime(2024, 2, 1, tzinfo=UTC)
    assert ann.channel == existing_channel
    podcast = AcquisitionChannel.objects.get(code="podcast-ads")
    assert podcast.name == "Podcast Ads"
    assert set(podcast.customers.values_list("external_id", flat=True)) == {"C2", "C3"}


def test_customers_rerun_is_idempotent_and_updates_fields(csv_file):
    path = csv_file(CUSTOMERS_HEADER + "C1,ann@example.com,Ann,Lee,,DE,,Web\nC2,bob@example.com,Bob,,,,,\n")
    import_csv(kind="customers", file=path)
    again = import_csv(kind="customers", file=path)
    assert (again.created, again.updated, again.unchanged, again.channels_created) == (0, 0, 2, 0)

    changed = csv_file("customer_id,email,last_name,country\nC1,ANN@example.com,Smith,\nC2,robert@example.com,,FR\n")
    result = import_csv(kind="customers", file=changed)

    assert (result.created, result.updated) == (0, 2)
    ann, bob = Customer.objects.get(external_id="C1"), Customer.objects.get(external_id="C2")
    # Empty cells and absent columns keep what was there.
    assert (ann.first_name, ann.last_name, ann.country, ann.channel.code) == ("Ann", "Smith", "DE", "web")
    assert (bob.email, bob.country) == ("robert@example.com", "FR")
    assert Customer.objects.count() == 2


def test_email_of_another_customer_is_rejected_not_crashing(csv_file):
    CustomerFactory(external_id="OTHER", email="Taken@Example.com")
    own = CustomerFactory(external_id="C2", email="Mine@Example.com")
    path = csv_file(
        CUSTOMERS_HEADER
        + "C1,taken@example.com,Ann,,,,,\n"
        + "C2,mine@example.com,Own,,,,,\n"  # the customer's own e-mail, other case: fine
        + "C3,new@example.com,Cy,,,,,\n"
    )

    result = import_csv(kind="customers", file=path)

    assert reasons(result) == {2: "email: already used by another customer (OTHER)."}
    assert not Customer.objects.filter(external_id="C1").exists()
    own.refresh_from_db()
    assert (own.email, own.first_name) == ("mine@example.com", "Own")
    assert Customer.objects.filter(external_id="C3").exists()


def test_same_email_twice_in_one_file_is_rejected(csv_file):
    path = csv_file(CUSTOMERS_HEADER + "C1,ann@example.com,,,,,,\nC2,ANN@example.com,,,,,,\n")
    result = import_csv(kind="customers", file=path)
    assert reasons(result) == {3: "email: already used by customer_id C1 on line 2."}
    assert Customer.objects.get().external_id == "C1"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("C9,not-an-email,,,,,,", "email: 'not-an-email' is not a valid e-mail address."),
        ("C9,,,,,,,", "email is missing."),
        ("C9,z@example.com,,,,DEU,,", "country: 'DEU' is not a two-letter country code"),
        ("C9,z@example.com,,,,,yesterday,", "signed_up_at: 'yesterday' is not an ISO date"),
        ("C9,z@example.com,,,,,,!!!", "channel: '!!!' has no letters or digits"),
        ("C9,z@example.com," + "n" * 101 + ",,,,,", "first_name is longer than 100 characters."),
    ],
)
def test_bad_customer_rows(csv_file, row, reason):
    result = import_csv(kind="customers", file=csv_file(CUSTOMERS_HEADER + row + "\nC1,a@example.com,,,,,,\n"))
    assert list(reasons(result)) == [2]
    assert reasons(result)[2].startswith(reason)
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["C1"]


# --- events ---------------------------------------------------------------------------------------


def test_events_are_upserted_by_natural_key(csv_file):
    customer = CustomerFactory(external_id="C1")
    path = csv_file(
        EVENTS_HEADER
        + 'C1,login,2024-03-05T10:00:00Z,"{""device"": ""ios""}"\n'
        + "C1,login,2024-03-05T11:00:00Z,\n"
        + 'C7,page_view,2024-03-05,"{""path"": ""/pricing""}"\n'
    )
    result = import_csv(kind="events", file=path)
    assert (result.created, result.customers_created) == (3, 1)
    first = ActivityEvent.objects.get(customer=customer, occurred_at=dt.datetime(2024, 3, 5, 10, tzinfo=UTC))
    assert first.properties == {"device": "ios"}
    assert ActivityEvent.objects.get(customer=customer, occurred_at__hour=11).properties == {}
    assert ActivityEvent.objects.get(customer__external_id="C7").properties == {"path": "/pricing"}

    again = import_csv(kind="events", file=path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)

    changed = csv_file(EVENTS_HEADER + 'C1,login,2024-03-05T10:00:00Z,"{""device"": ""android""}"\n')
    result = import_csv(kind="events", file=changed)
    assert (result.created, result.updated) == (0, 1)
    first.refresh_from_db()
    assert first.properties == {"device": "android"}
    assert ActivityEvent.objects.count() == 3


def test_events_imported_before_are_recognised(csv_file):
    event = EventFactory(customer__external_id="C1", name="login", occurred_at=dt.datetime(2024, 1, 1, tzinfo=UTC), properties={"a": 1})
    result = import_csv(kind="events", file=csv_file(EVENTS_HEADER + 'C1,login,2024-01-01,"{""a"": 1}"\n'))
    assert (result.created, result.updated, result.unchanged) == (0, 0, 1)
    assert ActivityEvent.objects.get() == event


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("C1,login,2024-03-05,{not json}", "properties: not valid JSON."),
        ('C1,login,2024-03-05,"[1, 2]"', "properties: must be a JSON object"),
        ("C1,login,2024-03-05,NaN", "properties: not valid JSON."),
        ("C1,login,,", "occurred_at is missing."),
        ("C1,,2024-03-05,", "event is missing."),
        ('C1,login,2024-03-05,"{""a"": 1}"', "duplicate customer_id, event, occurred_at, first seen on line 2."),
    ],
)
def test_bad_event_rows(csv_file, row, reason):
    path = csv_file(EVENTS_HEADER + "C1,login,2024-03-05T00:00:00,\n" + row + "\n")
    result = import_csv(kind="events", file=path)
    assert list(reasons(result)) == [3]
    assert reasons(result)[3].startswith(reason)
    assert ActivityEvent.objects.count() == 1


# --- the file as a whole --------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf"])
def test_empty_file_is_one_clear_error(csv_file, content):
    with pytest.raises(ImportFileError, match=r"The file is empty\."):
        import_csv(kind="orders", file=csv_file(content))


def test_header_only_imports_nothing_without_error(csv_file):
    result = import_csv(kind="orders", file=csv_file(ORDERS_HEADER))
    assert result.summary()["rows"] == 0
    assert not result.rejected


def test_utf8_bom_just_works(csv_file):
    content = "\ufeff" + CUSTOMERS_HEADER + "C1,zoe@example.com,Zoë,Müller,,,,\n"
    result = import_csv(kind="customers", file=csv_file(content.encode("utf-8")))
    assert result.created == 1
    assert Customer.objects.get().last_name == "Müller"


@pytest.mark.parametrize(("delimiter", "label"), [(";", "';'"), ("\t", "tab"), ("|", "'|'")])
def test_wrong_delimiter_is_named(csv_file, delimiter, label):
    content = ORDERS_HEADER.replace(",", delimiter) + f"C1{delimiter}O1{delimiter}2024-01-01{delimiter}1{delimiter}{delimiter}\n"
    with pytest.raises(ImportFileError) as error:
        import_csv(kind="orders", file=csv_file(content))
    assert error.value.message == f"The file seems to use {label} as delimiter; expected ','."


def test_missing_required_columns_are_listed(csv_file):
    with pytest.raises(ImportFileError) as error:
        import_csv(kind="orders", file=csv_file("customer_id,amount\nC1,1\n"))
    assert error.value.message.startswith("The header misses the required column(s) order_id.")


def test_events_need_occurred_at_column(csv_file):
    with pytest.raises(ImportFileError, match="occurred_at"):
        import_csv(kind="events", file=csv_file("customer_id,event\nC1,login\n"))


NOT_UTF8 = "The row contains bytes that are not valid UTF-8; save the file as UTF-8."


@pytest.mark.parametrize("position", ["early", "late"])
def test_non_utf8_bytes_reject_their_row_wherever_they_are(csv_file, position):
    """One rule, as the README says: a row with bytes that are not UTF-8 is rejected and the rest kept,
    whether it is in the first 64 KiB of the file (once: the whole file was refused) or later."""
    good = [f"C{n},c{n}@example.com,Ana,,,,,\n".encode() for n in range(HEAD_BYTES // 25 if position == "late" else 3)]
    bad = "C-bad,jose@example.com,José,,,,,\n".encode("latin-1")
    content = CUSTOMERS_HEADER.encode() + b"".join(good) + bad + b"C-last,last@example.com,,,,,,\n"
    result = import_csv(kind="customers", file=csv_file(content))
    assert reasons(result) == {len(good) + 2: NOT_UTF8}
    assert "Jos\ufffd" in result.rejected[0].raw
    assert result.created == len(good) + 1
    assert Customer.objects.filter(external_id="C-last").exists()


def test_a_header_that_is_not_utf8_refuses_the_file(csv_file):
    content = "customer_id,email,prénom\nC1,a@example.com,José\n".encode("latin-1")
    with pytest.raises(ImportFileError) as error:
        import_csv(kind="customers", file=csv_file(content))
    assert "byte 0xe9 in the header row is not valid UTF-8" in error.value.message
    assert not Customer.objects.exists()


def test_non_utf8_bytes_late_in_a_big_file_reject_only_their_row(csv_file):
    rows = [f"C1,O{n},2024-03-05,1.00,,\n".encode() for n in range(HEAD_BYTES // 20)]
    bad_line = len(rows) + 2
    content = ORDERS_HEADER.encode() + b"".join(rows) + b"C1,O-\xe9,2024-03-05,1.00,,\nC1,O-last,2024-03-05,1,,\n"

    result = import_csv(kind="orders", file=csv_file(content))

    assert reasons(result) == {bad_line: "The row contains bytes that are not valid UTF-8; save the file as UTF-8."}
    assert "O-\ufffd" in result.rejected[0].raw
    assert result.created == len(rows) + 1


def test_duplicate_header_column_is_refused(csv_file):
    with pytest.raises(ImportFileError, match="order_id appears twice"):
        import_csv(kind="orders", file=csv_file("customer_id,order_id,order_id\nC1,O1,O2\n"))


def test_unknown_kind_is_a_domain_error(csv_file):
    with pytest.raises(DomainError, match="Unknown import kind"):
        import_csv(kind="invoices", file=csv_file(ORDERS_HEADER))


def test_import_kinds_describe_columns():
    assert IMPORT_KINDS["orders"]["required"] == ("customer_id", "order_id")
    assert "status" in IMPORT_KINDS["orders"]["optional"]
    assert set(IMPORT_KINDS) == {"customers", "orders", "events"}


def test_open_binary_file_is_accepted(csv_file):
    result = import_csv(kind="orders", file=io.BytesIO((ORDERS_HEADER + "C1,O1,2024-01-01,1,,\n").encode()))
    assert result.created == 1


# --- management commands --------------------------------------------------------------------------


def run(command, *args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(command, *map(str, args), stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue() + str(exc)
    return 0, out.getvalue(), err.getvalue()


def test_command_success_prints_summary_and_exits_zero(csv_file):
    code, out, err = run("import_orders", csv_file(ORDERS_HEADER + "C1,O1,2024-01-01,1,,\n"))
    assert code == 0
    assert "1 rows: 1 created, 0 updated, 0 unchanged, 0 rejected." in out
    assert "1 new customers created from customer_id." in out
    assert err == ""


def test_command_prints_rejected_rows_and_exits_one(csv_file):
    path = csv_file(EVENTS_HEADER + "C1,login,2024-01-01,\nC1,login,2024-01-02,[]\n")
    code, out, err = run("import_events", path)
    assert code == 1
    assert "line 3: properties: must be a JSON object" in err
    assert "1 row(s) rejected; the other rows were imported." in err
    assert "2 rows: 1 created, 0 updated, 0 unchanged, 1 rejected." in out
    assert ActivityEvent.objects.count() == 1


def test_command_bad_file_exits_two_with_one_message(csv_file):
    code, out, err = run("import_customers", csv_file("customer_id;email\nC1;a@example.com\n"))
    assert code == 2
    assert err == "The file seems to use ';' as delimiter; expected ','."
    assert out == ""


def test_command_missing_file(tmp_path):
    code, _out, err = run("import_orders", tmp_path / "nope.csv")
    assert code == 2
    assert "No such file" in err


def test_command_progress_bar_on_request(csv_file, capsys):
    path = csv_file(ORDERS_HEADER + "C1,O1,2024-01-01,1,,\n")
    call_command("import_orders", str(path), "--progress", stdout=io.StringIO())
    assert "100%" in capsys.readouterr().err
    call_command("import_orders", str(path), "--no-progress", stdout=io.StringIO())
    assert capsys.readouterr().err == ""


def test_backslashes_tabs_and_newlines_in_values_survive(csv_file):
    path = csv_file(
        CUSTOMERS_HEADER
        + 'C1,a@example.com,"Back\\slash","Tab\there",,,,\n'
        + 'C2,b@example.com,"Two\nlines","\\N",,,,\n'
    )
    result = import_csv(kind="customers", file=path)
    assert result.created == 2
    names = dict(Customer.objects.values_list("external_id", "first_name"))
    assert names == {"C1": "Back\\slash", "C2": "Two\nlines"}
    assert Customer.objects.get(external_id="C1").last_name == "Tab\there"
    assert Customer.objects.get(external_id="C2").last_name == "\\N"
