"""CustomerValue rows upserted from a run's columns: SQLite's write-back (PostgreSQL publishes a
whole generation instead, see values_generation), and any caller that writes a few rows in place.

A constant number of statements per chunk. PostgreSQL: one binary COPY into a temporary staging
table whose columns are all fixed-width (int8 / float8, NULL encoded as NaN or 0) so the COPY stream
is built by numpy without a Python loop, then one INSERT ... SELECT ... ON CONFLICT (customer_id) DO
UPDATE that rounds the money to cents and decodes the NULLs. SQLite: one executemany of INSERT ...
ON CONFLICT DO UPDATE, the money rounded in Python the way PostgreSQL rounds it."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import numpy as np
from django.db import connection, transaction

from core.copy import fixed_width_rows
from core.money import money_cents
from lifecycle.models import CustomerValue

from .value_columns import FLOAT_COLUMNS, INT_COLUMNS, MONEY_COLUMNS, SEGMENTS, STAGE_COLUMNS, still_exists


def _targets(stage: str) -> list[tuple[str, str]]:
    """(CustomerValue column, SQL expression over the staging row `stage`); %s are run, segments, time."""
    qn = connection.ops.quote_name
    s = f"{stage}."
    targets = [
        ("customer_id", f"{s}customer_id"),
        ("run_id", "%s"),
        ("orders_count", f"{s}orders_count"),
        ("revenue", f"({s}paid_cents + {s}refund_cents) / 100.0"),
        ("refunds", f"{s}refund_cents / 100.0"),
        ("historic_value", f"{s}paid_cents / 100.0"),
        ("rfm_segment", f"(%s::text[])[{s}segment + 1]"),
        ("computed_at", "%s"),
        *[(c, f"NULLIF({s}{c}, 0)") for c in ("r_score", "f_score", "m_score")],
        *[(c, f"round(NULLIF({s}{qn(c)}, 'NaN')::numeric, 2)") for c in MONEY_COLUMNS],
        *[(c, f"NULLIF({s}{qn(c)}, 'NaN')") for c in FLOAT_COLUMNS],
    ]
    return targets


def _binary_copy_stream(columns: dict[str, np.ndarray]) -> bytes:
    return fixed_width_rows([(columns[name], ">i8" if name in INT_COLUMNS else ">f8") for name in STAGE_COLUMNS])


def _upsert_tail(columns: list[str]) -> str:
    qn = connection.ops.quote_name
    updates = ", ".join(f"{qn(c)} = excluded.{qn(c)}" for c in columns if c != "customer_id")
    return f"ON CONFLICT ({qn('customer_id')}) DO UPDATE SET {updates}"


def _postgresql(table: str, columns: dict[str, np.ndarray], params: list) -> None:
    qn = connection.ops.quote_name
    targets = _targets("s")
    stage_types = ", ".join(f"{qn(c)} {'int8' if c in INT_COLUMNS else 'float8'}" for c in STAGE_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE clv_stage ({stage_types}) ON COMMIT DROP")
        with cursor.copy(f"COPY clv_stage ({', '.join(qn(c) for c in STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(_binary_copy_stream(columns))
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(qn(c) for c, _ in targets)})"
            f" SELECT {', '.join(expr for _, expr in targets)} FROM clv_stage s"
            f" WHERE {still_exists('s.customer_id')} {_upsert_tail([c for c, _ in targets])}",
            params,
        )
        # ON COMMIT DROP only fires at the outermost commit; inside a caller's transaction the
        # next chunk would find the table still there.
        cursor.execute("DROP TABLE clv_stage")


def _python_rows(columns: dict[str, np.ndarray], run_id: int, computed_at: dt.datetime) -> tuple[list[str], list[tuple]]:
    def nullable(values: np.ndarray) -> list:
        return [None if math.isnan(v) else v for v in values.tolist()]  # NaN -> NULL

    def money(values: np.ndarray) -> list:
        # Rounded as PostgreSQL rounds (half away from zero), so both databases store the same cents.
        cents, null = money_cents(values)
        return [None if missing else Decimal(c).scaleb(-2) for c, missing in zip(cents.tolist(), null.tolist(), strict=True)]

    n = len(columns["customer_id"])
    out = {
        "customer_id": columns["customer_id"].tolist(),
        "run_id": [run_id] * n,
        "orders_count": columns["orders_count"].tolist(),
        "revenue": np.round((columns["paid_cents"] + columns["refund_cents"]) / 100.0, 2).tolist(),
        "refunds": np.round(columns["refund_cents"] / 100.0, 2).tolist(),
        "historic_value": np.round(columns["paid_cents"] / 100.0, 2).tolist(),
        "rfm_segment": [SEGMENTS[i] for i in columns["segment"].tolist()],
        "computed_at": [computed_at] * n,
        **{c: [v or None for v in columns[c].tolist()] for c in ("r_score", "f_score", "m_score")},
        **{c: money(columns[c]) for c in MONEY_COLUMNS},
        **{c: nullable(columns[c]) for c in FLOAT_COLUMNS},
    }
    names = list(out)
    return names, list(zip(*(out[c] for c in names), strict=True))


def _sqlite(table: str, columns: dict[str, np.ndarray], run_id: int, computed_at: dt.datetime) -> None:
    qn = connection.ops.quote_name
    names, rows = _python_rows(columns, run_id, computed_at)
    placeholders = ", ".join(["%s"] * len(names))
    key = names.index("customer_id")
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({', '.join(qn(c) for c in names)}) SELECT {placeholders}"
            f" WHERE {still_exists('%s')} {_upsert_tail(names)}",
            [(*row, row[key]) for row in rows],
        )


def customer_values_upsert(*, columns: dict[str, np.ndarray], run_id: int, computed_at: dt.datetime) -> None:
    """Insert or replace the CustomerValue rows of `columns` in one transaction."""
    if not len(columns["customer_id"]):
        return
    table = connection.ops.quote_name(CustomerValue._meta.db_table)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The parameters in the order _targets() uses them.
            _postgresql(table, columns, [run_id, list(SEGMENTS), computed_at])
        else:
            _sqlite(table, columns, run_id, computed_at)
