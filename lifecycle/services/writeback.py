"""Write-back of CustomerValue rows from numpy columns: a bulk upsert, and on PostgreSQL a whole
run published as a new generation of the table.

Upsert (`customer_values_upsert`, SQLite and tests), a constant number of statements per chunk.
PostgreSQL: one binary COPY into a temporary staging table whose columns are all fixed-width
(int8 / float8, NULL encoded as NaN or 0) so the COPY stream is built by numpy without a Python
loop, then one INSERT ... SELECT ... ON CONFLICT (customer_id) DO UPDATE that rounds the money to
cents and decodes the NULLs. SQLite: one executemany of INSERT ... ON CONFLICT DO UPDATE.

Generation (`values_generation_*`, PostgreSQL): every row changes every night, so updating the live
table in place rewrites every index entry and fires a foreign-key trigger per row. Instead each run
fills a table of its own (same columns and CHECK constraints, no index, no foreign key) with one
binary COPY per chunk in the table's own column types, then `values_generation_publish` builds the
indexes, adds the foreign keys in one set-based check each and swaps the tables by renaming, the way
REFRESH MATERIALIZED VIEW does. Readers see the old rows until the swap commits, then the new ones.

The columns (see lifecycle.services.scoring.score_customers): integer columns customer_id,
orders_count, refund_cents, paid_cents, r_score, f_score, m_score (0 = NULL), segment (index into
SEGMENTS); float columns in currency units or plain numbers, NaN = NULL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import math
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from django.db import IntegrityError, OperationalError, connection, transaction
from psycopg.copy import QueuedLibpqWriter

from core.connections import on_own_connection
from customers.models import Customer
from lifecycle.models import CustomerValue, RfmSegment

SEGMENTS: tuple[str, ...] = tuple(s.value for s in RfmSegment)
INT_COLUMNS = ("customer_id", "orders_count", "refund_cents", "paid_cents", "r_score", "f_score", "m_score", "segment")
MONEY_COLUMNS = ("aov", "formula_clv", "monetary_value", "expected_order_value", "predicted_clv")
FLOAT_COLUMNS = ("purchase_frequency", "lifespan_years", "frequency", "recency", "T", "p_alive", "expected_purchases")
STAGE_COLUMNS = INT_COLUMNS + MONEY_COLUMNS + FLOAT_COLUMNS

_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)


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
    n = len(columns["customer_id"])
    fields = [("count", ">i2")]
    for name in STAGE_COLUMNS:
        fields += [(f"{name}_len", ">i4"), (name, ">i8" if name in INT_COLUMNS else ">f8")]
    rows = np.empty(n, dtype=np.dtype(fields))
    rows["count"] = len(STAGE_COLUMNS)
    for name in STAGE_COLUMNS:
        rows[f"{name}_len"] = 8
        rows[name] = columns[name]
    return _COPY_HEADER + rows.tobytes() + _COPY_TRAILER


def _upsert_tail(columns: list[str]) -> str:
    qn = connection.ops.quote_name
    updates = ", ".join(f"{qn(c)} = excluded.{qn(c)}" for c in columns if c != "customer_id")
    return f"ON CONFLICT ({qn('customer_id')}) DO UPDATE SET {updates}"


def _still_exists(value: str) -> str:
    # A customer deleted since the aggregate ran is skipped instead of failing the chunk.
    return f"EXISTS (SELECT 1 FROM {connection.ops.quote_name(Customer._meta.db_table)} c WHERE c.id = {value})"


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
            f" WHERE {_still_exists('s.customer_id')} {_upsert_tail([c for c, _ in targets])}",
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
            f" WHERE {_still_exists('%s')} {_upsert_tail(names)}",
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


# --- Generation write-back (PostgreSQL) -----------------------------------------------------------
#
# Names: the run's table is <live>_gen<run id>; the table it replaces is renamed <live>_old<run id>,
# emptied in the swap and dropped right after (or by the next prepare, see _drop_generation_table).
# Until the swap the new table's indexes carry temporary names (<live>_g<run id>_<n>): index names
# share one namespace per schema. CHECK and foreign-key names are per table, so they keep theirs.

log = logging.getLogger(__name__)

PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
COPY_BLOCK_ROWS = 65_536  # rows encoded at a time: bounds the encoder's memory (~30 MB)
# Waiting for a lock makes every later query of that table queue behind the wait: give up soon.
SWAP_LOCK_TIMEOUT = "2s"  # for the live table's readers to finish; then the swap is tried again
SWAP_ATTEMPTS = 5
DROP_LOCK_TIMEOUT = "200ms"  # dropping a table with foreign keys locks the referenced ones (customers!)
MAINTENANCE_MEMORY = "256MB"  # maintenance_work_mem of the index builds and key checks: 1M rows stay in memory
INDEX_BUILDERS = 2  # indexes built side by side; each sort also uses the server's parallel workers


class GenerationError(RuntimeError):
    """The generation write-back cannot go on (see the message)."""


class GenerationMissing(GenerationError):
    """The run's generation table does not exist: never prepared, discarded, or replaced by a newer run."""


def _live_table() -> str:
    return CustomerValue._meta.db_table


def _generation_table(run_id: int) -> str:
    return f"{_live_table()}_gen{int(run_id)}"


def _retired_table(run_id: int) -> str:
    return f"{_live_table()}_old{int(run_id)}"


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(exc.__cause__, "sqlstate", None)


def _set_local(cursor, name: str, value: str) -> None:
    # Only in a transaction of our own: inside a caller's transaction (tests) SET LOCAL would
    # outlive our block, so there we simply wait.
    if not connection.in_atomic_block or len(connection.atomic_blocks) == 1:
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


@contextlib.contextmanager
def _generation_lock():
    """Serialises prepare, publish and discard across processes (two runs, a task run twice).

    A session lock, since publish spans several transactions; every statement under it runs in an
    atomic block, so that inside a caller's transaction an error leaves it usable for the unlock."""
    key = zlib.crc32(f"{_live_table()} generation".encode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def _exists(cursor, table: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [connection.ops.quote_name(table)])
    return cursor.fetchone()[0]


def _unsupported_features(cursor, table: str) -> list[str]:
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


def _drop_generation_table(table: str) -> None:
    """Empty `table`, then drop it if that can be done at once.

    Dropping a table with foreign keys takes ACCESS EXCLUSIVE on the tables they reference
    (customers!) to remove their triggers; rather than queue every customer query behind a long
    reader, give up after DROP_LOCK_TIMEOUT and leave the table empty (and harmless: an empty table
    holds no customer delete back) for the next prepare. TRUNCATE locks only the table itself."""
    qn = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        if not _exists(cursor, table):
            return
        cursor.execute(f"TRUNCATE {qn(table)}")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            _set_local(cursor, "lock_timeout", DROP_LOCK_TIMEOUT)
            cursor.execute(f"DROP TABLE IF EXISTS {qn(table)}")
    except OperationalError as exc:
        if _sqlstate(exc) != "55P03":  # lock_not_available
            raise
        log.warning("%s is busy: table %s is left empty for the next run to drop", Customer._meta.db_table, table)


def _leftover_tables(cursor) -> list[tuple[str, str, int]]:
    """(name, 'gen' or 'old', run id) of the generation tables in the live table's schema."""
    live = _live_table()
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
    live, table = _live_table(), _generation_table(run_id)
    with _generation_lock():
        with transaction.atomic(), connection.cursor() as cursor:
            problems = _unsupported_features(cursor, live)
            if problems:
                raise GenerationError(f"{live} cannot be published by generation: {'; '.join(problems)}")
            leftovers = _leftover_tables(cursor)
        for name, kind, other_run in leftovers:
            # A newer run's table is not ours to drop; an older run's is left from a crash (only one
            # run is active at a time, see clv_run_create).
            if kind == "old" or other_run <= run_id:
                _drop_generation_table(name)
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
    with _generation_lock():
        _drop_generation_table(_generation_table(run_id))


# --- Generation: the binary COPY in the table's own column types ----------------------------------


def money_cents(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cents as int64, NULL mask) of float money, exactly as PostgreSQL's round(value::numeric, 2).

    float8::numeric keeps 15 significant digits ("%.15g"), round() then goes half away from zero:
    1.005 (binary 1.00499999999999989...) becomes 1.01. numpy rounds x * 100 to the nearest cent;
    that agrees unless x * 100 lies within float error of a half cent, and those few values (money
    computed from cents, 5.025, are the usual ones) take PostgreSQL's steps in Python."""
    null = np.isnan(values)
    x = np.where(null, 0.0, values)
    if not np.isfinite(x).all():
        raise ValueError("money value is infinite")
    scaled = np.abs(x) * 100.0
    if (scaled >= 2.0**53).any():  # beyond, cents are not exact floats (and numeric(14, 2) overflows long before)
        raise ValueError("money value out of range")
    cents = np.floor(scaled + 0.5)
    fraction = scaled - np.floor(scaled)
    for i in np.flatnonzero(np.abs(fraction - 0.5) <= 1e-13 * scaled + 1e-9):
        cents[i] = abs(Decimal(f"{x[i]:.15g}").quantize(Decimal("0.01"), rounding=ROUND_HALF_UP).scaleb(2))
    return np.where(x < 0, -cents, cents).astype(np.int64), null


@dataclass(frozen=True)
class _Field:
    """One column of a COPY block: row i's field is the first lengths[i] bytes of data[i]."""

    data: np.ndarray  # uint8, (rows, width), the 4-byte length word included
    lengths: np.ndarray | None  # None: every row uses the whole width


def _fixed_field(values: np.ndarray, dtype: str, null: np.ndarray | None) -> _Field:
    rows = np.empty(len(values), dtype=[("len", ">i4"), ("value", dtype)])
    rows["value"] = values
    rows["len"] = rows.dtype["value"].itemsize
    lengths = None
    if null is not None and null.any():
        rows["len"][null] = -1
        lengths = np.where(null, 4, rows.itemsize).astype(np.int64)
    return _Field(rows.view(np.uint8).reshape(len(values), rows.itemsize), lengths)


NUMERIC_DIGITS = 6  # base-10000 digits: five before the point (any int64 of cents), one after


def _numeric_field(cents: np.ndarray, null: np.ndarray | None) -> _Field:
    """numeric in PostgreSQL's binary form, always NUMERIC_DIGITS digits with weight 4, scale 2;
    the server strips the zero digits and applies the column's precision (overflow is its error)."""
    rows = np.empty(
        len(cents),
        dtype=[("len", ">i4"), ("ndigits", ">i2"), ("weight", ">i2"), ("sign", ">u2"), ("dscale", ">u2"), ("digits", ">i2", (NUMERIC_DIGITS,))],
    )
    rows["len"] = rows.itemsize - 4
    rows["ndigits"], rows["weight"], rows["dscale"] = NUMERIC_DIGITS, NUMERIC_DIGITS - 2, 2
    rows["sign"] = np.where(cents < 0, 0x4000, 0)
    units, hundredths = np.divmod(np.abs(cents), 100)
    rows["digits"][:, -1] = hundredths * 100
    for i in range(NUMERIC_DIGITS - 2, -1, -1):
        units, rows["digits"][:, i] = np.divmod(units, 10_000)
    lengths = None
    if null is not None and null.any():
        rows["len"][null] = -1
        lengths = np.where(null, 4, rows.itemsize).astype(np.int64)
    return _Field(rows.view(np.uint8).reshape(len(cents), rows.itemsize), lengths)


def _text_field(codes: np.ndarray, texts: tuple[str, ...]) -> _Field:
    encoded = [t.encode() for t in texts]
    width = 4 + max(len(e) for e in encoded)
    table = np.zeros((len(encoded), width), dtype=np.uint8)
    for i, e in enumerate(encoded):
        table[i, :4] = np.frombuffer(len(e).to_bytes(4, "big"), dtype=np.uint8)
        table[i, 4 : 4 + len(e)] = np.frombuffer(e, dtype=np.uint8)
    if len(codes) and (codes.min() < 0 or codes.max() >= len(texts)):
        raise ValueError("segment code out of range")
    return _Field(table[codes], (4 + np.array([len(e) for e in encoded]))[codes])


INT_TYPES = {"int2": ">i2", "int4": ">i4", "int8": ">i8"}


def _encode(column: str, type_name: str, kind: str, values, null: np.ndarray | None) -> _Field:
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
        return _fixed_field(values.astype(np.int64), INT_TYPES[type_name], null)
    if type_name == "float8" and kind in ("int", "float"):
        return _fixed_field(values.astype(np.float64), ">f8", null)
    if type_name == "numeric" and kind == "cents":
        return _numeric_field(values, null)
    if type_name in ("varchar", "text") and kind == "segment":
        return _text_field(values, SEGMENTS)
    if type_name == "timestamptz" and kind == "time":
        return _fixed_field(values, ">i8", null)
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
        "computed_at": ("time", np.full(n, (computed_at - PG_EPOCH) // dt.timedelta(microseconds=1), dtype=np.int64), None),
        **{c: ("int", columns[c], columns[c] == 0) for c in ("r_score", "f_score", "m_score")},
        **{c: ("cents", *money_cents(columns[c])) for c in MONEY_COLUMNS},
        **{c: ("float", columns[c], np.isnan(columns[c])) for c in FLOAT_COLUMNS},
    }
    return values


def _copy_blocks(fields: list[_Field], start: int, stop: int) -> Iterator[bytes]:
    """Rows start:stop as binary COPY tuples (no header or trailer), one block per row layout.

    Every field is laid out at its full width, the rows sorted by layout (which NULLs, which text
    lengths; a few per chunk: buyers or not, one per segment name), then each layout's rows are
    one 2-D array whose used byte runs are copied in bulk. Row order within a COPY does not matter."""
    widths = [f.data.shape[1] for f in fields]
    full = np.empty((stop - start, 2 + sum(widths)), dtype=np.uint8)
    full[:, :2] = np.frombuffer(len(fields).to_bytes(2, "big"), dtype=np.uint8)
    offsets = np.cumsum([2, *widths])
    for field, offset, width in zip(fields, offsets, widths, strict=False):
        full[:, offset : offset + width] = field.data[start:stop]
    variable = [i for i, f in enumerate(fields) if f.lengths is not None]
    if not variable:
        yield full.tobytes()
        return
    layout, radix = np.zeros(stop - start, dtype=np.int64), 1
    for i in variable:  # one integer per row layout, each field's length a digit
        lengths = fields[i].lengths[start:stop]
        base = int(lengths.max()) + 1
        if radix * base >= 2**62:
            _, layout = np.unique(layout, return_inverse=True)
            radix = int(layout.max()) + 1
        layout, radix = layout * base + lengths, radix * base
    order = np.argsort(layout, kind="stable")
    full, layout = full[order], layout[order]
    bounds = [0, *(np.flatnonzero(np.diff(layout)) + 1), len(layout)]
    for lo, hi in itertools.pairwise(bounds):
        used = [width if f.lengths is None else int(f.lengths[start + order[lo]]) for f, width in zip(fields, widths, strict=True)]
        runs = [[0, 2]]  # (source offset, length) of the byte runs to keep, adjacent ones merged
        for offset, width, length in zip(offsets, widths, used, strict=False):
            if runs[-1][0] + runs[-1][1] == offset:
                runs[-1][1] += length
            else:
                runs.append([int(offset), length])
            if length < width:
                runs.append([int(offset + width), 0])
        block = np.empty((hi - lo, sum(length for _, length in runs)), dtype=np.uint8)
        at = 0
        for source, length in runs:
            block[:, at : at + length] = full[lo:hi, source : source + length]
            at += length
        yield block.tobytes()


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
    table = _generation_table(run_id)
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
            copy.write(_COPY_HEADER)
            for start in range(0, n, COPY_BLOCK_ROWS):
                for block in _copy_blocks(fields, start, min(n, start + COPY_BLOCK_ROWS)):
                    copy.write(block)
            copy.write(_COPY_TRAILER)


# --- Generation: publish --------------------------------------------------------------------------


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
    cursor.execute(f"DELETE FROM {qn(table)} g WHERE NOT {_still_exists(f'g.{qn(key)}')}")
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
                _set_local(cursor, "maintenance_work_mem", MAINTENANCE_MEMORY)
                cursor.execute(index.create)
            return
        except IntegrityError as exc:
            if _sqlstate(exc) != "23505" or attempt == 2:  # unique_violation
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
        if _sqlstate(exc) != "23503":  # foreign_key_violation
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
                _set_local(cursor, "lock_timeout", SWAP_LOCK_TIMEOUT)
                # The foreign-key checks run with work_mem = maintenance_work_mem: one hash batch.
                _set_local(cursor, "maintenance_work_mem", MAINTENANCE_MEMORY)
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
            if _sqlstate(exc) not in ("55P03", "40P01") or attempt == SWAP_ATTEMPTS:  # lock timeout, deadlock
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
    live, table, retired = _live_table(), _generation_table(run_id), _retired_table(run_id)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with _generation_lock():
        with transaction.atomic(), connection.cursor() as cursor:
            if not _exists(cursor, table):
                run_column = qn(CustomerValue._meta.get_field("run").column)
                cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {qn(live)} WHERE {run_column} = %s)", [run_id])
                if cursor.fetchone()[0]:
                    return  # published already: a task that ran twice
                raise GenerationMissing(f"run {run_id} has no generation table {table} (not prepared, discarded or replaced)")
            problems = _unsupported_features(cursor, live)
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
        _drop_generation_table(retired)
        timings["drop"] = time.perf_counter()
    steps, last = [], started
    for step, at in timings.items():
        steps.append(f"{step} {at - last:.2f}s")
        last = at
    log.info("%s: run %s published (%s)", live, run_id, ", ".join(steps))
