"""Publishing a CLV run's generation table: the table swap.

Once the last chunk is in, values_generation_publish builds the live table's indexes on the run's
table (read from the catalog, so they follow the migrations), adds the foreign keys with one
set-based check each, then swaps the tables by renaming, the way REFRESH MATERIALIZED VIEW does:
every index and constraint keeps its name, readers see the old rows until the swap commits and the
new ones after."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.db import IntegrityError, OperationalError, connection, transaction

from core.connections import on_own_connection
from customers.models import Customer
from lifecycle.models import CustomerValue

from .value_columns import still_exists
from .values_generation import (
    GenerationError,
    GenerationMissing,
    drop_generation_table,
    generation_lock,
    generation_table,
    live_table,
    retired_table,
    set_local,
    sqlstate,
    table_exists,
    unsupported_features,
)

log = logging.getLogger(__name__)

# Waiting for a lock makes every later query of that table queue behind the wait: give up soon.
SWAP_LOCK_TIMEOUT = "2s"  # for the live table's readers to finish; then the swap is tried again
SWAP_ATTEMPTS = 5
MAINTENANCE_MEMORY = "256MB"  # maintenance_work_mem of the index builds and key checks: 1M rows stay in memory
INDEX_BUILDERS = 2  # indexes built side by side; each sort also uses the server's parallel workers


@dataclass(frozen=True)
class _Index:
    name: str  # the live index's name, which the new one takes in the swap
    create: str  # CREATE INDEX on the generation table, under the temporary name
    temporary: str  # the new index's name until the swap
    retired: str  # the old index's name after the swap (its table is dropped right after)
    constraint: str | None  # ALTER TABLE ... ADD CONSTRAINT ... USING INDEX for a primary key / unique


def _index_plan(cursor, live: str, table: str, run_id: int) -> list[_Index]:
    """The live table's indexes as statements for the generation table, read from the catalog so
    they follow the migrations. In build order: the primary key and unique ones first (a chunk
    written twice shows up there), then the ones on more columns (the longer sorts)."""
    qn = connection.ops.quote_name
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(x.indexrelid), format('INDEX %%I ON %%I.%%I ', i.relname, n.nspname, t.relname),"
        " c.contype, c.condeferrable, c.condeferred"
        " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
        " JOIN pg_namespace n ON n.oid = t.relnamespace"
        " LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid AND c.contype IN ('p', 'u')"
        " WHERE x.indrelid = %s::regclass ORDER BY x.indisprimary DESC, x.indisunique DESC, x.indnatts DESC, i.relname",
        [qn(live)],
    )
    plan = []
    for k, (name, definition, target, contype, deferrable, deferred) in enumerate(cursor.fetchall()):
        if definition.count(target) != 1:
            raise GenerationError(f"cannot read the definition of index {name}: {definition}")
        temporary, retired = f"{live}_g{run_id}_{k}", f"{live}_o{run_id}_{k}"
        constraint = None
        if contype:
            kind = "PRIMARY KEY" if contype == "p" else "UNIQUE"
            timing = (" DEFERRABLE INITIALLY " + ("DEFERRED" if deferred else "IMMEDIATE")) if deferrable else ""
            constraint = f"ALTER TABLE {qn(table)} ADD CONSTRAINT {qn(temporary)} {kind} USING INDEX {qn(temporary)}{timing}"
        create = definition.replace(target, f"INDEX {qn(temporary)} ON {qn(table)} ")
        plan.append(_Index(name=name, create=create, temporary=temporary, retired=retired, constraint=constraint))
    return plan


def _foreign_keys(cursor, live: str) -> list[tuple[str, str]]:
    """(name, definition) of the live table's foreign keys; deferrability comes with the definition."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'"
        " ORDER BY conname",
        [connection.ops.quote_name(live)],
    )
    return [(name, definition.removesuffix(" NOT VALID")) for name, definition in cursor.fetchall()]


def _delete_orphans(cursor, table: str) -> int:
    """Drop the rows of customers deleted since their chunk was scored; returns how many."""
    qn = connection.ops.quote_name
    key = CustomerValue._meta.pk.column
    cursor.execute(f"DELETE FROM {qn(table)} g WHERE NOT {still_exists(f'g.{qn(key)}')}")
    return cursor.rowcount


def _delete_duplicates(cursor, table: str) -> int:
    """Keep the latest row per customer: a chunk task that ran twice wrote its rows twice."""
    qn = connection.ops.quote_name
    key = qn(CustomerValue._meta.pk.column)
    cursor.execute(
        f"DELETE FROM {qn(table)} WHERE ctid IN (SELECT ctid FROM (SELECT ctid, row_number() OVER"
        f" (PARTITION BY {key} ORDER BY computed_at DESC, ctid DESC) AS n FROM {qn(table)}) d WHERE d.n > 1)"
    )
    return cursor.rowcount


def _build_index(table: str, index: _Index) -> None:
    for attempt in (1, 2):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                set_local(cursor, "maintenance_work_mem", MAINTENANCE_MEMORY)
                cursor.execute(index.create)
            return
        except IntegrityError as exc:
            if sqlstate(exc) != "23505" or attempt == 2:  # unique_violation
                raise
        with transaction.atomic(), connection.cursor() as cursor:
            log.warning("%s: %d rows written twice, removed", table, _delete_duplicates(cursor, table))


def _build_indexes(table: str, indexes: list[_Index]) -> None:
    """Build the indexes, INDEX_BUILDERS at a time, each in a connection of its own; then make the
    primary key (and unique constraints) of theirs. Inside a caller's transaction the generation
    table is visible to it alone: there one after the other."""
    if connection.in_atomic_block:
        for index in indexes:
            _build_index(table, index)
    else:
        with ThreadPoolExecutor(INDEX_BUILDERS) as pool:
            for build in [pool.submit(on_own_connection(_build_index), table, index) for index in indexes]:
                build.result()
    with transaction.atomic(), connection.cursor() as cursor:
        for index in indexes:
            if index.constraint:
                cursor.execute(index.constraint)


def _add_foreign_keys(cursor, table: str, foreign_keys: list[tuple[str, str]]) -> None:
    """Add and validate the foreign keys: one set-based check each, no per-row trigger."""
    if not foreign_keys:
        return
    qn = connection.ops.quote_name
    statement = f"ALTER TABLE {qn(table)} " + ", ".join(f"ADD CONSTRAINT {qn(name)} {definition}" for name, definition in foreign_keys)
    try:
        with transaction.atomic():
            cursor.execute(statement)
        return
    except IntegrityError as exc:
        if sqlstate(exc) != "23503":  # foreign_key_violation
            raise
    # Customers were deleted since their chunk was scored (rare: no pass over the rows otherwise).
    # Hold customer writes off until the swap commits, drop their rows, then the check passes.
    cursor.execute(f"LOCK TABLE {qn(Customer._meta.db_table)} IN SHARE ROW EXCLUSIVE MODE")
    log.info("%s: %d rows of customers deleted during publish removed", table, _delete_orphans(cursor, table))
    cursor.execute(statement)


def _swap(live: str, table: str, retired: str, indexes: list[_Index], foreign_keys: list[tuple[str, str]]) -> None:
    """Foreign keys on, then the renames: readers wait only for the renames."""
    qn = connection.ops.quote_name
    if connection.in_atomic_block:
        # Inside a caller's transaction (tests) the old table may have deferred foreign-key checks
        # pending, and a table with pending trigger events cannot be emptied: run them now, as
        # Django's own check_constraints() does.
        connection.check_constraints()
    for attempt in range(1, SWAP_ATTEMPTS + 1):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                set_local(cursor, "lock_timeout", SWAP_LOCK_TIMEOUT)
                # The foreign-key checks run with work_mem = maintenance_work_mem: one hash batch.
                set_local(cursor, "maintenance_work_mem", MAINTENANCE_MEMORY)
                # SHARE: readers go on, writers of the live table (deleting a customer deletes its
                # value first) wait, so none is half-way through when the foreign keys are checked.
                cursor.execute(f"LOCK TABLE {qn(live)} IN SHARE MODE")
                _add_foreign_keys(cursor, table, foreign_keys)
                cursor.execute(f"LOCK TABLE {qn(live)} IN ACCESS EXCLUSIVE MODE")
                cursor.execute(f"ALTER TABLE {qn(live)} RENAME TO {qn(retired)}")
                for index in indexes:
                    cursor.execute(f"ALTER INDEX {qn(index.name)} RENAME TO {qn(index.retired)}")
                cursor.execute(f"ALTER TABLE {qn(table)} RENAME TO {qn(live)}")
                for index in indexes:  # renames a primary key's constraint with its index
                    cursor.execute(f"ALTER INDEX {qn(index.temporary)} RENAME TO {qn(index.name)}")
                # Empty now, so that the old rows' foreign keys hold no customer delete back until
                # the table is dropped.
                cursor.execute(f"TRUNCATE {qn(retired)}")
            return
        except OperationalError as exc:
            if sqlstate(exc) not in ("55P03", "40P01") or attempt == SWAP_ATTEMPTS:  # lock timeout, deadlock
                raise
            log.warning("%s busy (%s); swap attempt %d of %d", live, exc, attempt, SWAP_ATTEMPTS)
            time.sleep(attempt)


def values_generation_publish(*, run_id: int) -> None:
    """Make run `run_id`'s generation the live CustomerValue table, once every chunk is written.

    Builds the live table's indexes (dropping rows written twice if the primary key finds any),
    VACUUM ANALYZEs, then in one transaction adds the foreign keys, each validated by one set-based
    query (rows of customers deleted meanwhile are dropped first if it fails), and swaps the tables
    by renaming; then drops the old one. Every index and constraint keeps its name,
    so migrations go on working. Readers (READ COMMITTED, Django's default) see the old rows until
    the swap commits and the new ones after; they wait only while the renames hold ACCESS EXCLUSIVE.
    Publishing a run again is a no-op. SQLite: nothing (the chunks were upserted)."""
    if connection.vendor != "postgresql":
        return
    qn = connection.ops.quote_name
    live, table, retired = live_table(), generation_table(run_id), retired_table(run_id)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with generation_lock():
        with transaction.atomic(), connection.cursor() as cursor:
            if not table_exists(cursor, table):
                run_column = qn(CustomerValue._meta.get_field("run").column)
                cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {qn(live)} WHERE {run_column} = %s)", [run_id])
                if cursor.fetchone()[0]:
                    return  # published already: a task that ran twice
                raise GenerationMissing(f"run {run_id} has no generation table {table} (not prepared, discarded or replaced)")
            problems = unsupported_features(cursor, live)
            if problems:
                raise GenerationError(f"{live} cannot be published by generation: {'; '.join(problems)}")
            # A run scores every customer: an empty generation over a filled table means chunks
            # were never written (customers deleted since delete their values with them).
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {qn(table)}), EXISTS (SELECT 1 FROM {qn(live)})")
            if cursor.fetchone() == (False, True):
                raise GenerationError(f"run {run_id} wrote no values: {live} is left as it is")
            indexes = _index_plan(cursor, live, table, run_id)
            foreign_keys = _foreign_keys(cursor, live)
        _build_indexes(table, indexes)
        timings["indexes"] = time.perf_counter()
        if connection.in_atomic_block:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {qn(table)}")
        else:
            # Autovacuum may be off: the planner needs the statistics, index-only scans the
            # visibility map.
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM (ANALYZE) {qn(table)}")
        timings["analyze"] = time.perf_counter()
        _swap(live, table, retired, indexes, foreign_keys)
        timings["swap"] = time.perf_counter()
        drop_generation_table(retired)
        timings["drop"] = time.perf_counter()
    steps, last = [], started
    for step, at in timings.items():
        steps.append(f"{step} {at - last:.2f}s")
        last = at
    log.info("%s: run %s published (%s)", live, run_id, ", ".join(steps))

