"""The shared pages show what the apps registered (core.registry): the customer page's panels with
their data loaded by the view (its query count fixed with every panel on), the job kinds' labels,
the navigation by role, and the home page's sections; and core imports no feature app."""

import ast
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core import registry
from core.models import Job
from core.views_jobs import job_kind_label, job_result_items
from lifecycle.models import CustomerValue
from referrals.services.claims import reward_claim
from tests.factories import CustomerFactory, NoteFactory, OrderFactory, TaskFactory
from tests.referrals.ui_helpers import make_referral, make_reward

pytestmark = pytest.mark.django_db

FEATURE_APPS = {"customers", "lifecycle", "loyalty", "referrals", "feedback", "messaging", "portal"}


def test_core_imports_no_feature_app():
    """core points down only: a feature app plugs in through the registry, never the other way."""
    offenders = []
    for path in (Path(settings.BASE_DIR) / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FEATURE_APPS]
    assert offenders == []


def test_the_apps_registered_their_pieces():
    assert "value" in [panel.key for panel in registry.customer_panels()]
    keys = [s.key for s in registry.home_sections()]
    assert keys.index("figures") < keys.index("charts")  # a banner (messaging's pause) may come first
    assert {"import_customers", "import_orders", "import_events"} <= {
        kind for kind in ("import_customers", "import_orders", "import_events") if registry.job_kind(kind)
    }
    assert [item.key for item in registry.nav_items()][:4] == ["home", "customers", "import", "value"]


def test_job_page_labels_come_from_the_kind():
    job = Job(kind="import_orders", result={"rejected": 2, "rows": 10, "mystery_count": 1, "ok": True})
    assert job_kind_label(job) == "Order import"
    assert job_result_items(job) == [("rows", "Rows read", 10), ("rejected", "Rejected", 2), ("mystery_count", "mystery count", 1)]
    assert job_kind_label(Job(kind="unknown_kind")) == "unknown_kind"


def _detail_queries(client, customer) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("customers:detail", args=[customer.pk]))
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode()


def test_customer_page_queries_are_fixed_with_every_panel_on(client, manager):
    """Every registered panel loads its data through the view; more data never means more queries."""
    client.force_login(manager)
    customer = CustomerFactory()
    CustomerValue.objects.create(
        customer=customer, historic_value=Decimal("12.50"), formula_clv=Decimal("40.00"), computed_at=timezone.now()
    )
    few, html = _detail_queries(client, customer)
    assert "Formula CLV</dt><dd>USD\xa040.00" in html  # the value panel's data is there
    for _ in range(5):
        OrderFactory(customer=customer)
        NoteFactory(customer=customer)
        TaskFactory(customer=customer)
        # The referrals panel: referrals made, their rewards (and payouts), who referred the customer.
        referral = make_referral(referrer=customer, state="rewarded")
        reward_claim(reward_id=make_reward(customer, kind="cash", referral=referral).pk, customer_id=customer.pk)
    make_referral(referee=customer, state="approved")
    many, html = _detail_queries(client, customer)
    assert 'id="referrals-panel"' in html and 'data-testid="panel-made">5<' in html
    assert many == few
    assert len(registry.customer_panels()) >= 1


def test_a_registered_panel_shows_and_a_none_hides(client, manager, settings):
    calls = []

    def load(*, customer, user):
        calls.append((customer.pk, user.pk))
        return {"greeting": f"Hello {customer.first_name}"} if user.is_superuser is False else None

    registry.register_customer_panel(key="test-panel", template="tests/panel.html", load=load, order=1)
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [*settings.TEMPLATES[0]["DIRS"], Path(__file__).parent / "templates"]}
    ]
    try:
        client.force_login(manager)
        customer = CustomerFactory(first_name="Ada")
        _count, html = _detail_queries(client, customer)
        assert "Hello Ada" in html and calls == [(customer.pk, manager.pk)]
        assert html.index("Hello Ada") < html.index('id="value-heading"')  # order 1 before the value panel
    finally:
        registry._customer_panels.pop("test-panel")


def test_navigation_follows_the_role(client, agent, manager):
    client.force_login(agent)
    html = client.get(reverse("customers:list")).content.decode()
    assert reverse("customers:list") in html and reverse("customers:import") not in html
    client.force_login(manager)
    html = client.get(reverse("customers:import")).content.decode()
    assert f'<a href="{reverse("customers:import")}" aria-current="page">' in html
    assert f'<a href="{reverse("customers:list")}" aria-current="page">' not in html
