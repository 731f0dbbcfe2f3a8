import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import Job, JobRejectedRow
from customers.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

URL = "/customers/import/"
HTMX = {"HTTP_HX_REQUEST": "true"}
CUSTOMERS_CSV = (
    b"customer_id,email,first_name,last_name,country\n"
    b"C1,ada@example.com,Ada,Lovelace,GB\n"
    b"C2,not-an-email,Bad,Email,DE\n"
    b"C3,grace@example.com,Grace,Hopper,US\n"
    b",nobody@example.com,No,Id,FR\n"
    b"C4,linus@example.com,Linus,Torvalds,FI\n"
)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _csv(content: bytes = CUSTOMERS_CSV, name: str = "customers.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def test_url_name():
    assert reverse("customers:import") == URL


def test_anonymous_is_sent_to_login(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_user_without_role_gets_403(client, no_role_user):
    client.force_login(no_role_user)
    assert client.get(URL).status_code == 403


def test_page_lists_kinds_with_their_expected_columns(client, manager):
    client.force_login(manager)
    response = client.get(URL)
    assert response.status_code == 200
    html = response.text
    for kind in ("customers", "orders", "events"):
        assert f'value="{kind}"' in html
    for column in ("customer_id", "email", "order_id", "amount", "occurred_at", "properties"):
        assert f"<code>{column}</code>" in html
    assert 'enctype="multipart/form-data"' in html


def test_agent_sees_the_page_and_the_jobs_but_no_upload_form(client, agent, manager):
    Job.objects.create(kind="import_orders", created_by=manager, params={"filename": "orders-may.csv"})
    client.force_login(agent)
    response = client.get(URL)
    assert response.status_code == 200
    assert 'type="file"' not in response.text
    assert "Only a Manager can start an import." in response.text
    assert "orders-may.csv" in response.text
    assert "Order import" in response.text


def test_agent_cannot_start_an_import(client, agent):
    client.force_login(agent)
    response = client.post(URL, {"kind": "customers", "file": _csv()})
    assert response.status_code == 403
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "customers"}, "Choose a CSV file to upload."),
        ({"kind": "customers", "file": _csv(b"", "empty.csv")}, "The submitted file is empty."),
        ({"kind": "customers", "file": _csv(b"  \n\n", "blank.csv")}, "The file is empty."),
        ({"kind": "customers", "file": _csv(b"customer_id,email\nC1,a@example.com\n", "data.xlsx")}, "Only .csv files can be imported."),
        ({"kind": "invoices", "file": _csv()}, "Select a valid choice."),
        ({"kind": "customers", "file": _csv(b"id;mail\n1;a@example.com\n")}, "delimiter"),
        ({"kind": "orders", "file": _csv()}, "The header misses the required column(s) order_id."),
    ],
    ids=["no-file", "zero-bytes", "blank", "not-csv", "unknown-kind", "semicolons", "wrong-columns"],
)
def test_bad_upload_is_a_form_error_and_starts_nothing(client, manager, media_root, data, message):
    # Each case gets a fresh upload object (parametrize builds them once).
    if "file" in data:
        data = {**data, "file": _csv(data["file"].read(), data["file"].name)}
    client.force_login(manager)
    response = client.post(URL, data)
    assert response.status_code == 400
    assert message in response.text
    assert not Job.objects.exists()
    assert not any(media_root.rglob("*.csv")), "a refused upload must not be stored"


def test_too_big_file_is_refused(client, manager, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 100
    client.force_login(manager)
    response = client.post(URL, {"kind": "customers", "file": _csv(CUSTOMERS_CSV + b"C9,x@example.com\n" * 10)})
    assert response.status_code == 400
    assert "the largest file you can import is 100\xa0bytes" in response.text
    assert not Job.objects.exists()


def test_manager_starts_an_import_and_the_job_page_shows_the_outcome(
    client, manager, django_capture_on_commit_callbacks
):
    CustomerFactory(external_id="C3", email="grace@example.com", first_name="G", last_name="H")
    client.force_login(manager)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(URL, {"kind": "customers", "file": _csv()})
    assert len(callbacks) == 1  # the task is queued after commit, and ran eagerly here
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("job-detail", args=[job.pk])
    assert job.kind == "import_customers"
    assert job.created_by == manager
    assert job.status == Job.Status.SUCCEEDED
    assert job.params["filename"] == "customers.csv"
    assert set(Customer.objects.values_list("external_id", flat=True)) == {"C1", "C3", "C4"}
    assert list(JobRejectedRow.objects.filter(job=job).values_list("line", flat=True)) == [3, 5]

    page = client.get(response["Location"])
    html = page.text
    assert page.status_code == 200
    assert 'data-count="created">2<' in html
    assert 'data-count="updated">1<' in html
    assert 'data-count="rejected">2<' in html
    assert '<td class="num">3</td>' in html and "not-an-email" in html
    assert '<td class="num">5</td>' in html and "customer_id is missing." in html
    assert 'hx-trigger="every 1s"' not in html  # finished: no polling

    # The import page lists it among the recent imports.
    listing = client.get(URL).text
    assert f'href="{reverse("job-detail", args=[job.pk])}"' in listing
    assert "customers.csv" in listing


def test_queued_import_polls_until_it_is_done(client, manager, django_capture_on_commit_callbacks):
    """Without running the on-commit callbacks the job stays queued: the page polls; after the task runs
    the poll returns the finished component and stops."""
    client.force_login(manager)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(URL, {"kind": "customers", "file": _csv()})
    job = Job.objects.get()
    assert job.status == Job.Status.QUEUED
    page = client.get(response["Location"]).text
    assert 'hx-trigger="every 1s"' in page
    poll = client.get(reverse("job-progress", args=[job.pk]), **HTMX)
    assert 'hx-trigger="every 1s"' in poll.text
    assert "HX-Trigger" not in poll.headers

    callbacks[0]()  # the worker picks the task up
    poll = client.get(reverse("job-progress", args=[job.pk]), **HTMX)
    assert 'hx-trigger="every 1s"' not in poll.text
    assert 'value="100"' in poll.text
    assert "job-finished" in poll.headers["HX-Trigger"]
    result = client.get(reverse("job-detail", args=[job.pk]), **HTMX)
    assert result.text.lstrip().startswith('<section id="job-result"')
    assert "customer_id is missing." in result.text


def test_htmx_get_returns_the_recent_imports_fragment(client, agent):
    Job.objects.create(kind="import_customers", params={"filename": "a.csv"})
    Job.objects.create(kind="clv_recompute")  # not an import: not listed
    client.force_login(agent)
    response = client.get(URL, **HTMX)
    html = response.text
    assert html.lstrip().startswith('<section id="recent-imports"')
    assert "<html" not in html
    assert html.count("job-progress--") == 1


def test_recent_imports_queries_do_not_grow_with_jobs(client, agent, manager, django_assert_max_num_queries):
    client.force_login(agent)
    Job.objects.create(kind="import_customers", created_by=manager)
    client.get(URL)
    with CaptureQueriesContext(connection) as one:
        client.get(URL)
    for n in range(15):
        Job.objects.create(kind="import_orders", created_by=manager if n % 2 else agent)
    with django_assert_max_num_queries(len(one)):
        response = client.get(URL)
    assert response.text.count("job-progress--") == 16
