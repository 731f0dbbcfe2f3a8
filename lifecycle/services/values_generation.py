"""A CLV run's CustomerValue rows as a new generation of the table (PostgreSQL).

Every row changes every night, so updating the live table in place rewrites every index entry and
fires a foreign-key trigger per row. Instead each run fills a table of its own (same columns and
CHECK constraints, no index, no foreign key): values_generation_prepare creates it, each chunk adds
its rows with one binary COPY in the table's own column types (values_generation_write, encoded by
core.copy), and values_publish swaps it in once every chunk is written. A failed run's table is
dropped by values_generation_discard. On SQLite the chunks are upserted (values_upsert).

Names: the run's table is <live>_gen<run id>; the table it replaces is renamed <live>_old<run id>,
emptied in the swap and dropped right after (or by the next prepare, see drop_generation_table).
Until the swap the new table's indexes carry temporary names (<live>_g<run id>_<n>): index names
share one namespace per schema. CHECK and foreign-key names are per table, so they keep theirs."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import zlib

import numpy as np
from django.db import OperationalError, connection, transaction
from psycopg.copy import QueuedLibpqWriter

from core.copy import (
    COPY_HEADER,
    COPY_TRAILER,
    CopyField,
    copy_blocks,
    fixed_field,
    numeric_cents_field,
    text_field,
    timestamptz_value,
)
from core.money import money_cents
from customers.models import Customer
from lifecycle.models import CustomerValue

from .value_columns import FLOAT_COLUMNS, MONEY_COLUMNS, SEGMENTS
from .values_upsert import customer_values_upsert

log = logging.getLogger(__name__)

COPY_BLOCK_ROWS = 65_536  # rows encoded at a time: bounds the encoder's memory (~30 MB)
DROP_LOCK_TIMEOUT = "200ms"  # dropping a table with foreign keys locks the referenced ones (customers!)


class GenerationError(RuntimeError):
    """The generation write-back cannot go on (see the message)."""


class GenerationMissing(GenerationError):
    """The run's generation table does not exist: never prepared, discarded, or replaced by a newer run."""


def live_table() -> str:
    return CustomerValue._meta.db_table


def generation_table(run_id: int) -> str:
    return f"{live_table()}_gen{int(run_id)}"


def retired_table(run_id: int) -> str:
    return f"{live_table()}_old{int(run_id)}"


def sqlstate(exc: BaseException) -> str | None:
    return getattr(exc.__cause__, "sqlstate", None)


def set_local(cursor, name: str, value: str) -> None:
    # Only in a transaction of our own: inside a caller's transaction (tests) SET LOCAL would
    # outlive our block, so there we simply wait.
    if not connection.in_atomic_block or len(connection.atomic_blocks) == 1:
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


@contextlib.contextmanager
def generation_lock():
    """Serialises prepare, publish and discard across processes (two runs, a task run twice).

    A session lock, since publish spans several transactions; every statement under it runs in an
    atomic block, so that inside a caller's transaction an error leaves it usable for the unlock."""
    key = zlib.crc32(f"{live_table()} generation".encode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def table_exists(cursor, table: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [connection.ops.quote_name(table)])
    return cursor.fetchone()[0]


def unsupported_features(cursor, table: str) -> list[str]:
    """What a copy-and-rename would lose or break on `table`; the swap refuses rather than lose it."""
    cursor.execute(
        """
        SELECT name FROM pg_class t CROSS JOIN LATERAL (VALUES
          ('a foreign key from another table points at it',
           EXISTS (SELECT 1 FROM pg_constraint WHERE confrelid = t.oid)),
          ('a view, rule or SQL function depends on it',
           EXISTS (SELECT 1 FROM pg_depend d WHERE d.refobjid = t.oid AND d.refclassid = 'pg_class'::regclass
                   AND d.classid IN ('pg_rewrite'::regclass, 'pg_proc'::regclass))),
          ('it has triggers of its own', EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = t.oid AND NOT tgisinternal)),
          ('it has row security policies', EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = t.oid)),
          ('it has extended statistics', EXISTS (SELECT 1 FROM pg_statistic_ext WHERE stxrelid = t.oid)),
          ('it has an identity, serial or generated column (its sequence would restart)',
           EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
                   AND (a.attidentity <> '' OR a.attgenerated <> ''))
           OR EXISTS (SELECT 1 FROM pg_depend d WHERE d.refobjid = t.oid AND d.classid = 'pg_class'::regclass
                      AND d.deptype IN ('a', 'i') AND (SELECT relkind FROM pg_class WHERE oid = d.objid) = 'S')),
          ('it has an exclusion constraint', EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = t.oid AND contype = 'x')),
          ('it is partitioned or inherited', t.relkind <> 'r'
           OR EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = t.oid OR inhparent = t.oid)),
          ('it is in a publication', EXISTS (SELECT 1 FROM pg_publication_rel WHERE prrelid = t.oid))
        ) AS problems(name, present)
        WHERE t.oid = %s::regclass AND present
        """,
        [connection.ops.quote_name(table)],
    )
    return [name for (name,) in cursor.fetchall()]


def drop_generation_table(table: str) -> None:
    """Empty `table`, then drop it if that can be done at once.

    Dropping a table with foreign keys takes ACCESS EXCLUSIVE on the tables they reference
    (customers!) to remove their triggers; rather than queue every customer query behind a long
    reader, give up after DROP_LOCK_TIMEOUT and leave the table empty (and harmless: an empty table
    holds no customer delete back) for the next prepare. TRUNCATE locks only the table itself."""
    qn = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        if not table_exists(cursor, table):
            return
        cursor.execute(f"TRUNCATE {qn(table)}")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            set_local(cursor, "lock_timeout", DROP_LOCK_TIMEOUT)
            cursor.execute(f"DROP TABLE IF EXISTS {qn(table)}")
    except OperationalError as exc:
        if sqlstate(exc) != "55P03":  # lock_not_available
            raise
        log.warning("%s is busy: table %s is left empty for the next run to drop", Customer._meta.db_table, table)


def _leftover_tables(cursor) -> list[tuple[str, str, int]]:
    """(name, 'gen' or 'old', run id) of the generation tables in the live table's schema."""
    live = live_table()
    cursor.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND c.relname ~ %s"
        " AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = %s::regclass)",
        [f"^{live}_(gen|old)[0-9]+$", connection.ops.quote_name(live)],
    )
    found = []
    for (name,) in cursor.fetchall():
        suffix = name[len(live) + 1 :]
        found.append((name, suffix[:3], int(suffix[3:])))
    return found


def values_generation_prepare(*, run_id: int) -> None:
    """Create run `run_id`'s empty generation table; drop what crashed runs left behind.

    Same columns, defaults, storage and CHECK constraints as the live table, same owner and grants;
    no index and no foreign key (publish adds them). Calling it again for the same run starts the
    generation over. SQLite: nothing (the chunks are upserted)."""
    if connection.vendor != "postgresql":
        return
    qn = connection.ops.quote_name
    live, table = live_table(), generation_table(run_id)
    with generation_lock():
        with transaction.atomic(), connection.cursor() as cursor:
            problems = unsupported_features(cursor, live)
            if problems:
                raise GenerationError(f"{live} cannot be published by generation: {'; '.join(problems)}")
            leftovers = _leftover_tables(cursor)
        for name, kind, other_run in leftovers:
            # A newer run's table is not ours to drop; an older run's is left from a crash (only one
            # run is active at a time, see clv_run_create).
            if kind == "old" or other_run <= run_id:
                drop_generation_table(name)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE {qn(table)} (LIKE {qn(live)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
                " INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS)"
            )
            cursor.execute(
                "SELECT pg_get_userbyid(relowner), array_to_string(reloptions, ', '), obj_description(oid, 'pg_class')"
                " FROM pg_class WHERE oid = %s::regclass",
                [qn(live)],
            )
            owner, options, comment = cursor.fetchone()
            if options:
                cursor.execute(f"ALTER TABLE {qn(table)} SET ({options})")
            if comment is not None:
                cursor.execute(f"COMMENT ON TABLE {qn(table)} IS %s", [comment])
            cursor.execute(
                "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,"
                " a.privilege_type, a.is_grantable"
                " FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = %s::regclass AND a.grantee <> c.relowner",
                [qn(live)],
            )
            for grantee, privilege, grantable in cursor.fetchall():
                option = " WITH GRANT OPTION" if grantable else ""
                cursor.execute(f"GRANT {privilege} ON {qn(table)} TO {grantee}{option}")
            cursor.execute("SELECT current_user")
            if cursor.fetchone()[0] != owner:
                cursor.execute(f"ALTER TABLE {qn(table)} OWNER TO {qn(owner)}")


def values_generation_discard(*, run_id: int) -> None:
    """Drop run `run_id`'s generation table (a failed run); the live table is untouched."""
    if connection.vendor != "postgresql":
        return
    with generation_lock():
        drop_generation_table(generation_table(run_id))


# --- The binary COPY in the table's own column types ------------------------------------------


INT_TYPES = {"int2": ">i2", "int4": ">i4", "int8": ">i8"}


def _encode(column: str, type_name: str, kind: str, values, null: np.ndarray | None) -> CopyField:
    """The COPY field of one column: the value `kind` in the column's type `type_name`."""
    if type_name in INT_TYPES and kind in ("int", "float"):
        if kind == "float":  # float8 -> integer assignment cast: round half to even, NaN = NULL
            nan = np.isnan(values)
            null = nan if null is None else null | nan
            values = np.rint(np.where(nan, 0.0, values))
        info = np.iinfo(INT_TYPES[type_name].replace(">", ""))
        live = values if null is None else values[~null]
        if len(live) and (live.min() < info.min or live.max() > info.max):
            raise ValueError(f"{column}: value out of range for {type_name}")
        return fixed_field(values.astype(np.int64), INT_TYPES[type_name], null)
    if type_name == "float8" and kind in ("int", "float"):
        return fixed_field(values.astype(np.float64), ">f8", null)
    if type_name == "numeric" and kind == "cents":
        return numeric_cents_field(values, null)
    if type_name in ("varchar", "text") and kind == "segment":
        return text_field(values, SEGMENTS)
    if type_name == "timestamptz" and kind == "time":
        return fixed_field(values, ">i8", null)
    raise GenerationError(f"{column}: cannot write {kind} values into a {type_name} column")


def _generation_values(columns: dict[str, np.ndarray], run_id: int, computed_at: dt.datetime) -> dict[str, tuple]:
    """CustomerValue column -> (kind, values, NULL mask or None): what _targets() computes in SQL."""
    n = len(columns["customer_id"])
    paid, refund = columns["paid_cents"].astype(np.int64), columns["refund_cents"].astype(np.int64)
    values = {
        "customer_id": ("int", columns["customer_id"], None),
        "run_id": ("int", np.full(n, run_id, dtype=np.int64), None),
        "orders_count": ("int", columns["orders_count"], None),
        "revenue": ("cents", paid + refund, None),
        "refunds": ("cents", refund, None),
        "historic_value": ("cents", paid, None),
        "rfm_segment": ("segment", columns["segment"].astype(np.int64), None),
        "computed_at": ("time", np.full(n, timestamptz_value(computed_at), dtype=np.int64), None),
        **{c: ("int", columns[c], columns[c] == 0) for c in ("r_score", "f_score", "m_score")},
        **{c: ("cents", *money_cents(columns[c])) for c in MONEY_COLUMNS},
        **{c: ("float", columns[c], np.isnan(columns[c])) for c in FLOAT_COLUMNS},
    }
    return values



def values_generation_write(*, run_id: int, columns: dict[str, np.ndarray], computed_at: dt.datetime) -> None:
    """Add one chunk's rows to run `run_id`'s generation table, committed on return.

    Any process may write any chunk, in parallel. The rows are not checked against customers here
    (publish drops those deleted meanwhile); a chunk written twice is deduplicated by publish.
    SQLite: the chunk is upserted into the live table."""
    if connection.vendor != "postgresql":
        customer_values_upsert(columns=columns, run_id=run_id, computed_at=computed_at)
        return
    n = len(columns["customer_id"])
    if not n:
        return
    qn = connection.ops.quote_name
    table = generation_table(run_id)
    values = _generation_values(columns, run_id, computed_at)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
            " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            [qn(table)],
        )
        types = dict(cursor.fetchall())
        if not types:
            raise GenerationMissing(f"run {run_id} has no generation table {table} (not prepared, discarded or replaced)")
        unknown = sorted(set(values) - set(types))
        if unknown:
            raise GenerationError(f"{table} has no column {', '.join(unknown)}")
        names = [c for c in types if c in values]
        fields = [_encode(c, types[c], *values[c]) for c in names]
        copy_sql = f"COPY {qn(table)} ({', '.join(qn(c) for c in names)}) FROM STDIN (FORMAT BINARY)"
        # psycopg's copy() bypasses Django's error wrapper: map its errors to django.db's (DataError...).
        # The queued writer sends from a thread: numpy encodes the next block while the server
        # takes in the last one.
        raw = cursor.cursor  # psycopg's own: Django's debug wrapper takes no writer
        with connection.wrap_database_errors, raw.copy(copy_sql, writer=QueuedLibpqWriter(raw)) as copy:
            copy.write(COPY_HEADER)
            for start in range(0, n, COPY_BLOCK_ROWS):
                for block in copy_blocks(fields, start, min(n, start + COPY_BLOCK_ROWS)):
                    copy.write(block)
            copy.write(COPY_TRAILER)
