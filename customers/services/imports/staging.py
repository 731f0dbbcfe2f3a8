"""Set-based writes of one chunk of parsed rows: load a TEMP staging table, then merge it with SQL.

One code path for both databases. The only vendor differences: PostgreSQL loads the staging table
with COPY and SQLite with executemany, the column types of the staging table, how a NULL-safe
"differs from" is spelled, and the planner settings each merge starts with on PostgreSQL (see
Staging.plan_by_index). Existing rows are updated only when a value really changes (so a re-run
writes nothing and `updated_at` keeps meaning "last changed"), new rows are inserted; the two
rowcounts are the created and updated figures on both databases.

Orders and events name their customer by its external id: they are loaded into a second table
first and staged from there in customer order with the customer's id (Staging.stage_by_customer).
They can be merged by several connections at once (service.py): Staging.split deals a chunk's rows
out by customer, so two writers never create, lock or insert for the same customer.

Empty cells never erase: a value missing from the file keeps what the database has (and takes the
model default for a new row)."""

from __future__ import annotations

import datetime as dt
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.import_hooks import customer_import_hooks
from customers.models import AcquisitionChannel, ActivityEvent, Customer, Order
from customers.order_feed import FEED_COLUMNS, order_feed_table, order_feed_writer_lock
from customers.services.customers import customers_missing_insert_sql

STAGE = "import_stage"
RAW = "import_raw"  # orders and events as loaded, before stage_by_customer
# Column type of the staging table: (PostgreSQL, SQLite). SQLite gets the affinities Django uses.
TYPES = {
    "int": ("integer", "integer"),
    "text": ("text", "text"),
    "datetime": ("timestamptz", "text"),
    "date": ("date", "text"),
    "money": ("numeric(12,2)", "decimal"),
    "json": ("jsonb", "text"),
    "id": ("bigint", "integer"),
}


@dataclass
class ChunkOutcome:
    created: int = 0
    updated: int = 0
    customers_created: int = 0
    channels_created: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _differs(a: str, b: str) -> str:
    """NULL-safe inequality."""
    if connection.vendor == "postgresql":
        return f"{a} IS DISTINCT FROM {b}"
    return f"{a} IS NOT {b}"


def _sqlite_datetime(value: dt.datetime | None) -> str | None:
    """Django's SQLite form of a date-time: naive UTC text."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ")


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str | None) -> str:
    """A value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if _COPY_SPECIAL.search(value):
        return value.translate(_COPY_ESCAPES)
    return value


def _copy_plain(value) -> str:
    """A number or an aware date-time (its ISO form carries the offset) in COPY text format."""
    return "\\N" if value is None else str(value)


class Staging(ABC):
    """The staging table of one kind, and the SQL that merges it into the real tables."""

    # (name, type) after the leading "line" column; the order of RowParser.parse's tuple.
    columns: tuple[tuple[str, str], ...] = ()
    # Whether rows name a customer by "customer_ext": loaded into RAW, then staged with the customer's
    # id in a column customer_id (stage_by_customer), and a chunk can be split by customer (split()).
    by_customer = False
    # by_customer kinds: the columns that, after customer_ext, make a row's unique key (see
    # stage_by_customer: the order the rows are inserted, and so locked, in).
    key_columns: tuple[str, ...] = ()

    def __init__(self, *, now=None):
        """`now`: the created/updated time to stamp, so the writers of one import stamp the same one."""
        self.vendor = connection.vendor
        self.names = ["line"] + [name for name, _type in self.columns]
        self._datetime_positions = [i + 1 for i, (_n, kind) in enumerate(self.columns) if kind == "datetime"]
        self.now = now if now is not None else connection.ops.adapt_datetimefield_value(timezone.now())
        self.staged = 0  # rows in the staging table
        # Whether new rows are inserted without ON CONFLICT (see insert_new_rows, which orders and
        # events use); the service merges a chunk again only while this is true.
        self.expect_new = self.by_customer
        self._analyzed = False

    # --- the staging table ------------------------------------------------------------------------
    def create(self, cursor) -> None:
        index = 0 if self.vendor == "postgresql" else 1
        columns = [f"{name} {TYPES[kind][index]}" for name, kind in (("line", "int"), *self.columns)]
        self.drop(cursor)
        if self.by_customer:
            cursor.execute(f"CREATE TEMP TABLE {RAW} ({', '.join(columns)})")
            columns.append(f"customer_id {TYPES['id'][index]}")
        cursor.execute(f"CREATE TEMP TABLE {STAGE} ({', '.join(columns)})")

    def drop(self, cursor) -> None:
        tables = [STAGE, RAW] if self.by_customer else [STAGE]
        if self.vendor == "postgresql":
            cursor.execute(f"DROP TABLE IF EXISTS {', '.join(tables)}")
        else:  # one table per statement
            for table in tables:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")

    def prepare(self, rows: list[tuple]):
        """The rows in the form load() sends: COPY text for PostgreSQL, parameter rows for SQLite.

        Pure Python without the database, so it runs in the parsing thread (see service.py)."""
        if self.vendor == "postgresql":
            formats = [_copy_plain] + [_copy_text if kind in ("text", "json") else _copy_plain for _n, kind in self.columns]
            return "".join(["\t".join([f(v) for f, v in zip(formats, row)]) + "\n" for row in rows])
        positions = self._datetime_positions
        if not positions:
            return rows
        prepared = [list(row) for row in rows]
        for row in prepared:
            for i in positions:
                row[i] = _sqlite_datetime(row[i])
        return prepared

    def split(self, prepared: str, parts: int) -> list[str]:
        """PostgreSQL's COPY text of a chunk dealt into `parts` pieces by customer (by_customer kinds).

        All rows of one customer land in the same piece, chunk after chunk (hash() of a str is fixed
        for the life of the process), so each writer creates and locks its own customers only."""
        position = self.names.index("customer_ext")
        pieces: list[list[str]] = [[] for _ in range(parts)]
        rows = prepared.split("\n")  # COPY text escapes newlines inside values
        rows.pop()  # after the last newline
        for row in rows:
            pieces[hash(row.split("\t", position + 1)[position]) % parts].append(row)
        return ["\n".join(piece) + "\n" if piece else "" for piece in pieces]

    def load(self, cursor, prepared) -> None:
        """Replace the staged rows with a chunk made by prepare() (on PostgreSQL, parts of it made by
        split() for by_customer kinds, which then go on with stage_by_customer())."""
        names = ", ".join(self.names)
        target, tables = (RAW, [RAW, STAGE]) if self.by_customer else (STAGE, [STAGE])
        if self.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(tables)}")
            with cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
                copy.write(prepared)
            self.staged = cursor.rowcount
        else:
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")
            placeholders = ", ".join(["%s"] * len(self.names))
            cursor.executemany(f"INSERT INTO {target} ({names}) VALUES ({placeholders})", prepared)
            self.staged = len(prepared)
        if not self.by_customer:
            self.analyze_once(cursor)

    def stage_by_customer(self, cursor) -> None:
        """Stage the loaded rows (by_customer kinds) in customer order, with their customer's id
        (NULL for a customer we do not know yet, see create_missing_customers).

        In that order the lookups of the customers, the foreign-key checks at commit and the entries
        of order_customer_time_idx go through the indexes in order: 40% less work for the first two
        than in the file's order. Sorted byte-wise (COLLATE "C"), the cheapest sort; the rows of one
        customer are together either way. OFFSET 0 keeps the sort below the lookups.

        Then by the rest of the unique key (key_columns), so the rows are inserted in one order of
        their keys: two imports writing the same orders or events at once lock them in the same
        order, and one waits for the other instead of both waiting for each other (a deadlock). (For
        an order the two files give to different customers, the orders could still differ.)"""
        names = ", ".join(self.names)
        keys = "".join(f', {name} COLLATE "C"' if dict(self.columns)[name] == "text" else f", {name}" for name in self.key_columns)
        order = f' ORDER BY customer_ext COLLATE "C"{keys} OFFSET 0' if self.vendor == "postgresql" else ""
        cursor.execute(
            f"INSERT INTO {STAGE} ({names}, customer_id)"
            f" SELECT {', '.join(f'r.{name}' for name in self.names)},"
            f" (SELECT c.id FROM {_table(Customer)} c WHERE c.external_id = r.customer_ext)"
            f" FROM (SELECT {names} FROM {RAW}{order}) r"
        )
        self.analyze_once(cursor)

    def analyze_once(self, cursor) -> None:
        if self.vendor == "postgresql" and not self._analyzed:
            # A temp table has no statistics unless asked, and the merge plans better with them.
            # Once is enough: later chunks look alike and the planner scales by size.
            cursor.execute(f"ANALYZE {STAGE}")
            self._analyzed = True

    def remove_lines(self, cursor, lines: list[int]) -> None:
        cursor.executemany(f"DELETE FROM {STAGE} WHERE line = %s", [(line,) for line in lines])
        self.staged -= len(lines)

    # --- merging ----------------------------------------------------------------------------------
    @abstractmethod
    def merge(self, cursor, *, incomplete: dict[int, str]) -> ChunkOutcome:
        """Write the staged rows; `incomplete` maps lines lacking values a new row needs to the reason."""

    def plan_by_index(self, cursor) -> None:
        """For the rest of the chunk's transaction (SET LOCAL), join staged rows by index lookups.

        Every join of a merge matches a staged row to at most one row through a unique index. Left
        alone, PostgreSQL's planner often hashes or sorts a whole table instead (it did for orders on
        every chunk, 1M rows deep): its row counts lag behind a bulk load (autovacuum analyzes later)
        and it expects more matches than a fresh import has. Probing the index per staged row costs
        the chunk's size, never the table's. JIT is off too: it compiled those plans for nothing."""
        if self.vendor == "postgresql":
            cursor.execute(
                "SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true),"
                " set_config('jit', 'off', true)"
            )

    def create_missing_customers(self, cursor, outcome: ChunkOutcome) -> None:
        """Orders and events may name a customer we do not know yet: create it with just its id,
        and fill in customer_id of the staged rows that lack it.

        In external_id order, so imports running at the same time that need the same new customers
        wait for each other at most, never in a cycle (a deadlock). They were not there when looked
        up, so only such another import makes one exist: insert_new_rows deals with that."""
        lookup = f"(SELECT c.id FROM {_table(Customer)} c WHERE c.external_id = {STAGE}.customer_ext)"
        sql, params = customers_missing_insert_sql(
            source=f"SELECT s.customer_ext AS external_id FROM {STAGE} s WHERE s.customer_id IS NULL", now=self.now
        )
        outcome.customers_created += self.insert_new_rows(
            cursor, sql, params, on_conflict="ON CONFLICT (external_id) DO NOTHING"
        )
        # Also when nothing was inserted: another import may have created them since the lookup.
        cursor.execute(f"UPDATE {STAGE} SET customer_id = {lookup} WHERE customer_id IS NULL")

    def insert_new_rows(self, cursor, sql: str, params: list, *, on_conflict: str) -> int:
        """Run `sql`, an INSERT of the staged rows, adding `on_conflict` unless new rows are expected;
        returns how many rows were inserted.

        ON CONFLICT looks every row up in the unique index before inserting it, a fifth of the work
        of inserting an order, which the chunks of a fresh import do not need. So the first chunks
        go without; when a row exists after all (an order or event imported before, a customer
        another import just created), the INSERT fails with an IntegrityError, the service merges
        the chunk again (service._merge), and this staging's later chunks use ON CONFLICT."""
        cursor.execute(sql if self.expect_new else f"{sql} {on_conflict}", params)
        return cursor.rowcount

    def reject_incomplete_new_rows(
        self, cursor, outcome: ChunkOutcome, incomplete: dict[int, str], *, lacking: str, exists: str
    ) -> None:
        """Rows lacking a value a new row needs are fine for updates; refuse them only when new."""
        if not incomplete:
            return
        cursor.execute(f"SELECT s.line FROM {STAGE} s WHERE ({lacking}) AND NOT EXISTS ({exists})")
        lines = [line for (line,) in cursor.fetchall()]
        if lines:
            self.remove_lines(cursor, lines)
            outcome.rejected.extend((line, incomplete[line]) for line in lines)


class OrderStaging(Staging):
    columns = (
        ("customer_ext", "text"),
        ("external_id", "text"),
        ("ordered_at", "datetime"),
        ("amount", "money"),
        ("currency", "text"),
        ("status", "text"),
    )
    by_customer = True
    key_columns = ("external_id",)

    def merge(self, cursor, *, incomplete):
        outcome = ChunkOutcome()
        order = _table(Order)
        order_feed_writer_lock(cursor)  # before any row is locked: this chunk writes the order feed
        self.plan_by_index(cursor)
        self.stage_by_customer(cursor)
        self.reject_incomplete_new_rows(
            cursor,
            outcome,
            incomplete,
            lacking="s.ordered_at IS NULL OR s.amount IS NULL",
            exists=f"SELECT 1 FROM {order} o WHERE o.external_id = s.external_id",
        )
        self.create_missing_customers(cursor, outcome)
        # Inserting first, so a fresh import looks no order up (insert_new_rows), and when every row
        # was new there is nothing to update. (Rows lacking a value are existing orders, see above.)
        # Each new order also goes into the order feed (customers.order_feed), in the same statement
        # on PostgreSQL; the rowcount is the feed rows', one per order inserted.
        insert = (
            f"INSERT INTO {order} (external_id, customer_id, ordered_at, amount, currency, status, created_at,"
            f" updated_at)"
            f" SELECT s.external_id, s.customer_id, s.ordered_at, s.amount, COALESCE(s.currency, %s),"
            f" COALESCE(s.status, %s), %s, %s"
            f" FROM {STAGE} s WHERE s.ordered_at IS NOT NULL AND s.amount IS NOT NULL"
        )
        params = [settings.DEFAULT_CURRENCY, Order.Status.PAID.value, self.now, self.now]
        conflict = "ON CONFLICT (external_id) DO NOTHING"
        if self.vendor == "postgresql":
            sql = (
                f"WITH new AS ({insert}{'' if self.expect_new else ' ' + conflict}"
                f" RETURNING id, customer_id, status, amount, currency)"
                f" INSERT INTO {order_feed_table()} ({FEED_COLUMNS})"
                f" SELECT id, customer_id, NULL, status, NULL, amount, currency, %s FROM new"
            )
            outcome.created = self.insert_new_rows(cursor, sql, [*params, self.now], on_conflict="")
        else:
            outcome.created = self.insert_new_rows(cursor, insert, params, on_conflict=conflict)
            # One writer at a time on SQLite: this chunk's new orders are its staged keys created now.
            cursor.execute(
                f"INSERT INTO {order_feed_table()} ({FEED_COLUMNS})"
                f" SELECT o.id, o.customer_id, NULL, o.status, NULL, o.amount, o.currency, %s"
                f" FROM {STAGE} s JOIN {order} o ON o.external_id = s.external_id WHERE o.created_at = %s",
                [self.now, self.now],
            )
        if outcome.created < self.staged:
            # The rows just inserted are equal, so only changed existing orders count as updated.
            # `prev` is the order as it was (the statement's snapshot): its old status and amount go
            # into the feed row of the change, written with it (rowcount: one per order changed).
            # Known limit: when two imports change the same order at the same moment, the later one's
            # old values can be those from before the earlier one's change (its snapshot); the API
            # path locks the orders first and is exact.
            changed = (
                "(o.customer_id <> s.customer_id"
                " OR (s.ordered_at IS NOT NULL AND o.ordered_at <> s.ordered_at)"
                " OR (s.amount IS NOT NULL AND o.amount <> s.amount)"
                " OR (s.currency IS NOT NULL AND o.currency <> s.currency)"
                " OR (s.status IS NOT NULL AND o.status <> s.status))"
            )
            def update(prev: str = "", same: str = "") -> str:
                return (
                    f"UPDATE {order} AS o SET customer_id = s.customer_id,"
                    f" ordered_at = COALESCE(s.ordered_at, o.ordered_at), amount = COALESCE(s.amount, o.amount),"
                    f" currency = COALESCE(s.currency, o.currency), status = COALESCE(s.status, o.status),"
                    f" updated_at = %s"
                    f" FROM {STAGE} s{prev}"
                    f" WHERE o.external_id = s.external_id{same} AND {changed}"
                )

            if self.vendor == "postgresql":
                # `prev`: the same order as the statement's snapshot has it, a second scan of the row
                # joined in the UPDATE itself (not a CTE: joining two CTE results of a chunk's size,
                # with hash and merge joins off (plan_by_index), is a nested loop of size squared).
                prev = f" JOIN {order} prev ON prev.external_id = s.external_id"
                cursor.execute(
                    f"WITH changed AS ({update(prev, ' AND prev.id = o.id')}"
                    f" RETURNING o.id, o.customer_id, prev.status AS old_status, o.status, prev.amount AS old_amount,"
                    f" o.amount, o.currency)"
                    f" INSERT INTO {order_feed_table()} ({FEED_COLUMNS})"
                    f" SELECT id, customer_id, old_status, status, old_amount, amount, currency, %s FROM changed",
                    [self.now, self.now],
                )
                outcome.updated = cursor.rowcount
            else:
                cursor.execute(
                    f"CREATE TEMP TABLE import_prev AS SELECT o.id, o.status, o.amount FROM {order} o"
                    f" JOIN {STAGE} s ON o.external_id = s.external_id WHERE {changed}"
                )
                cursor.execute(update(), [self.now])
                outcome.updated = cursor.rowcount
                cursor.execute(
                    f"INSERT INTO {order_feed_table()} ({FEED_COLUMNS})"
                    f" SELECT o.id, o.customer_id, p.status, o.status, p.amount, o.amount, o.currency, %s"
                    f" FROM import_prev p JOIN {order} o ON o.id = p.id",
                    [self.now],
                )
                cursor.execute("DROP TABLE import_prev")
        return outcome


class EventStaging(Staging):
    columns = (
        ("customer_ext", "text"),
        ("name", "text"),
        ("occurred_at", "datetime"),
        ("properties", "json"),
    )
    by_customer = True
    key_columns = ("name", "occurred_at")

    def merge(self, cursor, *, incomplete):
        outcome = ChunkOutcome()
        event = _table(ActivityEvent)
        self.plan_by_index(cursor)
        self.stage_by_customer(cursor)
        self.create_missing_customers(cursor, outcome)
        # Inserting first, as for orders.
        empty = "'{}'::jsonb" if self.vendor == "postgresql" else "'{}'"
        outcome.created = self.insert_new_rows(
            cursor,
            f"INSERT INTO {event} (customer_id, name, occurred_at, properties, created_at)"
            f" SELECT s.customer_id, s.name, s.occurred_at, COALESCE(s.properties, {empty}), %s FROM {STAGE} s"
            f" WHERE true",
            [self.now],
            on_conflict="ON CONFLICT (customer_id, name, occurred_at) DO NOTHING",
        )
        if outcome.created < self.staged:
            cursor.execute(
                f"UPDATE {event} AS e SET properties = s.properties FROM {STAGE} s"
                f" WHERE e.customer_id = s.customer_id AND e.name = s.name AND e.occurred_at = s.occurred_at"
                f" AND s.properties IS NOT NULL AND e.properties <> s.properties"
            )
            outcome.updated = cursor.rowcount
        return outcome


class CustomerStaging(Staging):
    columns = (
        ("external_id", "text"),
        ("email", "text"),
        ("first_name", "text"),
        ("last_name", "text"),
        ("phone", "text"),
        ("country", "text"),
        ("signed_up_at", "datetime"),
        ("channel_code", "text"),
        ("channel_name", "text"),
        ("birth_date", "date"),
        ("referral_code", "text"),  # customers.import_hooks
    )

    def merge(self, cursor, *, incomplete):
        outcome = ChunkOutcome()
        self.plan_by_index(cursor)
        self.reject_taken_emails(cursor, outcome)
        hooks = customer_import_hooks()
        for hook in hooks:
            refused = hook.reject(cursor, STAGE)
            if refused:
                self.remove_lines(cursor, [line for line, _reason in refused])
                outcome.rejected.extend(refused)
        while True:
            # A hook's rows that lost a race (import_hooks) are refused and the chunk written again
            # without them; rare, and each pass removes at least one row.
            savepoint = transaction.savepoint()
            self.write_customers(cursor, outcome)
            lost = [refused for hook in hooks for refused in hook.merged(cursor, STAGE, self.now)]
            if not lost:
                transaction.savepoint_commit(savepoint)
                return outcome
            transaction.savepoint_rollback(savepoint)
            self.remove_lines(cursor, [line for line, _reason in lost])
            outcome.rejected.extend(lost)

    def write_customers(self, cursor, outcome: ChunkOutcome) -> None:
        customer, channel = _table(Customer), _table(AcquisitionChannel)
        cursor.execute(
            f"INSERT INTO {channel} (code, name, status, is_active, created_at, updated_at)"
            f" SELECT s.channel_code, MIN(s.channel_name), %s, %s, %s, %s FROM {STAGE} s"
            f" WHERE s.channel_code IS NOT NULL GROUP BY s.channel_code"
            f" ON CONFLICT (code) DO NOTHING",
            [AcquisitionChannel.Status.TESTING.value, True, self.now, self.now],
        )
        outcome.channels_created = cursor.rowcount
        changed = " OR ".join(
            [f"(s.{name} IS NOT NULL AND c.{name} <> s.{name})" for name in ("first_name", "last_name", "phone", "country")]
            + [
                f"(s.{name} IS NOT NULL AND {_differs(f'c.{name}', f's.{name}')})"
                for name in ("email", "signed_up_at", "birth_date")
            ]
            + [f"(ch.id IS NOT NULL AND {_differs('c.channel_id', 'ch.id')})"]
        )
        cursor.execute(
            f"UPDATE {customer} AS c SET email = COALESCE(s.email, c.email),"
            f" first_name = COALESCE(s.first_name, c.first_name), last_name = COALESCE(s.last_name, c.last_name),"
            f" phone = COALESCE(s.phone, c.phone), country = COALESCE(s.country, c.country),"
            f" signed_up_at = COALESCE(s.signed_up_at, c.signed_up_at), channel_id = COALESCE(ch.id, c.channel_id),"
            f" birth_date = COALESCE(s.birth_date, c.birth_date),"
            f" updated_at = %s"
            f" FROM {STAGE} s LEFT JOIN {channel} ch ON ch.code = s.channel_code"
            f" WHERE c.external_id = s.external_id AND ({changed})",
            [self.now],
        )
        outcome.updated = cursor.rowcount
        cursor.execute(
            f"INSERT INTO {customer} (external_id, email, first_name, last_name, phone, country, signed_up_at,"
            f" channel_id, birth_date, email_opt_in, created_at, updated_at)"
            f" SELECT s.external_id, s.email, COALESCE(s.first_name, ''), COALESCE(s.last_name, ''),"
            f" COALESCE(s.phone, ''), COALESCE(s.country, ''), s.signed_up_at, ch.id, s.birth_date, %s, %s, %s"
            f" FROM {STAGE} s LEFT JOIN {channel} ch ON ch.code = s.channel_code"
            f" WHERE NOT EXISTS (SELECT 1 FROM {customer} c WHERE c.external_id = s.external_id)"
            f" ON CONFLICT (external_id) DO NOTHING",
            [False, self.now, self.now],
        )
        outcome.created = cursor.rowcount

    def reject_taken_emails(self, cursor, outcome: ChunkOutcome) -> None:
        """An e-mail may belong to one customer only (case-insensitively): refuse the row, not the chunk."""
        cursor.execute(
            f"SELECT s.line, c.external_id, c.id FROM {STAGE} s JOIN {_table(Customer)} c ON LOWER(c.email) = s.email"
            f" WHERE {_differs('c.external_id', 's.external_id')} ORDER BY s.line"
        )
        taken = cursor.fetchall()
        if not taken:
            return
        self.remove_lines(cursor, [line for line, _ext, _pk in taken])
        for line, other_external_id, other_pk in taken:
            other = other_external_id or f"#{other_pk}"
            outcome.rejected.append(
                (line, _("email: already used by another customer (%(other)s).") % {"other": other})
            )


STAGINGS: dict[str, type[Staging]] = {"customers": CustomerStaging, "orders": OrderStaging, "events": EventStaging}
