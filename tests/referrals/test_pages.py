"""The referral pages: the portal's overview (code and link created on first view, masked referee
names, rewards with claim buttons) and home card; the staff dashboard, referrals list with filters,
a referral's page, the review queue, the payout list with "mark paid" (Manager, idempotent) and the
customer page's panel, with their query counts bounded and their roles enforced."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from referrals.models import Payout, Referral, ReferralCode, ShareVisit
from referrals.selectors import name_masked, programme_figures
from referrals.services.claims import reward_claim
from referrals.services.codes import referral_code_for
from referrals.services.payouts import payout_mark_paid
from tests.factories import CustomerFactory
from tests.portal.conftest import portal_login_as
from tests.referrals.ui_helpers import make_referral, make_reward

pytestmark = pytest.mark.django_db


def _queries(client, url) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    return len(ctx.captured_queries), response.content.decode()


def test_names_are_masked_to_initials():
    assert name_masked("Jane", "Doe") == "J*** D."
    assert name_masked("Jane", "") == "J***"
    assert name_masked("", "") == "***"


# The portal.


def test_the_portal_page_creates_the_code_and_shows_the_link_referrals_and_rewards(client):
    customer = CustomerFactory(first_name="Ann")
    assert not ReferralCode.objects.filter(customer=customer).exists()
    portal_login_as(client, customer)
    _n, page = _queries(client, reverse("portal:referrals:overview"))
    code = ReferralCode.objects.get(customer=customer).code
    assert f'data-testid="referral-code">{code}<' in page
    assert f'value="http://testserver/r/{code}/"' in page or f"/r/{code}/" in page
    assert "referrals/share.js" in page
    assert "Nobody has signed up with your code yet." in page
    # A second view keeps the same code.
    client.get(reverse("portal:referrals:overview"))
    assert ReferralCode.objects.filter(customer=customer).count() == 1


def test_the_portal_lists_referrals_with_masked_names_and_rewards_with_claim_buttons(client):
    customer = CustomerFactory()
    make_referral(referrer=customer, referee=CustomerFactory(first_name="Jane", last_name="Doe"), state="held")
    cash = make_reward(customer, kind="cash")
    points = make_reward(customer, kind="points", state="claimed")
    discount = make_reward(customer, kind="discount", role="referee")
    portal_login_as(client, customer)
    url = reverse("portal:referrals:overview")
    few, page = _queries(client, url)
    assert "J*** D." in page and "Jane" not in page and "Doe" not in page
    assert f'data-testid="claim-{cash.pk}"' in page
    assert f'data-testid="claim-{points.pk}"' not in page  # claimed already
    assert f'data-testid="claim-{discount.pk}"' not in page and discount.discount_code in page
    for _ in range(5):
        make_referral(referrer=customer)
        make_reward(customer, kind="cash")
    many, _page = _queries(client, url)
    assert many == few


def test_the_portal_does_not_show_another_customers_referrals_or_rewards(client):
    customer, other = CustomerFactory(), CustomerFactory()
    make_referral(referrer=other, referee=CustomerFactory(first_name="Zed", last_name="Quux"))
    reward = make_reward(other, kind="cash")
    portal_login_as(client, customer)
    page = client.get(reverse("portal:referrals:overview")).content.decode()
    assert "Z*** Q." not in page and f"reward-{reward.pk}" not in page


def test_the_portal_home_shows_the_referral_card(client):
    customer = CustomerFactory()
    make_reward(customer, kind="cash")
    make_reward(customer, kind="discount", role="referee")
    portal_login_as(client, customer)
    page = client.get(reverse("portal:home")).content.decode()
    assert "1 reward to claim" in page and reverse("portal:referrals:overview") in page


# Staff pages.


def _programme_rows():
    referrer = CustomerFactory(first_name="Top", last_name="Referrer")
    code = referral_code_for(customer_id=referrer.pk)
    ShareVisit.objects.create(code=code, day=timezone.localdate(), visits=40)
    approved = make_referral(referrer=referrer, state="approved")
    make_referral(referrer=referrer, state="flagged", verdict="review", risk_score=45,
                  review_deadline=timezone.now() - timedelta(hours=1),
                  signals=[{"code": "same_device", "weight": 40, "action": "flag", "detail": {}}])
    make_referral(referrer=referrer, state="rejected", verdict="rejected")
    make_referral(referrer=referrer, state="qualified", qualified_at=timezone.now())
    reward = make_reward(referrer, kind="cash", referral=approved)
    return referrer, reward


def test_dashboard_figures_count_states_funnel_budget_top_and_flags():
    referrer, reward = _programme_rows()
    reward_claim(reward_id=reward.pk, customer_id=referrer.pk)
    figures = programme_figures()
    by_state = {row["state"]: row["count"] for row in figures["states"]}
    assert (by_state["approved"], by_state["flagged"], by_state["rejected"], by_state["qualified"]) == (1, 1, 1, 1)
    assert figures["funnel"]["visits"] == 40 and figures["funnel"]["signups"] == 4
    assert figures["funnel"]["qualified"] == 2  # the approved one and the qualified one
    assert figures["budget"]["requested"] == Decimal("12.50") and figures["budget"]["requested_n"] == 1
    top = figures["top"][0]
    assert top["referrer_id"] == referrer.pk and top["total"] == 4 and top["approved"] == 1 and top["name"] == "Top Referrer"
    assert figures["flags"][-1]["review"] == 1 and figures["flags"][-1]["rejected"] == 1


def test_dashboard_renders_with_charts_and_links_and_a_fixed_query_count(client, agent):
    _programme_rows()
    client.force_login(agent)
    url = reverse("referrals:dashboard")
    client.get(url)  # the first request of a session loads more (the user, the programme row)
    few, page = _queries(client, url)
    assert 'data-chart="chart-ref-states"' in page and 'id="chart-ref-flags"' in page
    assert "vendor/chartjs/chart.umd.min.js" in page
    assert f'{reverse("referrals:list")}?state=flagged' in page
    assert "Top Referrer" in page
    for _ in range(3):
        _programme_rows()
    many, _page = _queries(client, url)
    assert many == few


def test_staff_pages_need_a_login_and_a_role(client, no_role_user):
    for name in ("referrals:dashboard", "referrals:list", "referrals:review", "referrals:payouts"):
        assert client.get(reverse(name)).status_code == 302
    client.force_login(no_role_user)
    for name in ("referrals:dashboard", "referrals:list", "referrals:review", "referrals:payouts"):
        assert client.get(reverse(name)).status_code == 403


def test_the_list_filters_by_state_verdict_and_referrer_and_pages(client, agent):
    referrer, _reward = _programme_rows()
    other = make_referral(state="flagged")
    client.force_login(agent)
    url = reverse("referrals:list")
    page = client.get(url, {"state": "flagged"}).content.decode()
    assert page.count("<tr data-referral") == 2
    page = client.get(url, {"state": "flagged", "referrer": referrer.pk}).content.decode()
    assert page.count("<tr data-referral") == 1 and f'data-referral="{other.pk}"' not in page
    page = client.get(url, {"verdict": "rejected"}).content.decode()
    assert page.count("<tr data-referral") == 1
    assert client.get(url, {"state": "nonsense"}).status_code == 200
    for _ in range(50):
        make_referral()
    _count, page = _queries(client, url)
    assert page.count("<tr data-referral") == 50 and "before=" in page


def test_the_referral_page_shows_signals_and_history(client, agent):
    referral = make_referral(state="flagged", risk_score=40,
                             signals=[{"code": "ip_burst", "weight": 40, "action": "flag", "detail": {"count": 9}}])
    from referrals.models import ReferralEvent

    ReferralEvent.objects.create(referral=referral, from_state="pending", to_state="flagged", actor="system", reason="risk 40")
    client.force_login(agent)
    page = client.get(reverse("referrals:detail", args=[referral.pk])).content.decode()
    assert "Many sign-ups from one IP address" in page and "weight 40" in page and "risk 40" in page
    assert 'data-testid="decide-' not in page  # an Agent reads only
    assert client.get(reverse("referrals:detail", args=[999999])).status_code == 404


def test_the_review_queue_shows_signals_weights_and_overdue_and_forms_only_to_managers(client, agent, manager):
    _programme_rows()
    later = make_referral(state="flagged", review_deadline=timezone.now() + timedelta(days=2))
    client.force_login(agent)
    page = client.get(reverse("referrals:review")).content.decode()
    assert page.count("<tr data-referral") == 2
    assert "Same IP and user agent or device as the referrer" in page and "weight 40" in page
    assert page.count('data-testid="overdue"') == 1
    assert page.index("weight 40") < page.index(f'data-referral="{later.pk}"')  # nearest deadline first
    assert 'data-testid="decide-' not in page
    client.force_login(manager)
    page = client.get(reverse("referrals:review")).content.decode()
    assert f'data-testid="decide-{later.pk}"' in page


def test_review_decisions_need_a_manager(client, agent):
    referral = make_referral(state="flagged")
    client.force_login(agent)
    response = client.post(reverse("referrals:review_decide", args=[referral.pk]), {"decision": "approve", "note": "ok"})
    assert response.status_code == 403
    referral.refresh_from_db()
    assert referral.state == "flagged"


def test_payouts_list_and_mark_paid_by_a_manager_once(client, agent, manager):
    customer = CustomerFactory()
    reward = make_reward(customer, kind="cash")
    payout = reward_claim(reward_id=reward.pk, customer_id=customer.pk).payout
    client.force_login(agent)
    page = client.get(reverse("referrals:payouts"), {"state": "requested"}).content.decode()
    assert f'data-payout="{payout.pk}"' in page and 'name="reference"' not in page
    url = reverse("referrals:payout_paid", args=[payout.pk])
    assert client.post(url, {"reference": "BANK-1"}).status_code == 403
    client.force_login(manager)
    assert 'name="reference"' in client.get(reverse("referrals:payouts")).content.decode()
    for _ in range(2):  # a double submit
        assert client.post(url, {"reference": "BANK-1"}).status_code == 302
    payout.refresh_from_db()
    assert (payout.state, payout.reference, payout.paid_by_id) == ("paid", "BANK-1", manager.pk)
    page = client.get(reverse("referrals:payouts"), {"state": "paid"}, follow=True).content.decode()
    assert "BANK-1" in page
    assert client.post(reverse("referrals:payout_paid", args=[999999]), {"reference": "x"}).status_code == 404


def test_mark_paid_is_idempotent_and_refuses_a_second_reference(manager):
    from core.exceptions import DomainError

    customer = CustomerFactory()
    payout = reward_claim(reward_id=make_reward(customer, kind="cash").pk, customer_id=customer.pk).payout
    with pytest.raises(DomainError):
        payout_mark_paid(payout_id=payout.pk, staff=manager, reference="  ")
    assert payout_mark_paid(payout_id=payout.pk, staff=manager, reference="R1").changed
    again = payout_mark_paid(payout_id=payout.pk, staff=manager, reference="R1")
    assert not again.changed and again.payout.paid_at is not None
    with pytest.raises(DomainError):
        payout_mark_paid(payout_id=payout.pk, staff=manager, reference="R2")
    Payout.objects.filter(pk=payout.pk).update(state="cancelled")
    fresh = reward_claim(reward_id=make_reward(customer, kind="cash").pk, customer_id=customer.pk).payout
    Payout.objects.filter(pk=fresh.pk).update(state="cancelled")
    with pytest.raises(DomainError):
        payout_mark_paid(payout_id=fresh.pk, staff=manager, reference="R3")


def test_the_customer_panel_shows_code_referrals_referrer_and_rewards_with_fixed_queries(client, agent):
    customer = CustomerFactory()
    referrer = CustomerFactory(first_name="Rita", last_name="Ref")
    make_referral(referrer=referrer, referee=customer, state="approved")
    code = referral_code_for(customer_id=customer.pk)
    client.force_login(agent)
    url = reverse("customers:detail", args=[customer.pk])
    few, page = _queries(client, url)
    assert 'id="referrals-panel"' in page and code.code in page and "Rita Ref" in page
    for _ in range(4):
        referral = make_referral(referrer=customer, state="rewarded")
        make_reward(customer, kind="cash", referral=referral)
    many, page = _queries(client, url)
    assert many == few
    assert 'data-testid="panel-made">4<' in page and 'data-testid="panel-rewards"' in page
    assert Referral.objects.filter(referrer=customer).count() == 4


def test_a_manager_approves_and_rejects_from_the_queue_with_a_note(client, manager):
    approve_me = make_referral(state="flagged")
    reject_me = make_referral(state="flagged")
    client.force_login(manager)
    response = client.post(reverse("referrals:review_decide", args=[approve_me.pk]),
                           {"decision": "approve", "note": "known customer"}, follow=True)
    assert f"Referral #{approve_me.pk} approved." in response.content.decode()
    approve_me.refresh_from_db()
    assert approve_me.state == "pending"  # no qualifying order yet: back on the normal path
    event = approve_me.events.get(to_state="pending")
    assert event.staff_id == manager.pk and "known customer" in event.reason
    # A rejection needs its note; the queue says so and nothing changes.
    url = reverse("referrals:review_decide", args=[reject_me.pk])
    page = client.post(url, {"decision": "reject", "note": ""}, follow=True).content.decode()
    assert "Say why in a note." in page
    reject_me.refresh_from_db()
    assert reject_me.state == "flagged"
    client.post(url, {"decision": "reject", "note": "same card", "next": "detail"})
    reject_me.refresh_from_db()
    assert reject_me.state == "rejected"
    # Deciding again is refused with the reason, not a crash.
    page = client.post(url, {"decision": "approve", "note": ""}, follow=True).content.decode()
    assert "Only a referral flagged for review can be approved" in page
    assert client.post(reverse("referrals:review_decide", args=[999999]), {"decision": "approve"}).status_code == 404
