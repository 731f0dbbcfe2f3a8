"""The order feed moves referrals: first paid order -> qualified -> held; refunds void or claw back."""

import datetime as dt
from collections import namedtuple
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.models import OrderChange
from customers.services.orders import order_bulk_upsert
from loyalty.models import LedgerEntry
from loyalty.services.ledger import account_for_customer, points_earn
from referrals.models import Payout, Referral, Reward
from referrals.services.qualification import CHANGE_FIELDS, order_changes_handle, referrals_feed_consume
from referrals.services.review import referrer_suspend_if_due
from referrals.services.rewards import holds_release
from tests.factories import CustomerFactory, OrderFactory
from tests.loyalty.test_feed import consume
from tests.referrals.helpers import program_set, referral_make

Change = namedtuple("Change", ("id", *CHANGE_FIELDS))


def _change(order, *, old_status, new_status, at) -> Change:
    """A feed row as the feed hands it over: a real OrderChange (the handler reads the amount and
    time of the rows that touch a referral from the table), as a named tuple of CHANGE_FIELDS."""
    row = OrderChange.objects.create(
        order_id=order.pk, customer_id=order.customer_id, old_status=old_status, new_status=new_status,
        old_amount=order.amount if old_status else None, new_amount=order.amount, currency=order.currency,
        changed_at=at,
    )
    return Change(row.pk, *(getattr(row, field) for field in CHANGE_FIELDS))


def paid(order, *, at=None):
    return _change(order, old_status=None, new_status="paid", at=at or timezone.now())


def refunded(order, status="refunded"):
    return _change(order, old_status="paid", new_status=status, at=timezone.now())


def states(referral):
    return list(referral.events.values_list("from_state", "to_state"))


@pytest.mark.django_db
def test_the_first_paid_order_qualifies_and_holds_for_the_refund_window():
    program_set(hold_days=30, min_order_amount=Decimal("20.00"))
    referral = referral_make()
    order = OrderFactory(customer=referral.referee, amount=Decimal("60.00"))
    at = timezone.now() - dt.timedelta(hours=2)
    order_changes_handle([paid(order, at=at)])
    referral.refresh_from_db()
    assert referral.state == "held"
    assert (referral.qualifying_order_id, referral.order_amount, referral.qualified_at) == (order.pk, 60, at)
    assert referral.hold_until == at + dt.timedelta(days=30)
    assert states(referral) == [("pending", "qualified"), ("qualified", "held")]
    assert all(str(order.pk) in e.reason and e.actor == "system" for e in referral.events.all())
    # A second paid order changes nothing.
    order_changes_handle([paid(OrderFactory(customer=referral.referee, amount=Decimal("90.00")))])
    referral.refresh_from_db()
    assert referral.qualifying_order_id == order.pk


@pytest.mark.django_db
def test_a_first_order_below_the_minimum_rejects_without_counting_for_suspension():
    program_set(min_order_amount=Decimal("20.00"), suspend_after_rejections=1)
    referral = referral_make()
    order = OrderFactory(customer=referral.referee, amount=Decimal("19.99"))
    order_changes_handle([paid(order)])
    referral.refresh_from_db()
    assert referral.state == "rejected" and referral.qualifying_order_id is None
    assert referral.events.get().data["rule"] == "below_minimum"
    assert referrer_suspend_if_due(code_id=referral.code_id) is False


@pytest.mark.django_db
def test_the_minimum_itself_qualifies():
    program_set(min_order_amount=Decimal("20.00"))
    referral = referral_make()
    order_changes_handle([paid(OrderFactory(customer=referral.referee, amount=Decimal("20.00")))])
    assert Referral.objects.get(pk=referral.pk).state == "held"


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["held", "qualified", "flagged"])
@pytest.mark.parametrize("status", ["refunded", "cancelled"])
def test_a_refund_before_approval_voids_the_referral(state, status):
    referral = referral_make(state=state, hold_ended=False)
    order_changes_handle([refunded(referral.qualifying_order, status)])
    referral.refresh_from_db()
    assert referral.state == "void"
    assert states(referral) == [(state, "void")]
    assert not Reward.objects.exists()


@pytest.mark.django_db
def test_a_refund_of_another_order_or_a_pending_referral_changes_nothing():
    referral = referral_make(state="held", hold_ended=False)
    pending = referral_make()
    order_changes_handle([refunded(OrderFactory(customer=referral.referee)),
                          refunded(OrderFactory(customer=pending.referee))])
    assert Referral.objects.get(pk=referral.pk).state == "held"
    assert Referral.objects.get(pk=pending.pk).state == "pending"


@pytest.mark.django_db
def test_paid_then_refunded_in_one_batch_ends_void():
    referral = referral_make()
    order = OrderFactory(customer=referral.referee, amount=Decimal("50.00"))
    order_changes_handle([paid(order), refunded(order)])
    assert Referral.objects.get(pk=referral.pk).state == "void"


def _rewarded(**program):
    program_set(referrer_reward="cash_percent", referrer_percent=10, referrer_cash_cap=None, referee_reward="discount",
                **program)
    referral = referral_make(state="held", amount="100.00")
    assert holds_release() == 1
    referral.refresh_from_db()
    assert referral.state == "rewarded"
    return referral


@pytest.mark.django_db
def test_a_refund_after_the_reward_claws_back_unclaimed_rewards_and_returns_the_budget():
    referral = _rewarded(budget_total=Decimal("1000.00"))
    assert program_set().budget_spent == Decimal("20.00")  # 10 cash + a 10% discount on 100
    order_changes_handle([refunded(referral.qualifying_order)])
    referral.refresh_from_db()
    assert referral.state == "clawed_back"
    assert set(referral.rewards.values_list("state", flat=True)) == {"clawed_back"}
    assert program_set().budget_spent == 0
    event = referral.events.last()
    assert (event.from_state, event.to_state, event.actor) == ("rewarded", "clawed_back", "system")
    assert str(referral.qualifying_order_id) in event.reason


@pytest.mark.django_db
def test_a_clawback_cancels_an_unpaid_payout_and_records_a_paid_one():
    first = _rewarded()
    second = referral_make(referrer=first.referrer, state="held", amount="50.00")
    holds_release()
    for referral, payout_state in ((first, "requested"), (second, "paid")):
        reward = Reward.objects.get(referral=referral, role="referrer")
        Reward.objects.filter(pk=reward.pk).update(state="claimed", claimed_at=timezone.now())
        Payout.objects.create(reward=reward, customer_id=reward.customer_id, amount=reward.amount,
                              currency=reward.currency, state=payout_state)
    order_changes_handle([refunded(first.qualifying_order), refunded(Referral.objects.get(pk=second.pk).qualifying_order)])
    assert list(Payout.objects.order_by("reward__referral_id").values_list("state", flat=True)) == ["cancelled", "paid"]
    assert set(Reward.objects.filter(role="referrer").values_list("state", flat=True)) == {"clawed_back"}
    last = Referral.objects.get(pk=second.pk).events.last()
    assert {"reward": Reward.objects.get(referral=second, role="referrer").pk, "was": "claimed", "payout": "paid"} in last.data["rewards"]


@pytest.mark.django_db
def test_a_claimed_points_reward_is_taken_back_through_the_loyalty_ledger_once():
    program_set(referrer_reward="points", referrer_points=500, referee_reward="none")
    referral = referral_make(state="held")
    holds_release()
    reward = Reward.objects.get(referral=referral)
    account = account_for_customer(customer_id=referral.referrer_id)
    points_earn(customer_id=referral.referrer_id, points=500, idempotency_key=f"claim:{reward.pk}", source="referral")
    Reward.objects.filter(pk=reward.pk).update(state="claimed")
    change = refunded(Referral.objects.get(pk=referral.pk).qualifying_order)
    order_changes_handle([change])
    order_changes_handle([change])  # handled twice: reversed once
    entries = LedgerEntry.objects.filter(account=account, kind="adjust")
    assert list(entries.values_list("points", "idempotency_key")) == [(-500, f"referral-reward:{reward.pk}:clawback")]
    account.refresh_from_db()
    assert account.balance == 0


@pytest.mark.django_db(transaction=True)
def test_orders_written_by_the_import_reach_referrals_through_the_feed():
    program_set(min_order_amount=Decimal("20.00"))
    referral = referral_make()
    other = CustomerFactory()
    items = [
        {"external_id": f"R{n}", "customer": customer.pk, "ordered_at": timezone.now() - dt.timedelta(days=1),
         "amount": Decimal(amount), "currency": "USD", "status": "paid"}
        for n, (customer, amount) in enumerate([(other, "500.00"), (referral.referee, "30.00"), (referral.referee, "80.00")])
    ]
    order_bulk_upsert(items=items)
    consume(3, run=referrals_feed_consume)
    referral.refresh_from_db()
    assert referral.state == "held" and referral.order_amount == Decimal("30.00")
    assert referrals_feed_consume() == 0


@pytest.mark.django_db
def test_a_batch_costs_queries_per_referral_moved_not_per_order(django_assert_max_num_queries):
    program_set(min_order_amount=Decimal("20.00"))
    referrals = [referral_make() for _ in range(3)]
    others = [OrderFactory() for _ in range(5)]
    # 6,000 changes of customers nobody referred, then the three referees' first orders.
    changes = [paid(others[n % 5]) for n in range(6000)]
    changes += [paid(OrderFactory(customer=r.referee, amount=Decimal("50.00"))) for r in referrals]
    changes += [refunded(others[0])] * 2000
    # One look-up for the paid, one for the refunds, the programme and the fraud rules once, the
    # order and sign-up times of the referees paid (one each), and per referral moved two
    # transitions (an UPDATE and an INSERT each) plus the fast-order signal's UPDATE (they ordered
    # at once).
    with django_assert_max_num_queries(1 + 1 + 2 + 2 + 3 * 5):
        order_changes_handle(changes)
    assert set(Referral.objects.values_list("state", flat=True)) == {"held"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "minutes_after_signup, weight, review_score, state",
    [(60, 20, 30, "held"), (2, 20, 30, "held"), (2, 40, 30, "flagged"), (4.9, 40, 30, "flagged"), (5, 40, 30, "held")],
)
def test_an_implausibly_fast_first_order_adds_its_signal_and_may_send_the_referral_to_review(
    minutes_after_signup, weight, review_score, state
):
    from referrals.models import FraudRule

    FraudRule.objects.filter(code="fast_order").update(threshold=5, weight=weight, action="flag", enabled=True)
    program_set(review_score=review_score, review_deadline_hours=72)
    signed_up = timezone.now() - dt.timedelta(hours=1)
    referral = referral_make()
    type(referral.referee).objects.filter(pk=referral.referee_id).update(signed_up_at=signed_up)
    order = OrderFactory(
        customer=referral.referee, amount=Decimal("60.00"),
        ordered_at=signed_up + dt.timedelta(minutes=minutes_after_signup),
    )
    order_changes_handle([paid(order)])
    referral.refresh_from_db()
    assert referral.state == state
    fast = [s for s in referral.signals if s["code"] == "fast_order"]
    assert bool(fast) is (minutes_after_signup < 5)
    if fast:
        assert fast[0]["weight"] == weight and referral.risk_score >= weight
    if state == "flagged":
        assert referral.verdict == "review" and referral.review_deadline is not None
        assert referral.hold_until is not None  # its refund window is kept for the approval


@pytest.mark.django_db
def test_a_fast_order_rule_set_to_reject_rejects_at_qualification():
    from referrals.models import FraudRule

    FraudRule.objects.filter(code="fast_order").update(threshold=5, action="reject", enabled=True)
    referral = referral_make()
    type(referral.referee).objects.filter(pk=referral.referee_id).update(signed_up_at=timezone.now())
    order_changes_handle([paid(OrderFactory(customer=referral.referee, amount=Decimal("60.00"), ordered_at=timezone.now()))])
    referral.refresh_from_db()
    assert (referral.state, referral.verdict) == ("rejected", "rejected")
    assert referral.events.last().data["rule"] == "fast_order"
