"""Retention interventions: one per level and window, consent and unsubscribe respected, safe under a
duplicated task (real threads on PostgreSQL) and a worker killed mid-run."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError
from django.utils import timezone

from customers.models import Task
from lifecycle.models_health import CustomerHealth
from lifecycle.models_retention import RetentionAction, RetentionIntervention, RetentionOffer, interventions_ensure
from lifecycle.services import retention
from lifecycle.services.retention import retention_run
from messaging.models import Message
from messaging.services import messages_deliver_due, suppression_add
from tests.factories import CustomerFactory, UserFactory
from tests.races import race

DAY = dt.date(2026, 6, 1)


def _at_risk(level, *, opt_in=True, owner=None):
    customer = CustomerFactory(email_opt_in=opt_in, email_opt_in_at=timezone.now() if opt_in else None, owner=owner)
    CustomerHealth.objects.create(
        customer=customer, score=30, activity_points=0, breadth_points=0, service_points=20, feedback_points=10,
        churn_risk=level, changed_at=timezone.now(),
    )
    return customer


@pytest.mark.django_db
def test_each_level_gets_its_intervention():
    owner = UserFactory(username="owner")
    care, follow_up, offer, fine = _at_risk(1), _at_risk(2, owner=owner), _at_risk(3), _at_risk(0)
    counts = retention_run(as_of=DAY)
    assert counts == {"level_1": 1, "level_2": 1, "level_3": 1}
    care_message = Message.objects.get(customer=care)
    assert (care_message.template.key, care_message.key, care_message.purpose) == (
        "retention_care", f"retention:1:2026-06-01:{care.pk}", "marketing",
    )
    task = Task.objects.get(customer=follow_up)
    assert task.assignee == owner and task.done_at is None and task.due_at > timezone.now()
    offer_message = Message.objects.get(customer=offer)
    assert offer_message.template.key == "retention_offer"
    assert offer_message.context == {"retention_level": 3, "retention_day": "2026-06-01", "offer_days": 14}
    code = RetentionOffer.objects.get(customer=offer)
    assert code.code.startswith(f"BACK3260601-{offer.pk}-") and code.expires_on == dt.date(2026, 6, 15)
    assert not Message.objects.filter(customer=fine).exists()
    assert RetentionAction.objects.count() == 3


@pytest.mark.django_db
def test_never_twice_in_the_window_however_often_it_runs():
    customer = _at_risk(1)
    retention_run(as_of=DAY)
    retention_run(as_of=DAY)
    retention_run(as_of=DAY + dt.timedelta(days=1))  # another day, still within 30 days
    assert Message.objects.filter(customer=customer).count() == 1
    assert RetentionAction.objects.filter(customer=customer).count() == 1
    RetentionAction.objects.update(at=timezone.now() - dt.timedelta(days=31))
    retention_run(as_of=DAY + dt.timedelta(days=31))
    assert Message.objects.filter(customer=customer).count() == 2


@pytest.mark.django_db
def test_marketing_consent_and_unsubscribe_are_respected():
    no_consent, unsubscribed = _at_risk(1, opt_in=False), _at_risk(3)
    suppression_add(address=unsubscribed.email, reason="unsubscribed")
    retention_run(as_of=DAY)
    assert not Message.objects.filter(customer=no_consent).exists()
    assert not RetentionAction.objects.filter(customer=no_consent).exists()
    assert not Message.objects.filter(customer=unsubscribed, state="queued").exists()


@pytest.mark.django_db
def test_disabled_intervention_does_nothing():
    RetentionIntervention.objects.filter(level=1).update(enabled=False)
    customer = _at_risk(1)
    assert "level_1" not in retention_run(as_of=DAY)
    assert not Message.objects.filter(customer=customer).exists()


@pytest.mark.django_db
def test_a_worker_killed_mid_run_leaves_nothing_and_the_next_run_sends_once(monkeypatch):
    customer = _at_risk(1)

    def killed(**kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr("messaging.services.messages_queue_bulk", killed)
    with pytest.raises(SystemExit):
        retention_run(as_of=DAY)
    assert not RetentionAction.objects.exists()
    monkeypatch.undo()
    retention_run(as_of=DAY)
    assert Message.objects.filter(customer=customer).count() == 1


@pytest.mark.django_db
def test_command(capsys):
    _at_risk(1)
    call_command("run_retention", "--as-of", "2026-06-01")
    assert "level_1: 1" in capsys.readouterr().out


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_duplicated_task_sends_each_intervention_once():
    interventions_ensure()  # an earlier transactional test's flush removed the migration's rows
    customers = [_at_risk(1) for _ in range(5)] + [_at_risk(2) for _ in range(3)]
    results, errors = race(*[lambda: retention_run(as_of=DAY)] * 4)
    assert not errors
    assert Message.objects.filter(key__startswith="retention:1:").count() == 5
    assert Task.objects.filter(customer__in=customers).count() == 3
    assert sum(r["level_1"] for r in results) == 5


def test_retention_module_keys_are_per_level_and_day():
    assert retention._key_prefix(3, DAY) == "retention:3:2026-06-01:"


@pytest.mark.django_db
def test_each_customer_gets_a_code_of_their_own_shown_in_the_e_mail(mailbox, settings):
    mailbox.settings(settings)
    customers = [_at_risk(3) for _ in range(3)]
    retention_run(as_of=DAY)
    offers = {o.customer_id: o for o in RetentionOffer.objects.all()}
    assert set(offers) == {c.pk for c in customers}
    assert len({o.code for o in offers.values()}) == 3  # unique per customer
    assert {o.expires_on for o in offers.values()} == {dt.date(2026, 6, 15)}
    assert messages_deliver_due()["sent"] == 3
    for customer in customers:
        [mail] = mailbox.to(customer.email)
        assert offers[customer.pk].code in mail.text()
        assert "June 15, 2026" in mail.text()
        assert all(offers[c.pk].code not in mail.text() for c in customers if c != customer)
    # Run again the same day and the next: no new offer, no second e-mail.
    retention_run(as_of=DAY)
    retention_run(as_of=DAY + dt.timedelta(days=1))
    assert RetentionOffer.objects.count() == 3 and Message.objects.count() == 3


@pytest.mark.django_db
def test_a_code_is_unique_in_the_database():
    customer = _at_risk(3)
    retention_run(as_of=DAY)
    offer = RetentionOffer.objects.get()
    other = RetentionAction.objects.create(customer=customer, level=1, kind="email", day=DAY, at=timezone.now())
    with pytest.raises(IntegrityError):
        RetentionOffer.objects.create(action=other, customer=customer, level=1, day=DAY, kind="code", code=offer.code, expires_on=DAY)


@pytest.mark.django_db
def test_bonus_points_are_credited_once_per_customer_and_window(mailbox, settings):
    from loyalty.models import LedgerEntry, LoyaltyAccount

    mailbox.settings(settings)
    RetentionIntervention.objects.filter(level=3).update(offer="points", offer_points=250)
    customers = [_at_risk(3) for _ in range(2)]
    retention_run(as_of=DAY)
    retention_run(as_of=DAY)
    retention_run(as_of=DAY + dt.timedelta(days=1))
    entries = LedgerEntry.objects.filter(idempotency_key__startswith="retention:3:")
    assert sorted(entries.values_list("idempotency_key", flat=True)) == sorted(
        f"retention:3:2026-06-01:{c.pk}" for c in customers
    )
    assert set(entries.values_list("points", "source")) == {(250, "campaign")}
    assert set(LoyaltyAccount.objects.filter(customer__in=customers).values_list("balance", flat=True)) == {250}
    messages_deliver_due()
    [mail] = mailbox.to(customers[0].email)
    assert "250 bonus points" in mail.text()


@pytest.mark.django_db
def test_points_need_the_loyalty_app(monkeypatch):
    from lifecycle import health_hooks

    monkeypatch.setattr(health_hooks, "_points_awarder", None)  # as if loyalty were not installed
    intervention = RetentionIntervention.objects.get(level=3)
    intervention.offer, intervention.offer_points = "points", 100
    with pytest.raises(ValidationError) as refused:
        intervention.full_clean()
    assert "loyalty" in str(refused.value)
    intervention.save()  # saved anyway (a database changed by hand): the run skips it, sends no promise
    customer = _at_risk(3)
    assert retention_run(as_of=DAY)["level_3"] == 0
    assert not Message.objects.filter(customer=customer).exists()
    intervention.offer, intervention.offer_points, intervention.kind = "code", 0, "task"
    with pytest.raises(ValidationError):
        intervention.full_clean()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_duplicated_task_makes_each_offer_once():
    from loyalty.models import LedgerEntry

    interventions_ensure()
    customers = [_at_risk(3) for _ in range(6)]
    results, errors = race(*[lambda: retention_run(as_of=DAY)] * 4)
    assert not errors and sum(r["level_3"] for r in results) == 6
    assert RetentionOffer.objects.count() == 6 and Message.objects.filter(key__startswith="retention:3:").count() == 6
    RetentionAction.objects.all().delete()  # a new window: now in points, raced again
    RetentionIntervention.objects.filter(level=3).update(offer="points", offer_points=50)
    results, errors = race(*[lambda: retention_run(as_of=DAY + dt.timedelta(days=1))] * 4)
    assert not errors
    assert LedgerEntry.objects.filter(idempotency_key__startswith="retention:3:2026-06-02:").count() == len(customers)
