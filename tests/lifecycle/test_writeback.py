"""CustomerValue write-back: the upsert and the generation swap (lifecycle.services.values_upsert, values_generation, values_publish)."""

import datetime as dt
import itertools
import threading
import time
from decimal import Decimal

import numpy as np
import pytest
from django.db import DataError, IntegrityError, connection, connections, transaction
from django.db.models import Index

from core.money import money_cents
from customers.models import Customer
from lifecycle.models import ClvRun, CustomerValue
from lifecycle.services import values_publish
from lifecycle.services.values_generation import (
    GenerationError,
    GenerationMissing,
    values_generation_discard,
    values_generation_prepare,
    values_generation_write,
)
from lifecycle.services.values_publish import values_generation_publish
from lifecycle.services.values_upsert import customer_values_upsert
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
postgres = pytest.mark.postgres

LIVE = CustomerValue._meta.db_table
COMPUTED_AT = dt.datetime(2026, 6, 30, 22, 15, 1, 123456, tzinfo=dt.UTC)
# Money that float arithmetic puts next to a half cent: PostgreSQL's round(x::numeric, 2) rounds the
# 15-digit decimal half away from zero (1.005 -> 1.01, where round(1.005, 2) in Python gives 1.0).
TRICKY_MONEY = [0.0, 0.005, 0.015, 0.125, 1.005, 2.675, 5.025, 10.075, 0.49999999999999994, 1234.565, 99999999.995, 0.1 + 0.2]


def columns_for(customer_ids, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Score columns as scoring.score_customers makes them: a third without purchases (NULLs)."""
    rng = np.random.default_rng(seed)
    ids = np.asarray(customer_ids, dtype=np.int64)
    n = len(ids)
    buyers = np.arange(n) % 3 != 0
    orders = np.where(buyers, rng.integers(1, 20, n), 0)
    paid = np.where(buyers, rng.integers(100, 500_000, n), 0)
    refund = np.where(buyers, rng.integers(0, 5_000, n), 0)
    money = rng.random(n) * 3000
    money[: min(n, len(TRICKY_MONEY))] = TRICKY_MONEY[:n]

    def nullable(values):
        return np.where(buyers, values, np.nan)

    return {
        "customer_id": ids,
        "orders_count": orders,
        "refund_cents": refund,
        "paid_cents": paid,
        "aov": np.divide(paid / 100.0, orders, out=np.zeros(n), where=orders > 0),
        "purchase_frequency": np.where(buyers, rng.random(n) * 12, 0.0),
        "lifespan_years": np.where(buyers, rng.random(n) * 5, 0.0),
        "formula_clv": np.where(buyers, money, 0.0),
        "frequency": nullable(np.maximum(orders - 1, 0).astype(float)),
        "recency": nullable(rng.random(n) * 50),
        "T": nullable(rng.random(n) * 50 + 50),
        "monetary_value": nullable(money[::-1].copy()),
        "p_alive": nullable(rng.random(n)),
        "expected_purchases": nullable(rng.random(n) * 4),
        "expected_order_value": nullable(rng.random(n) * 120),
        "predicted_clv": nullable(money),
        "r_score": np.where(buyers, rng.integers(1, 6, n), 0),
        "f_score": np.where(buyers, rng.integers(1, 6, n), 0),
        "m_score": np.where(buyers, rng.integers(1, 6, n), 0),
        "segment": np.where(buyers, rng.integers(0, 11, n), 11),
    }


def make_run() -> ClvRun:
    return ClvRun.objects.create(as_of=dt.date(2026, 6, 30), status=ClvRun.Status.SUCCEEDED)


def make_customers(n: int) -> list[int]:
    return [c.pk for c in CustomerFactory.create_batch(n)]


def live_rows() -> list[dict]:
    return list(CustomerValue.objects.order_by("customer_id").values())


def written_run(customer_ids: list[int], *, seed: int = 0) -> ClvRun:
    """A run whose generation holds one chunk of these customers, not yet published."""
    run = make_run()
    values_generation_prepare(run_id=run.pk)
    values_generation_write(run_id=run.pk, columns=columns_for(customer_ids, seed=seed), computed_at=COMPUTED_AT)
    return run


def publish_generation(run: ClvRun, chunks: list[dict[str, np.ndarray]]) -> None:
    values_generation_prepare(run_id=run.pk)
    for columns in chunks:
        values_generation_write(run_id=run.pk, columns=columns, computed_at=COMPUTED_AT)
    values_generation_publish(run_id=run.pk)


def generation_tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname ~ %s ORDER BY 1", [f"^{LIVE}_(gen|old)[0-9]+$"])
        return [name for (name,) in cursor.fetchall()]


def schema_of_live_table() -> dict:
    """Everything about the live table a migration or the planner relies on, by name."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s ORDER BY 1", [LIVE])
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conname, contype, pg_get_constraintdef(oid), convalidated, condeferrable, condeferred,"
            " (SELECT relname FROM pg_class WHERE oid = conindid)"
            " FROM pg_constraint WHERE conrelid = %s::regclass ORDER BY 1",
            [LIVE],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT attname, format_type(atttypid, atttypmod), attnotnull, pg_get_expr(d.adbin, d.adrelid)"
            " FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            [LIVE],
        )
        columns = cursor.fetchall()
        cursor.execute(
            "SELECT pg_get_userbyid(relowner), relacl, relpersistence, reloptions, obj_description(oid, 'pg_class')"
            " FROM pg_class WHERE oid = %s::regclass",
            [LIVE],
        )
        table = cursor.fetchone()
    return {"indexes": indexes, "constraints": constraints, "columns": columns, "table": table}


@pytest.fixture
def no_generation_tables_left():
    """transaction=True tests commit their tables: drop whatever a failing test left behind."""
    yield
    with connection.cursor() as cursor:
        for name in generation_tables():
            cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(name)}")


# --- Values ---------------------------------------------------------------------------------------


@postgres
def test_money_cents_is_postgresql_round_to_cents():
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            TRICKY_MONEY,
            -np.array(TRICKY_MONEY),
            [np.nan, 999_999_999_999.99, 1e-9],
            rng.random(20_000) * 1000,
            np.round(rng.random(5_000) * 100_000) / 200,  # cents / 2: every other one a half cent
            rng.integers(1, 10**6, 5_000) / rng.integers(1, 40, 5_000),  # paid / orders, like the AOV
        ]
    )
    cents, null = money_cents(values)
    with connection.cursor() as cursor:
        cursor.execute("SELECT (round(NULLIF(x, 'NaN')::numeric, 2) * 100)::bigint FROM unnest(%s::float8[]) WITH ORDINALITY AS t(x, i) ORDER BY i", [values.tolist()])
        expected = [row[0] for row in cursor.fetchall()]
    assert null.tolist() == [v is None for v in expected]
    assert [None if n else int(c) for c, n in zip(cents, null, strict=True)] == expected
    assert money_cents(np.array([1.005, 2.675, 0.125]))[0].tolist() == [101, 268, 13]


def test_money_cents_rejects_what_no_money_column_holds():
    with pytest.raises(ValueError, match="infinite"):
        money_cents(np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="out of range"):
        money_cents(np.array([1e14]))


@postgres
def test_generation_rows_equal_the_upserted_rows():
    run = make_run()
    ids = make_customers(40)
    chunks = [columns_for(ids[:25], seed=1), columns_for(ids[25:], seed=2)]
    for columns in chunks:
        customer_values_upsert(columns=columns, run_id=run.pk, computed_at=COMPUTED_AT)
    upserted = live_rows()

    CustomerValue.objects.all().delete()
    publish_generation(run, chunks)
    published = live_rows()

    assert len(published) == 40
    assert published == upserted
    first = CustomerValue.objects.get(customer_id=ids[0])  # no purchases: predictive fields NULL
    assert (first.predicted_clv, first.p_alive, first.frequency, first.r_score, first.rfm_segment) == (None, None, None, None, "no_purchases")
    second = CustomerValue.objects.get(customer_id=ids[1])
    assert second.predicted_clv == Decimal("0.01")  # 0.005 rounds half away from zero
    assert second.formula_clv == Decimal("0.01") and second.computed_at == COMPUTED_AT
    money = [row["predicted_clv"] for row in published if row["predicted_clv"] is not None]
    assert Decimal("1.01") in money and Decimal("100000000.00") in money  # 1.005 and 99999999.995


def test_write_and_publish_fill_the_live_table_on_any_database():
    run = make_run()
    ids = make_customers(6)
    publish_generation(run, [columns_for(ids[:3]), columns_for(ids[3:], seed=3)])
    rows = live_rows()
    assert [row["customer_id"] for row in rows] == ids
    assert {row["run_id"] for row in rows} == {run.pk}
    assert rows[0]["predicted_clv"] is None and rows[1]["predicted_clv"] is not None


def test_half_cents_round_away_from_zero_on_any_database():
    run = make_run()
    ids = make_customers(3)
    columns = columns_for(ids)
    columns["predicted_clv"] = np.array([0.005, 2.675, 1.125])
    columns["aov"] = np.array([0.015, 10.005, 0.0])
    publish_generation(run, [columns])
    rows = live_rows()
    assert [row["predicted_clv"] for row in rows] == [Decimal("0.01"), Decimal("2.68"), Decimal("1.13")]
    assert [row["aov"] for row in rows] == [Decimal("0.02"), Decimal("10.01"), Decimal("0.00")]


@postgres
def test_a_value_the_column_cannot_hold_fails_the_chunk_and_writes_nothing():
    ids = make_customers(3)
    run = written_run(ids[:1])
    columns = columns_for(ids[1:], seed=4)
    columns["predicted_clv"][1] = 5e12  # numeric(14, 2) holds up to 999999999999.99
    with pytest.raises(DataError, match="numeric field overflow"):
        values_generation_write(run_id=run.pk, columns=columns, computed_at=COMPUTED_AT)
    values_generation_publish(run_id=run.pk)
    assert [row["customer_id"] for row in live_rows()] == ids[:1]


# --- Publish --------------------------------------------------------------------------------------


@postgres
def test_publish_keeps_every_index_and_constraint_with_its_name():
    run = make_run()
    ids = make_customers(10)
    with connection.cursor() as cursor:  # what a DBA may have added: kept too
        cursor.execute(f"GRANT SELECT ON {LIVE} TO PUBLIC")
        cursor.execute(f"ALTER TABLE {LIVE} SET (fillfactor = 90)")
        cursor.execute(f"COMMENT ON TABLE {LIVE} IS 'written by the CLV run'")
    before = schema_of_live_table()
    assert before["table"][1] and before["table"][3] == ["fillfactor=90"]
    assert len(before["indexes"]) == 6 and sum(c[1] == "f" for c in before["constraints"]) == 2
    publish_generation(run, [columns_for(ids)])
    after = schema_of_live_table()
    assert after == before
    assert generation_tables() == []
    with connection.cursor() as cursor:  # ANALYZEd: the planner knows the new rows
        cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename = %s AND attname = 'predicted_clv'", [LIVE])
        assert cursor.fetchone()[0] == 1
    # The foreign keys are there and still deferred: a value row for no customer fails at commit.
    with pytest.raises(IntegrityError, match="foreign key"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {LIVE} SET customer_id = -1 WHERE customer_id = %s", [ids[0]])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@postgres
def test_schema_changes_by_name_work_after_a_publish():
    run = make_run()
    publish_generation(run, [columns_for(make_customers(5))])
    by_name = {index.name: index for index in CustomerValue._meta.indexes}
    constraint = next(c for c in CustomerValue._meta.constraints if c.name == "custvalue_p_alive_0_1")
    extra = Index(fields=["orders_count"], name="custvalue_orders_count_idx")
    with connection.schema_editor() as editor:
        editor.remove_index(CustomerValue, by_name["custvalue_formula_clv_idx"])
        editor.add_index(CustomerValue, by_name["custvalue_formula_clv_idx"])
        editor.add_index(CustomerValue, extra)
        editor.remove_index(CustomerValue, extra)
        editor.remove_constraint(CustomerValue, constraint)
        editor.add_constraint(CustomerValue, constraint)
        customer = CustomerValue._meta.get_field("customer")
        editor.alter_field(CustomerValue, customer, customer)  # finds the key and its constraints by name
    assert {name for name, _ in schema_of_live_table()["indexes"]} >= set(by_name)


@postgres
def test_later_migrations_touching_customer_value_apply_after_a_publish():
    from django.db import migrations, models
    from django.db.migrations.loader import MigrationLoader

    publish_generation(make_run(), [columns_for(make_customers(3))])
    before = schema_of_live_table()
    state = MigrationLoader(connection).project_state()
    operations = [
        migrations.RenameIndex("customervalue", new_name="custvalue_fclv_idx", old_name="custvalue_formula_clv_idx"),
        migrations.RemoveConstraint("customervalue", "custvalue_p_alive_0_1"),
        migrations.AlterField(  # drops the foreign key found by introspection
            "customervalue",
            "run",
            models.ForeignKey(
                "lifecycle.clvrun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_constraint=False
            ),
        ),
    ]
    states = [state]
    connection.check_constraints()  # a migration starts a transaction of its own: no pending checks
    with connection.schema_editor() as editor:
        for operation in operations:
            after = states[-1].clone()
            operation.state_forwards("lifecycle", after)
            operation.database_forwards("lifecycle", editor, states[-1], after)
            states.append(after)
    changed = schema_of_live_table()
    assert "custvalue_fclv_idx" in dict(changed["indexes"]) and "custvalue_formula_clv_idx" not in dict(changed["indexes"])
    assert not any(c[0] in ("custvalue_p_alive_0_1", "lifecycle_customervalue_run_id_63c9eb29_fk_lifecycle_clvrun_id") for c in changed["constraints"])
    with connection.schema_editor() as editor:
        for operation, (earlier, later) in reversed(list(zip(operations, itertools.pairwise(states), strict=True))):
            operation.database_backwards("lifecycle", editor, later, earlier)
    restored = schema_of_live_table()
    assert restored["indexes"] == before["indexes"]
    assert {c[0] for c in restored["constraints"]} == {c[0] for c in before["constraints"]}


@postgres
def test_customers_deleted_during_the_run_are_dropped():
    ids = make_customers(6)
    run = written_run(ids)
    Customer.objects.filter(pk__in=[ids[1], ids[4]]).delete()
    values_generation_publish(run_id=run.pk)
    assert [row["customer_id"] for row in live_rows()] == [ids[0], ids[2], ids[3], ids[5]]


@postgres
def test_customers_created_during_the_run_have_no_row_until_the_next():
    ids = make_customers(3)
    run = written_run(ids)
    newcomer = CustomerFactory()
    values_generation_publish(run_id=run.pk)
    assert [row["customer_id"] for row in live_rows()] == ids
    assert not CustomerValue.objects.filter(customer=newcomer).exists()


@postgres
def test_a_chunk_written_twice_gives_one_row_per_customer():
    run = make_run()
    ids = make_customers(8)
    publish_generation(run, [columns_for(ids[:4]), columns_for(ids[4:], seed=5), columns_for(ids[4:], seed=5)])
    assert [row["customer_id"] for row in live_rows()] == ids


@postgres
def test_a_discarded_run_leaves_the_live_table_as_it_was():
    ids = make_customers(5)
    publish_generation(make_run(), [columns_for(ids)])
    before, schema = live_rows(), schema_of_live_table()
    failed = written_run(ids[:2], seed=9)
    values_generation_discard(run_id=failed.pk)
    assert live_rows() == before and schema_of_live_table() == schema
    assert generation_tables() == []
    with pytest.raises(GenerationMissing):
        values_generation_write(run_id=failed.pk, columns=columns_for(ids[:2]), computed_at=COMPUTED_AT)
    with pytest.raises(GenerationMissing):
        values_generation_publish(run_id=failed.pk)


@postgres
def test_a_newer_run_replaces_a_crashed_one_and_publishing_twice_is_a_no_op():
    ids = make_customers(4)
    crashed = written_run(ids, seed=1)
    run = make_run()
    values_generation_prepare(run_id=run.pk)  # the crashed run's table goes
    assert generation_tables() == [f"{LIVE}_gen{run.pk}"]
    values_generation_write(run_id=run.pk, columns=columns_for(ids, seed=2), computed_at=COMPUTED_AT)
    values_generation_publish(run_id=run.pk)
    values_generation_publish(run_id=run.pk)
    assert {row["run_id"] for row in live_rows()} == {run.pk}
    with pytest.raises(GenerationMissing):
        values_generation_publish(run_id=crashed.pk)


@postgres
def test_a_table_a_swap_would_break_is_refused():
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE VIEW custvalue_view AS SELECT customer_id FROM {LIVE}")
    with pytest.raises(GenerationError, match="a view, rule or SQL function depends on it"):
        values_generation_prepare(run_id=make_run().pk)


@postgres
def test_an_empty_generation_never_replaces_the_values():
    ids = make_customers(3)
    publish_generation(make_run(), [columns_for(ids)])
    before = live_rows()
    empty = make_run()
    values_generation_prepare(run_id=empty.pk)
    with pytest.raises(GenerationError, match="wrote no values"):
        values_generation_publish(run_id=empty.pk)
    assert live_rows() == before


# --- Concurrency ----------------------------------------------------------------------------------


def _in_thread(target, results: dict, key: str):
    def run():
        try:
            results[key] = target()
        except BaseException as exc:
            results[key] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _waiting_on_live_table() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted", [LIVE])
        return cursor.fetchone()[0]


def _wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _read_live() -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), min(run_id), max(run_id) FROM {LIVE}")
        return cursor.fetchone()


@postgres
@pytest.mark.django_db(transaction=True)
def test_readers_see_the_old_or_the_new_generation_never_an_empty_table(no_generation_tables_left):
    ids = make_customers(30)
    old = make_run()
    publish_generation(old, [columns_for(ids)])
    new = written_run(ids[:20], seed=1)
    values_generation_write(run_id=new.pk, columns=columns_for(ids[20:25], seed=2), computed_at=COMPUTED_AT)

    seen, stop, results = [], threading.Event(), {}
    release = threading.Event()

    def poll():
        while not stop.is_set():
            seen.append(_read_live())

    def hold_a_read():  # a reader mid-transaction when the swap wants its lock
        with transaction.atomic():
            first = _read_live()
            release.wait(10)
        return first

    threads = [_in_thread(poll, results, "poll"), _in_thread(hold_a_read, results, "held")]
    _wait_until(lambda: "held" in results or len(seen) > 3)
    threads.append(_in_thread(lambda: values_generation_publish(run_id=new.pk), results, "publish"))
    _wait_until(lambda: _waiting_on_live_table() >= 1)  # the swap waits for the held read
    threads.append(_in_thread(_read_live, results, "queued"))  # queues behind the swap
    _wait_until(lambda: _waiting_on_live_table() >= 2)
    release.set()
    threads[2].join(30)
    threads[3].join(30)
    stop.set()
    for thread in threads:
        thread.join(30)

    assert results["publish"] is None
    assert results["held"] == (30, old.pk, old.pk)
    assert results["queued"] == (25, new.pk, new.pk)
    assert set(seen) <= {(30, old.pk, old.pk), (25, new.pk, new.pk)}
    assert seen[0] == (30, old.pk, old.pk) and seen[-1] == (25, new.pk, new.pk)


@postgres
@pytest.mark.django_db(transaction=True)
def test_two_publishes_of_one_run_at_once_publish_it_once(no_generation_tables_left, caplog):
    run = written_run(ids := make_customers(12))
    values_generation_write(run_id=run.pk, columns=columns_for(ids[4:]), computed_at=COMPUTED_AT)  # delivered twice
    before = schema_of_live_table()
    results: dict = {}
    threads = [_in_thread(lambda: values_generation_publish(run_id=run.pk), results, key) for key in ("a", "b")]
    for thread in threads:
        thread.join(60)
    assert results == {"a": None, "b": None}
    assert "8 rows written twice, removed" in caplog.text  # found by the primary key's build
    assert [row["customer_id"] for row in live_rows()] == ids
    assert schema_of_live_table() == before and generation_tables() == []


@postgres
@pytest.mark.django_db(transaction=True)
def test_a_customer_deleted_while_publishing_is_dropped_too(no_generation_tables_left, monkeypatch):
    ids = make_customers(5)
    run = written_run(ids)
    build_indexes, removed = values_publish._build_indexes, []

    def build_then_lose_a_customer(table, indexes):
        build_indexes(table, indexes)
        results: dict = {}  # deleted in another connection, between the index builds and the swap
        _in_thread(lambda: Customer.objects.filter(pk=ids[2]).delete(), results, "delete").join(10)
        assert results["delete"][0] == 1

    def count_orphans(cursor, table):
        removed.append(delete_orphans(cursor, table))
        return removed[-1]

    delete_orphans = values_publish._delete_orphans
    monkeypatch.setattr(values_publish, "_build_indexes", build_then_lose_a_customer)
    monkeypatch.setattr(values_publish, "_delete_orphans", count_orphans)
    values_generation_publish(run_id=run.pk)
    assert removed == [1]
    assert [row["customer_id"] for row in live_rows()] == [ids[0], ids[1], ids[3], ids[4]]
