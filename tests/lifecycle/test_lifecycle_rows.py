"""The stage, transition, health and health-history rows name their customer and run by plain ids,
without database foreign keys (lifecycle.models_stages, CUSTOMER_ROWS_LOCK): what still holds."""

import datetime as dt
import threading
import time

import pytest
from django.contrib.admin.sites import site
from django.db import connection, transaction
from django.db.models import ProtectedError

from core.exceptions import DomainError
from customers.models import Customer, Order
from lifecycle.models import CustomerHealth, HealthHistory
from lifecycle.models_stages import CustomerStage, LifecycleRun, Stage, StageTransition
from lifecycle.services.stages import customer_rows_lock, customer_stage_set, lifecycle_evaluate
from tests.factories import CustomerFactory, OrderFactory
from tests.races import race

T = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
MODELS = (CustomerStage, StageTransition, CustomerHealth, HealthHistory)


def _buyer() -> Customer:
    customer = CustomerFactory(signed_up_at=T - 400 * DAY)
    OrderFactory(customer=customer, ordered_at=T - 5 * DAY, status=Order.Status.PAID)
    return customer


def _rows(customer_id: int) -> list[int]:
    return [model.objects.filter(customer_id=customer_id).count() for model in MODELS]


@pytest.mark.django_db
def test_deleting_a_customer_deletes_their_stage_transitions_health_and_history(manager):
    kept, deleted = _buyer(), _buyer()
    lifecycle_evaluate(as_of=T)
    customer_stage_set(customer=deleted, stage=Stage.LOYAL, reason="Key account", user=manager)
    assert _rows(deleted.pk) == [1, 2, 1, 1]
    deleted_id = deleted.pk
    deleted.delete()  # as the admin deletes a customer
    assert _rows(deleted_id) == [0, 0, 0, 0]
    assert _rows(kept.pk) == [1, 1, 1, 1]


@pytest.mark.django_db
def test_a_customer_deleted_by_hand_in_sql_loses_their_rows_too():
    kept, deleted = CustomerFactory(signed_up_at=T - 400 * DAY), CustomerFactory(signed_up_at=T - 400 * DAY)
    lifecycle_evaluate(as_of=T)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM customers_customer WHERE id = %s", [deleted.pk])
    assert _rows(deleted.pk) == [0, 0, 0, 0]
    assert _rows(kept.pk) == [1, 1, 1, 1]


@pytest.mark.django_db
def test_every_row_names_an_existing_run_and_runs_cannot_be_deleted(rf, admin_user):
    customers = [_buyer() for _ in range(3)]
    first = lifecycle_evaluate(as_of=T)
    second = lifecycle_evaluate(as_of=T + 200 * DAY)  # idle since: every stage and health changes
    assert second.n_transitions == 3
    runs = set(LifecycleRun.objects.values_list("pk", flat=True))
    for model in (CustomerStage, StageTransition, HealthHistory):
        named = set(model.objects.values_list("run_id", flat=True))
        assert named and named <= runs, model
    assert set(StageTransition.objects.filter(customer__in=customers).values_list("run_id", flat=True)) == {first.pk, second.pk}
    with pytest.raises(ProtectedError):
        first.delete()
    request = rf.get("/")
    request.user = admin_user
    assert site._registry[LifecycleRun].has_delete_permission(request, first) is False


@pytest.mark.django_db
def test_a_manual_move_for_a_customer_deleted_meanwhile_is_refused(manager):
    customer = CustomerFactory()
    stale = Customer.objects.get(pk=customer.pk)  # the page was loaded before the deletion
    customer.delete()
    with pytest.raises(DomainError):
        customer_stage_set(customer=stale, stage=Stage.LOYAL, reason="Key account", user=manager)
    assert _rows(stale.pk) == [0, 0, 0, 0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_deletion_waits_for_the_range_being_written_and_then_deletes_its_rows():
    """Without foreign keys nothing would stop a range from committing a stage row for a customer
    deleted while it ran: the deletion waits for the lock the range holds, then removes the row."""
    customer = CustomerFactory()
    wrote, deletion_started = threading.Event(), threading.Event()

    def range_writer():
        with transaction.atomic(), connection.cursor() as cursor:
            customer_rows_lock(cursor)
            cursor.execute(
                "INSERT INTO lifecycle_customerstage (customer_id, stage, changed_at, manual) VALUES (%s, 'lead', %s, FALSE)",
                [customer.pk, T],
            )
            wrote.set()
            assert deletion_started.wait(30)
            time.sleep(0.5)  # the deletion is now waiting (or, without the lock, already done)
            return Customer.objects.filter(pk=customer.pk).exists()

    def deleter():
        assert wrote.wait(30)
        deletion_started.set()
        Customer.objects.get(pk=customer.pk).delete()

    results, errors = race(range_writer, deleter)
    assert errors == []
    assert results[0] is True  # the deletion had not gone through while the range was open
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert not CustomerStage.objects.filter(customer_id=customer.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_evaluation_waits_for_a_manual_move_that_creates_the_first_stage_row(manager):
    """The evaluation inserts new stage rows without ON CONFLICT: a manual move creating one holds
    the lock exclusively, so a range starting meanwhile waits and then sees the manual stage (rather
    than failing on the duplicate when the move commits)."""
    customer = CustomerFactory(signed_up_at=T - 400 * DAY)
    moved = threading.Event()

    def manual_move():
        with transaction.atomic():
            customer_stage_set(customer=customer, stage=Stage.LOYAL, reason="Key account", user=manager)
            moved.set()
            time.sleep(1)  # the evaluation starts while this move is not yet committed

    def evaluation():
        assert moved.wait(30)
        return lifecycle_evaluate(as_of=T).status

    results, errors = race(manual_move, evaluation)
    assert errors == []
    assert results[1] == LifecycleRun.Status.SUCCEEDED
    row = CustomerStage.objects.get(customer=customer)
    assert (row.stage, row.manual) == (Stage.LOYAL, True)
