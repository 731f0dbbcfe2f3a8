"""core.planner: stale statistics are refreshed before a bulk path plans on them."""

import pytest
from django.db import connection

from core.planner import jit_off, statistics_refresh

TABLE = "loyalty_reward"  # any table of ours the tests do not otherwise fill


def _estimated_rows() -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [TABLE])
        return cursor.fetchone()[0]


def _fill(rows: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (name, cost, active, stock) SELECT 'r' || g, 1, true, NULL FROM generate_series(1, %s) g",
            [rows],
        )
        cursor.execute("SELECT pg_stat_force_next_flush()")  # the counters are otherwise sent later


def _analyzed_empty_then_filled(rows: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {TABLE}")
    _fill(rows)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_table_filled_since_it_was_analyzed_empty_is_analyzed_again():
    _analyzed_empty_then_filled(300)
    assert statistics_refresh(TABLE, stale_after_rows=100) == [TABLE]
    assert _estimated_rows() == 300
    # Up to date now, and a few more rows than it held are not "stale".
    assert statistics_refresh(TABLE, stale_after_rows=100) == []
    _fill(50)
    assert statistics_refresh(TABLE, stale_after_rows=100) == []
    assert _estimated_rows() == 300


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_below_the_row_threshold_nothing_is_analyzed():
    _analyzed_empty_then_filled(300)
    assert statistics_refresh(TABLE) == []  # 300 changed rows < STALE_AFTER_ROWS
    assert _estimated_rows() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_jit_off_lasts_for_the_transaction():
    from django.db import transaction

    with connection.cursor() as cursor:
        cursor.execute("SET jit = on")  # the server's own setting, whatever it is, for this session
    with transaction.atomic(), connection.cursor() as cursor:
        jit_off(cursor)
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "on"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_clv_run_analyzes_orders_filled_since_their_last_analysis(monkeypatch):
    """The CLV run's aggregate reads every order: it is planned on fresh statistics after an import."""
    from core import planner
    from lifecycle.services.clv_runs import clv_run_create, clv_run_execute
    from tests.lifecycle.clv_orders import AS_OF, seed_histories

    monkeypatch.setattr(planner, "STALE_AFTER_ROWS", 100)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_order")
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'customers_order'")
        assert cursor.fetchone()[0] <= 0  # analyzed while empty
    seed_histories(60)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*), pg_stat_force_next_flush() FROM customers_order")
        orders = cursor.fetchone()[0]
    assert orders > 200
    clv_run_execute(run_id=clv_run_create(as_of=AS_OF).pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'customers_order'")
        assert cursor.fetchone()[0] == orders
