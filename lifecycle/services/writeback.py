"""Bulk upsert of CustomerValue rows: COPY + INSERT ... ON CONFLICT on PostgreSQL, executemany on SQLite.

A constant number of statements per chunk, whatever its size."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, transaction

from customers.models import Customer
from lifecycle.models import CustomerValue

COLUMNS: tuple[str, ...] = tuple(f.column for f in CustomerValue._meta.concrete_fields)
KEY = CustomerValue._meta.pk.column


def _quoted(columns: Sequence[str]) -> str:
    return ", ".join(connection.ops.quote_name(c) for c in columns)


def _update_clause() -> str:
    qn = connection.ops.quote_name
    return ", ".join(f"{qn(c)} = excluded.{qn(c)}" for c in COLUMNS if c != KEY)


def customer_values_upsert(rows: Sequence[Sequence]) -> None:
    """Insert or replace the rows (tuples in COLUMNS order) in one transaction."""
    if not rows:
        return
    table = connection.ops.quote_name(CustomerValue._meta.db_table)
    columns = _quoted(COLUMNS)
    key = connection.ops.quote_name(KEY)
    customers = connection.ops.quote_name(Customer._meta.db_table)

    def still_exists(value: str) -> str:
        # A customer deleted since the aggregate ran is skipped instead of failing the chunk.
        return f"EXISTS (SELECT 1 FROM {customers} c WHERE c.id = {value})"

    upsert_tail = f"ON CONFLICT ({connection.ops.quote_name(KEY)}) DO UPDATE SET {_update_clause()}"
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"CREATE TEMP TABLE clv_stage (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
            with cursor.copy(f"COPY clv_stage ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM clv_stage s WHERE {still_exists('s.' + key)} {upsert_tail}"
            )
            # ON COMMIT DROP only fires at the outermost commit; inside a caller's transaction the
            # next chunk would find the table still there.
            cursor.execute("DROP TABLE clv_stage")
        else:
            placeholders = ", ".join(["%s"] * len(COLUMNS))
            key_index = COLUMNS.index(KEY)
            cursor.executemany(
                f"INSERT INTO {table} ({columns}) SELECT {placeholders} WHERE {still_exists('%s')} {upsert_tail}",
                [(*row, row[key_index]) for row in rows],
            )
