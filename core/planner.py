"""Helping PostgreSQL's planner on the bulk paths (earning a million orders, the lifecycle and CLV
runs, the import): two things it gets wrong there, each in one place.

- Stale statistics. A table's statistics are what ANALYZE last saw: a ledger analyzed while empty
  and then filled by an import stays "empty" to the planner until autovacuum comes round, and a
  per-member lookup planned for an empty table combined every index it had (the tier upgrade read
  the whole earn index for each of 25,000 members: minutes for one batch of a first import with
  tiers). statistics_refresh() analyzes such a table first, when it has changed by more than it held.
- JIT. Plans of set-based statements carry high row estimates, so PostgreSQL compiles them, which
  cost more than running them (0.6 s of a 0.7 s tier upgrade): jit_off() for the transaction."""

from __future__ import annotations

from django.db import connection

# Below this many changed rows a table's old statistics are good enough whatever its size.
STALE_AFTER_ROWS = 10_000


def statistics_refresh(*tables: str, stale_after_rows: int | None = None) -> list[str]:
    """ANALYZE each of `tables` (PostgreSQL) whose rows changed since its last analysis by more than
    it held then, and by at least `stale_after_rows`; the tables analyzed. Cheap when nothing is stale
    (one catalogue query), so a bulk path calls it before each batch: a table growing from empty is
    analyzed a handful of times (each time it has doubled), a large one not at all (autovacuum's
    10% keeps up with it)."""
    if connection.vendor != "postgresql":
        return []
    if stale_after_rows is None:
        stale_after_rows = STALE_AFTER_ROWS
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
               WHERE s.relname = ANY(%s) AND s.schemaname = current_schema()
                 AND s.n_mod_since_analyze > GREATEST(c.reltuples, 0) + %s
               ORDER BY s.relname""",
            [list(tables), stale_after_rows],
        )
        stale = [row[0] for row in cursor.fetchall()]
        for table in stale:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
    return stale


def jit_off(cursor) -> None:
    """No JIT compilation for the rest of the current transaction (PostgreSQL; a no-op elsewhere)."""
    if connection.vendor == "postgresql":
        cursor.execute("SET LOCAL jit = off")
