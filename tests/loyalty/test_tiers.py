"""Tier downgrades and the change preview, both set-based SQL: boundaries (exactly at a threshold,
a grace period ending now, a manual hold until today, one tier at a time), the same results as the
in-memory evaluations they replaced (tests/loyalty/reference.py) on varied members, and a number of
queries that does not grow with the members."""

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.transactions import rolled_back
from customers.models import Order
from loyalty.models import EarningRule, LedgerEntry, LoyaltyAccount, LoyaltyProgram, Tier, TierChange
from loyalty.services.earning import orders_earn
from loyalty.services.ledger import ledger_post, points_earn
from loyalty.services.preview import change_preview
from loyalty.services.program import program_get
from loyalty.services.refunds import order_refund_reverse
from loyalty.services.tiers import qualifying_values, tier_for, tiers_downgrade, tiers_upgrade
from tests.factories import CustomerFactory
from tests.loyalty.helpers import program_set
from tests.loyalty.reference import reference_change_preview, reference_tiers_downgrade, reference_tiers_upgrade

pytestmark = pytest.mark.django_db


def members_with(figures: list[int]) -> list[LoyaltyAccount]:
    """One member per figure, each with an order (10 days ago) earning that many points at 1 a unit
    (0: enrolled without orders); tiers are then set by the test, not by the upgrade."""
    customers = [CustomerFactory() for _ in figures]
    orders = Order.objects.bulk_create(
        Order(external_id=f"T{c.pk}", customer=c, ordered_at=timezone.now() - dt.timedelta(days=10), amount=Decimal(f),
              currency="USD", status="paid")
        for c, f in zip(customers, figures) if f
    )
    orders_earn(order_ids=[o.pk for o in orders])
    for customer in customers:
        LoyaltyAccount.objects.get_or_create(customer=customer)
    TierChange.objects.all().delete()  # the upgrades of the earning: not what a test looks at
    return [LoyaltyAccount.objects.get(customer=c) for c in customers]


def set_state(account, tier=None, due=None, held_until=None):
    LoyaltyAccount.objects.filter(pk=account.pk).update(tier=tier, downgrade_due_at=due, tier_held_until=held_until)


def state(account):
    account.refresh_from_db()
    return account.tier.name if account.tier else None, account.downgrade_due_at


# --- boundaries -----------------------------------------------------------------------------------


def test_exactly_at_the_threshold_keeps_the_tier(tiers):
    at, below = members_with([500, 499])
    set_state(at, tiers["Gold"])
    set_state(below, tiers["Gold"])
    now = timezone.now()
    assert tiers_downgrade(now=now) == {"scheduled": 1, "downgraded": 0, "cleared": 0}
    assert state(at) == ("Gold", None)
    assert state(below) == ("Gold", now + dt.timedelta(days=30))


def test_a_grace_period_ending_now_drops_and_one_ending_later_waits(tiers):
    ending, later = members_with([150, 150])
    now = timezone.now()
    set_state(ending, tiers["Gold"], due=now)
    set_state(later, tiers["Gold"], due=now + dt.timedelta(seconds=1))
    assert tiers_downgrade(now=now) == {"scheduled": 0, "downgraded": 1, "cleared": 0}
    assert state(ending) == ("Silver", None)  # qualifies for Silver: no new grace period
    assert state(later) == ("Gold", now + dt.timedelta(seconds=1))
    change = TierChange.objects.get()
    assert (change.account_id, change.from_tier, change.to_tier, change.reason) == (
        ending.pk, tiers["Gold"], tiers["Silver"], "downgrade",
    )


def test_a_manual_hold_lasts_until_its_date_inclusive(tiers):
    held_today, held_until_yesterday = members_with([0, 0])
    now = timezone.now()
    today = timezone.localdate(now)
    set_state(held_today, tiers["Platinum"], due=now - dt.timedelta(days=1), held_until=today)
    set_state(held_until_yesterday, tiers["Platinum"], due=now - dt.timedelta(days=1), held_until=today - dt.timedelta(days=1))
    assert tiers_downgrade(now=now)["downgraded"] == 1
    assert state(held_today)[0] == "Platinum"
    assert state(held_until_yesterday)[0] == "Gold"


def test_dropping_one_tier_at_a_time_down_to_the_lowest(tiers):
    (member,) = members_with([0])
    set_state(member, tiers["Platinum"])
    now = timezone.now()
    assert tiers_downgrade(now=now)["scheduled"] == 1
    names = []
    for _step in range(4):
        now += dt.timedelta(days=31)
        tiers_downgrade(now=now)
        names.append(state(member))
    assert names == [
        ("Gold", now - dt.timedelta(days=93) + dt.timedelta(days=30)),
        ("Silver", now - dt.timedelta(days=62) + dt.timedelta(days=30)),
        ("Bronze", None),  # a figure of 0 reaches Bronze (threshold 0): no further grace
        ("Bronze", None),
    ]
    assert list(TierChange.objects.order_by("id").values_list("to_tier__name", flat=True)) == ["Gold", "Silver", "Bronze"]


def test_qualifying_again_clears_a_pending_downgrade(tiers):
    (member,) = members_with([600])
    now = timezone.now()
    set_state(member, tiers["Gold"], due=now - dt.timedelta(days=1))  # due, but qualifies now
    assert tiers_downgrade(now=now) == {"scheduled": 0, "downgraded": 0, "cleared": 1}
    assert state(member) == ("Gold", None)


# --- the same results as the in-memory evaluation -------------------------------------------------


def _outcome(run, times):
    """Run `run(now=...)` at each time, the results and the members' states after; rolled back."""
    outcome = {}
    with rolled_back():
        outcome["counts"] = [run(now=moment) for moment in times]
        outcome["accounts"] = sorted(LoyaltyAccount.objects.values_list("pk", "tier_id", "downgrade_due_at"))
        outcome["changes"] = sorted(TierChange.objects.values_list("account_id", "from_tier_id", "to_tier_id", "reason"))
    return outcome


def _varied_members(tiers, seed=12):
    rng = random.Random(seed)
    figures = [0, 99, 100, 101, 499, 500, 1999, 2000, 2500]
    accounts = members_with([rng.choice(figures) for _ in range(60)])
    now = timezone.now()
    today = timezone.localdate(now)
    for account in accounts:
        set_state(
            account,
            rng.choice([None, *tiers.values()]),
            due=rng.choice([None, now, now - dt.timedelta(days=3), now + dt.timedelta(days=3)]),
            held_until=rng.choice([None, today, today - dt.timedelta(days=1), today + dt.timedelta(days=5)]),
        )
    return now


def test_downgrades_match_the_in_memory_evaluation(tiers):
    now = _varied_members(tiers)
    times = [now, now + dt.timedelta(days=1), now + dt.timedelta(days=31), now + dt.timedelta(days=62)]
    new, old = _outcome(tiers_downgrade, times), _outcome(reference_tiers_downgrade, times)
    assert new == old
    assert sum(counts["downgraded"] for counts in new["counts"]) > 5  # the data exercised the drops


def test_upgrades_match_the_in_memory_evaluation(tiers):
    """The set-based upgrade moves the same members up, clears the same pending downgrades and
    writes the same tier changes as the Python loop it replaced, on members of every tier, figure
    and due date (held tiers included: an upgrade does not wait for a hold)."""
    now = _varied_members(tiers, seed=5)
    ids = list(LoyaltyAccount.objects.values_list("pk", flat=True))
    new = _outcome(lambda now: tiers_upgrade(account_ids=ids, now=now), [now])
    old = _outcome(lambda now: reference_tiers_upgrade(account_ids=ids, now=now), [now])
    assert new == old
    assert new["counts"][0] > 5  # members moved up
    before = _outcome(lambda now: 0, [now])

    def pending(outcome):
        return sum(1 for _pk, _tier, due in outcome["accounts"] if due is not None)

    assert pending(new) < pending(before)  # pending downgrades cleared


def test_preview_matches_the_in_memory_evaluation(tiers):
    _varied_members(tiers, seed=7)
    gold = tiers["Gold"]
    rule = EarningRule.objects.get(currency="USD")
    proposals = []
    for threshold, multiplier in [("100", "1.5"), ("1000", "3"), ("2000", "1.5"), ("0", "1")]:
        gold.threshold, gold.multiplier = Decimal(threshold), Decimal(multiplier)
        proposals.append({"tier": Tier(pk=gold.pk, name="Gold", threshold=gold.threshold, multiplier=gold.multiplier)})
    proposals.append({"tier": Tier.objects.get(pk=tiers["Silver"].pk), "delete_tier": True})
    rule.points_per_unit = Decimal("0.75")
    proposals.append({"rule": rule})
    proposals.append({"rule": EarningRule(currency="EUR", points_per_unit=Decimal("2"))})
    for proposal in proposals:
        new, old = change_preview(**proposal), reference_change_preview(**proposal)
        new.pop("as_of"), old.pop("as_of")
        assert new == old, proposal
    assert any(change_preview(**p)["moving_down"] for p in proposals[:4])


def test_preview_of_a_new_tier_counts_members_without_a_tier(tiers):
    """Where the in-memory preview was wrong: a member without a tier who would qualify for a new
    (unsaved) tier moved nowhere, and members left without a tier were given its multiplier."""
    Tier.objects.exclude(name="Platinum").delete()
    none_yet, small = members_with([300, 10])
    preview = change_preview(tier=Tier(name="Silver", threshold=Decimal("100"), multiplier=Decimal("2")))
    assert (preview["moving_up"], preview["moving_down"]) == (1, 0)
    assert preview["yearly_points_before"] == 310
    assert preview["yearly_points_after"] == 300 * 2 + 10
    assert none_yet and small


# --- queries do not grow with the members ---------------------------------------------------------


def _queries(run):
    with CaptureQueriesContext(connection) as queries:
        run()
    return len(queries)


def test_downgrade_and_preview_queries_do_not_grow_with_members(tiers):
    program_get()
    few = members_with([0, 150, 600])
    for account in few:
        set_state(account, tiers["Gold"], due=timezone.now() - dt.timedelta(days=1))
    counts = [_queries(tiers_downgrade), _queries(lambda: change_preview(tier=tiers["Gold"]))]
    many = members_with([0, 150, 600] * 15)
    for account in many:
        set_state(account, tiers["Platinum"], due=timezone.now() - dt.timedelta(days=1))
    assert [_queries(tiers_downgrade), _queries(lambda: change_preview(tier=tiers["Gold"]))] == counts
    assert LoyaltyAccount.objects.filter(tier__name="Gold").count() >= 45  # the many dropped a tier


def test_upgrade_queries_do_not_grow_with_members(tiers):
    program_get()
    few = [a.pk for a in members_with([150, 600])]
    LoyaltyAccount.objects.update(tier=None)
    count = _queries(lambda: tiers_upgrade(account_ids=few))
    many = [a.pk for a in members_with([150, 600, 2500] * 15)]
    LoyaltyAccount.objects.update(tier=None)
    assert _queries(lambda: tiers_upgrade(account_ids=many)) == count
    assert LoyaltyAccount.objects.filter(tier__name="Platinum").count() == 15


# --- the bound of each member's figure (qualify_bound) --------------------------------------------


def _earn(customer, amount, key, now):
    order = Order.objects.create(
        external_id=key, customer=customer, ordered_at=now, amount=Decimal(amount), currency="USD", status="paid"
    )
    orders_earn(order_ids=[order.pk], now=now)
    return order


def _bound(account):
    account.refresh_from_db()
    return account.qualify_bound


def test_upgrades_with_stale_bounds_match_the_in_memory_evaluation(tiers):
    """Bounds above the figure (entries left the window, reversals), unknown ones (NULL: accounts
    from before the column) and exact ones: the upgrade moves the same members up as the loop that
    computes every figure, and every bound it leaves is at least the member's figure."""
    rng = random.Random(3)
    now = timezone.now()
    long_ago = now - dt.timedelta(days=400)  # out of the 12-month window
    customers = [CustomerFactory() for _ in range(60)]
    for index, customer in enumerate(customers):
        for step in range(rng.randint(1, 3)):
            when = rng.choice([long_ago, now - dt.timedelta(days=20)])
            order = _earn(customer, rng.choice(["40", "90", "300", "1500"]), f"S{index}-{step}", when)
            if rng.random() < 0.3:
                order_refund_reverse(order_id=order.pk, refund_key=f"r{index}-{step}")
    accounts = list(LoyaltyAccount.objects.filter(customer__in=customers))
    TierChange.objects.all().delete()  # the upgrades of the earning: not what the test compares
    for account in accounts:
        set_state(account, rng.choice([None, *tiers.values()]), due=rng.choice([None, now - dt.timedelta(days=3)]))
    unknown = [a.pk for a in accounts[::4]]
    LoyaltyAccount.objects.filter(pk__in=unknown).update(qualify_bound=None)
    ids = [a.pk for a in accounts]
    figures = qualifying_values(account_ids=ids, program=program_get(), now=now)
    bounds = dict(LoyaltyAccount.objects.filter(pk__in=ids).values_list("pk", "qualify_bound"))
    assert all(bounds[pk] is None or bounds[pk] >= figures.get(pk, 0) for pk in ids)
    assert sum(1 for pk in ids if bounds[pk] is not None and bounds[pk] > figures.get(pk, 0)) > 10  # stale bounds

    top = set(
        LoyaltyAccount.objects.filter(pk__in=unknown, tier=tiers["Platinum"], downgrade_due_at=None).values_list("pk", flat=True)
    )
    new = _outcome(lambda now: tiers_upgrade(account_ids=ids, now=now), [now])
    old = _outcome(lambda now: reference_tiers_upgrade(account_ids=ids, now=now), [now])
    assert new == old
    assert new["counts"][0] > 5
    tiers_upgrade(account_ids=ids, now=now)
    after = dict(LoyaltyAccount.objects.filter(pk__in=ids).values_list("pk", "qualify_bound"))
    assert all(after[pk] is None or after[pk] >= figures.get(pk, 0) for pk in ids)
    # Unknown bounds were computed, except in the top tier without a pending downgrade (not read).
    assert all((after[pk] is None) == (pk in top) for pk in unknown) and len(top) < len(unknown)


def test_a_bound_that_reaches_the_threshold_with_a_figure_below_keeps_the_tier(tiers):
    """Earned 150 a year and more ago: the bound (150) reaches Silver, the figure (0) does not; the
    member stays and the bound comes down to what the window holds."""
    customer = CustomerFactory()
    _earn(customer, "150", "old", timezone.now() - dt.timedelta(days=400))
    account = LoyaltyAccount.objects.get(customer=customer)
    set_state(account, tiers["Bronze"])
    assert _bound(account) == 150
    assert tiers_upgrade(account_ids=[account.pk]) == 0
    assert state(account) == ("Bronze", None) and _bound(account) == 0
    _earn(customer, "120", "new", timezone.now())  # 120 in the window now: Silver
    assert (state(account)[0], _bound(account)) == ("Silver", 120)


def test_a_bound_below_the_next_threshold_skips_the_exact_figure(tiers):
    """The upgrade trusts the bound: a member whose bound is under the next threshold is not read
    (a bound wrongly low, as nothing writes it, shows it); an unknown bound is read."""
    customer = CustomerFactory()
    _earn(customer, "600", "o", timezone.now())
    account = LoyaltyAccount.objects.get(customer=customer)
    assert (state(account)[0], _bound(account)) == ("Gold", 600)
    set_state(account, tiers["Bronze"])
    LoyaltyAccount.objects.filter(pk=account.pk).update(qualify_bound=Decimal("99"))
    assert tiers_upgrade(account_ids=[account.pk]) == 0 and state(account)[0] == "Bronze"
    LoyaltyAccount.objects.filter(pk=account.pk).update(qualify_bound=None)
    assert tiers_upgrade(account_ids=[account.pk]) == 1 and state(account)[0] == "Gold"
    assert _bound(account) == 600


def test_every_order_earn_raises_the_bound_and_a_bonus_does_not(tiers):
    customer = CustomerFactory()
    account = LoyaltyAccount.objects.create(customer=customer)
    assert _bound(account) == 0  # a new account has earned nothing
    order = _earn(customer, "30", "a", timezone.now())
    points_earn(customer_id=customer.pk, points=7, idempotency_key="single", source=LedgerEntry.Source.ORDER,
                order_id=order.pk + 1000, base_amount=Decimal("7"))
    points_earn(customer_id=customer.pk, points=50, idempotency_key="campaign", source=LedgerEntry.Source.CAMPAIGN)
    assert _bound(account) == 37
    program_set(qualify_by=LoyaltyProgram.QualifyBy.AMOUNT)  # another unit: unknown until computed
    assert _bound(account) is None
    tiers_upgrade(account_ids=[account.pk])
    assert _bound(account) == Decimal("37.00")
    _earn(customer, "12.50", "b", timezone.now())
    assert _bound(account) == Decimal("49.50")
    assert qualifying_values(account_ids=[account.pk], program=program_get(), now=timezone.now())[account.pk] == Decimal("49.50")


# --- when the bound is the figure (qualify_exact_since) -------------------------------------------


def _exact_since(account):
    account.refresh_from_db()
    return account.qualify_exact_since


def test_an_exact_bound_is_the_figure_and_an_inexact_one_is_read(tiers):
    """The upgrade moves a member whose bound is exact on the bound, without their entries (a bound
    that disagrees with the ledger, as nothing else writes it, shows which was used); the
    same member with the bound not known exact is read, and the read makes it exact again."""
    customer = CustomerFactory()
    now = timezone.now()
    _earn(customer, "120", "o", now)
    account = LoyaltyAccount.objects.get(customer=customer)
    assert (state(account)[0], _bound(account)) == ("Silver", 120)
    assert _exact_since(account) <= now  # a new account's bound starts exact

    LoyaltyAccount.objects.filter(pk=account.pk).update(qualify_bound=Decimal("600"))
    assert tiers_upgrade(account_ids=[account.pk]) == 1  # on the bound: the ledger says 120
    assert state(account)[0] == "Gold" and _bound(account) == 600

    set_state(account, tiers["Silver"])
    LoyaltyAccount.objects.filter(pk=account.pk).update(qualify_exact_since=None)
    assert tiers_upgrade(account_ids=[account.pk]) == 0  # read: 120
    assert state(account)[0] == "Silver" and _bound(account) == 120
    assert _exact_since(account) == LedgerEntry.objects.get(account_id=account.pk).created_at


def test_a_refund_and_the_window_passing_make_the_bound_inexact(tiers):
    customer = CustomerFactory()
    now = timezone.now()
    order = _earn(customer, "300", "o", now - dt.timedelta(days=30))
    account = LoyaltyAccount.objects.get(customer=customer)
    assert _exact_since(account) is not None
    # The window (12 months) passes the earn: no longer exact, whatever the column says.
    LoyaltyAccount.objects.filter(pk=account.pk).update(tier=tiers["Bronze"])
    later = now + dt.timedelta(days=400)
    assert tiers_upgrade(account_ids=[account.pk], now=later) == 0
    assert _bound(account) == 0 and _exact_since(account) == later  # nothing earned in that window
    # Back to now: the bound is recomputed when not exact; a refund lowers the figure below it.
    LoyaltyAccount.objects.filter(pk=account.pk).update(qualify_bound=None)
    tiers_upgrade(account_ids=[account.pk], now=now)
    assert state(account)[0] == "Silver" and _bound(account) == 300
    order_refund_reverse(order_id=order.pk, refund_key="half", refunded_amount=Decimal("150"))
    assert _exact_since(account) is None
    set_state(account, tiers["Bronze"])
    assert tiers_upgrade(account_ids=[account.pk], now=now) == 1  # read: 150 reaches Silver
    # The bound stays what was earned (300), not exact while the reversal is in the window.
    assert state(account)[0] == "Silver" and _bound(account) == 300 and _exact_since(account) is None


def test_an_earn_older_than_the_exact_time_moves_it_back(tiers):
    customer = CustomerFactory()
    now = timezone.now()
    _earn(customer, "50", "new", now)
    account = LoyaltyAccount.objects.get(customer=customer)
    since = _exact_since(account)
    earlier = now - dt.timedelta(days=100)
    _earn(customer, "20", "set-based", earlier)
    assert _exact_since(account) == earlier
    ledger_post(account_id=account.pk, kind=LedgerEntry.Kind.EARN, points=5, idempotency_key="single",
                source=LedgerEntry.Source.ORDER, order_id=Order.objects.latest("pk").pk + 1000, base_amount=Decimal("5"),
                now=earlier - dt.timedelta(days=1))
    assert _exact_since(account) == earlier - dt.timedelta(days=1) < since
    assert _bound(account) == 75
    program_set(qualify_window_months=6)  # another window: not known exact until computed
    assert _exact_since(account) is None and _bound(account) is None


def test_the_earnings_upgrades_match_the_in_memory_evaluation(tiers):
    """Members in every state (no tier to Platinum, a pending downgrade or none, exact bounds, stale
    ones from old earns and refunds, unknown ones) earn another order each: after orders_earn (on
    PostgreSQL, the exact ones move in the earning's own statement; the others, and SQLite, through
    tiers_upgrade), each member's tier and pending downgrade are what the in-memory evaluation
    makes of their figure read from the ledger, and each move up is one TierChange."""
    rng = random.Random(7)
    now = timezone.now()
    customers = [CustomerFactory() for _ in range(80)]
    for index, customer in enumerate(customers):
        for step in range(rng.randint(0, 3)):
            when = rng.choice([now - dt.timedelta(days=400), now - dt.timedelta(days=20)])
            order = _earn(customer, rng.choice(["40", "90", "300", "1500"]), f"S{index}-{step}", when)
            if rng.random() < 0.25:
                order_refund_reverse(order_id=order.pk, refund_key=f"r{index}-{step}")
    accounts = {a.customer_id: a for a in LoyaltyAccount.objects.filter(customer__in=customers)}
    for account in accounts.values():
        set_state(account, rng.choice([None, *tiers.values()]), due=rng.choice([None, now - dt.timedelta(days=3)]))
    LoyaltyAccount.objects.filter(pk__in=[a.pk for a in list(accounts.values())[::5]]).update(qualify_bound=None)
    TierChange.objects.all().delete()
    before = {pk: (tier, due) for pk, tier, due in LoyaltyAccount.objects.values_list("pk", "tier_id", "downgrade_due_at")}
    orders = Order.objects.bulk_create(
        Order(external_id=f"N{c.pk}", customer=c, ordered_at=now, amount=Decimal(rng.choice(["5", "60", "450", "1900"])),
              currency="USD", status="paid")
        for c in customers
    )

    orders_earn(order_ids=[o.pk for o in orders], now=now)

    ranked = sorted(tiers.values(), key=lambda t: t.threshold)
    rank = {None: -1, **{t.pk: i for i, t in enumerate(ranked)}}
    ids = list(LoyaltyAccount.objects.filter(customer__in=customers).values_list("pk", flat=True))
    figures = qualifying_values(account_ids=ids, program=program_get(), now=now)
    expected, moves = {}, set()
    for pk in ids:
        tier, due = before.get(pk, (None, None))  # new members: enrolled by this earning
        reached = tier_for(figures.get(pk, Decimal(0)), ranked)
        reached = reached.pk if reached else None
        if rank[reached] > rank[tier]:
            expected[pk] = (reached, None)
            moves.add((pk, tier, reached))
        else:
            expected[pk] = (tier, None if due and rank[reached] >= rank[tier] else due)
    after = {pk: (tier, due) for pk, tier, due in LoyaltyAccount.objects.filter(pk__in=ids).values_list(
        "pk", "tier_id", "downgrade_due_at")}
    assert after == expected
    assert set(TierChange.objects.values_list("account_id", "from_tier_id", "to_tier_id")) == moves
    assert TierChange.objects.count() == len(moves) > 10
