"""Turn the generated arrays into rows and load them: COPY on PostgreSQL, executemany on SQLite.

Rows are tuples of text (or None / int / bool) in each database's own literal form, so both loaders
share everything but the last call. Raw inserts rather than bulk_create because the history matters:
bulk_create would stamp every note, order and customer `created_at` with the moment of seeding, while
demo rows must look as if they were recorded when they happened."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
from django.db import connection

from customers.models import ActivityEvent, Customer, Note, Order, Task

from . import params as P
from .generate import EVENT_NAMES, STATUS_NAMES, Chunk, CustomerBase

SQLITE_BATCH = 5_000


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def insert(cursor, table: str, columns: Sequence[str], rows: list[tuple]) -> int:
    if not rows:
        return 0
    names = ", ".join(quote(c) for c in columns)
    if connection.vendor == "postgresql":
        with cursor.copy(f"COPY {quote(table)} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        sql = f"INSERT INTO {quote(table)} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
        for start in range(0, len(rows), SQLITE_BATCH):
            cursor.executemany(sql, rows[start : start + SQLITE_BATCH])
    return len(rows)


def times(seconds: np.ndarray) -> list[str | None]:
    """Epoch seconds (-1 = none) as the database's UTC timestamp literal."""
    if not len(seconds):
        return []
    text = np.datetime_as_string(np.maximum(seconds, 0).astype("datetime64[s]"), unit="s")
    text = np.strings.replace(text, "T", " ")
    if connection.vendor == "postgresql":
        text = np.strings.add(text, "+00")
    values = text.tolist()
    if (seconds < 0).any():
        for i in np.flatnonzero(seconds < 0).tolist():
            values[i] = None
    return values


def money(cents: np.ndarray) -> list[str]:
    return [f"{c // 100}.{c % 100:02d}" for c in cents.tolist()]


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


class Lookup:
    """Strings the rows pick by index: names by locale, e-mail parts, event payloads."""

    def __init__(self):
        locales = list(P.FIRST_NAMES)
        locale_of_country = np.array([locales.index(c[2]) for c in P.COUNTRIES])
        first = [name for loc in locales for name in P.FIRST_NAMES[loc]]
        last = [name for loc in locales for name in P.LAST_NAMES[loc]]
        first_offset = np.cumsum([0] + [len(P.FIRST_NAMES[loc]) for loc in locales])[:-1]
        last_offset = np.cumsum([0] + [len(P.LAST_NAMES[loc]) for loc in locales])[:-1]
        self.first_offset = first_offset[locale_of_country]  # by country
        self.last_offset = last_offset[locale_of_country]
        self.first = np.array(first, dtype=object)
        self.last = np.array(last, dtype=object)
        self.first_ascii = np.array([_ascii(n) for n in first], dtype=object)
        self.last_ascii = np.array([_ascii(n) for n in last], dtype=object)
        self.country = np.array([c[0] for c in P.COUNTRIES], dtype=object)
        self.phone_prefix = np.array([c[3] for c in P.COUNTRIES], dtype=object)
        self.domain = np.array(P.EMAIL_DOMAINS, dtype=object)

        payloads: list[list[dict]] = [
            [{"channel": c.code} for c in P.CHANNELS],
            [{"device": d} for d in P.DEVICES],
            [{"path": p} for p in P.PAGES],
            [{"sku": f"SKU-{sku + 1:04d}", "qty": qty} for sku in range(P.SKU_COUNT) for qty in (1, 2, 3)],
            [{"campaign": c} for c in P.CAMPAIGNS],
            [{"topic": t, "priority": p} for t in P.TICKET_TOPICS for p in P.TICKET_PRIORITIES],
        ]
        assert len(payloads) == len(EVENT_NAMES)
        self.payload_offset = np.cumsum([0] + [len(p) for p in payloads])[:-1]
        self.payload = np.array([json.dumps(d) for group in payloads for d in group], dtype=object)
        self.event_name = np.array(EVENT_NAMES, dtype=object)
        self.status = np.array(STATUS_NAMES, dtype=object)


def customer_external_ids(positions: np.ndarray) -> list[str]:
    return [f"{P.CUSTOMER_PREFIX}{i + 1:07d}" for i in positions.tolist()]


def customer_rows(base: CustomerBase, lo: int, hi: int, ids: np.ndarray, refs: dict, look: Lookup) -> list[tuple]:
    sl = slice(lo, hi)
    country = base.country[sl]
    first_ix = look.first_offset[country] + base.first_name[sl]
    last_ix = look.last_offset[country] + base.last_name[sl]
    numbers = np.arange(lo, hi) + 1
    emails = [
        f"{f}.{la}{n}@{d}"
        for f, la, n, d in zip(
            look.first_ascii[first_ix], look.last_ascii[last_ix], numbers.tolist(), look.domain[base.email_domain[sl]]
        )
    ]
    phone = base.phone[sl]
    phones = [
        "" if number < 0 else f"{prefix} 555 {number:07d}"
        for prefix, number in zip(look.phone_prefix[country], phone.tolist())
    ]
    signup = times(base.signup[sl])
    opt_in_at = base.opt_in_at[sl]
    owners = refs["owners"]
    owner = [None if o < 0 else owners[o] for o in base.owner[sl].tolist()]
    channel = np.array(refs["channels"], dtype=np.int64)[base.channel[sl]].tolist()
    return list(
        zip(
            ids[sl].tolist(),
            signup,  # created_at: the CRM recorded the customer when they signed up
            signup,
            customer_external_ids(np.arange(lo, hi)),
            emails,
            look.first[first_ix].tolist(),
            look.last[last_ix].tolist(),
            phones,
            look.country[country].tolist(),
            signup,
            channel,
            owner,
            (opt_in_at >= 0).tolist(),
            times(opt_in_at),
        )
    )


CUSTOMER_COLUMNS = (
    "id",
    "created_at",
    "updated_at",
    "external_id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "country",
    "signed_up_at",
    "channel_id",
    "owner_id",
    "email_opt_in",
    "email_opt_in_at",
)


def write_chunk(cursor, base: CustomerBase, chunk: Chunk, ids: np.ndarray, refs: dict, look: Lookup, order_no: int):
    """Insert one chunk's customers and everything that hangs off them; returns the row counts."""
    lo, hi = chunk.lo, chunk.hi
    counts = {}
    counts["customers"] = insert(
        cursor, Customer._meta.db_table, CUSTOMER_COLUMNS, customer_rows(base, lo, hi, ids, refs, look)
    )

    tag_ids = np.array(refs["tags"], dtype=np.int64)
    pairs = []
    for column in (base.tag1[lo:hi], base.tag2[lo:hi]):
        who = np.flatnonzero(column >= 0)
        pairs.extend(zip(ids[lo + who].tolist(), tag_ids[column[who]].tolist()))
    through = Customer.tags.through._meta.db_table
    counts["customer_tags"] = insert(cursor, through, ("customer_id", "tag_id"), pairs)

    orders = chunk.orders
    at = times(orders.at)
    numbers = range(order_no + 1, order_no + 1 + len(at))
    counts["orders"] = insert(
        cursor,
        Order._meta.db_table,
        ("created_at", "updated_at", "external_id", "customer_id", "ordered_at", "amount", "currency", "status"),
        list(
            zip(
                at,
                at,
                [f"{P.ORDER_PREFIX}{n:08d}" for n in numbers],
                ids[orders.customer].tolist(),
                at,
                money(orders.cents),
                [refs["currency"]] * len(at),
                look.status[orders.status].tolist(),
            )
        ),
    )

    events = chunk.events
    at = times(events.at)
    counts["events"] = insert(
        cursor,
        ActivityEvent._meta.db_table,
        ("customer_id", "name", "occurred_at", "properties", "created_at"),
        list(
            zip(
                ids[events.customer].tolist(),
                look.event_name[events.kind].tolist(),
                at,
                look.payload[look.payload_offset[events.kind] + events.detail].tolist(),
                at,
            )
        ),
    )

    owners = refs["owners"]
    owner_of = base.owner
    notes = chunk.notes
    at = times(notes.at)
    authors = [owners[o] if o >= 0 else refs["manager"] for o in owner_of[notes.customer].tolist()]
    counts["notes"] = insert(
        cursor,
        Note._meta.db_table,
        ("created_at", "updated_at", "customer_id", "author_id", "body"),
        list(zip(at, at, ids[notes.customer].tolist(), authors, [P.NOTES[i] for i in notes.text.tolist()])),
    )

    tasks = chunk.tasks
    at = times(tasks.at)
    assignees = [owners[o] if o >= 0 else refs["manager"] for o in owner_of[tasks.customer].tolist()]
    counts["tasks"] = insert(
        cursor,
        Task._meta.db_table,
        ("created_at", "updated_at", "customer_id", "assignee_id", "created_by_id", "title", "due_at", "done_at"),
        list(
            zip(
                at,
                times(np.where(tasks.done >= 0, tasks.done, tasks.at)),
                ids[tasks.customer].tolist(),
                assignees,
                [refs["manager"]] * len(at),
                [P.TASKS[i] for i in tasks.title.tolist()],
                times(tasks.due),
                times(tasks.done),
            )
        ),
    )
    return counts


@contextmanager
def indexes_rebuilt_after(cursor, models, enabled: bool):
    """PostgreSQL's advice for a bulk load: drop the indexes, unique constraints and foreign keys of
    the tables being filled, load, then recreate them (one sort per index, one set-based check per
    foreign key, instead of a B-tree/GIN insertion and a trigger per row). Primary keys stay.
    Everything runs inside the caller's transaction, so a failure restores the schema as it was."""
    if not enabled or connection.vendor != "postgresql":
        yield
        return
    tables = [m._meta.db_table for m in models]
    # Foreign keys, and unique constraints no foreign key points at; dropped in this order, re-added
    # in the reverse one.
    cursor.execute(
        "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "WHERE c.conrelid = ANY(%s::regclass[]) AND (c.contype = 'f' OR (c.contype = 'u' AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid))) "
        "ORDER BY c.contype, c.conrelid, c.conname",
        [tables],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
        "WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x')) "
        "ORDER BY i.indexrelid",
        [tables],
    )
    indexes = cursor.fetchall()
    # ALTER TABLE refuses while deferred foreign-key checks are queued; run those now.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")  # index builds sort in memory
    for table, name, _definition in constraints:
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
    for name, _definition in indexes:
        cursor.execute(f"DROP INDEX {name}")
    yield
    for _name, definition in indexes:
        cursor.execute(definition)
    for table, name, definition in reversed(constraints):
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")
    for table in tables:
        cursor.execute(f"ANALYZE {quote(table)}")


@contextmanager
def references_suspended(cursor, models, enabled: bool):
    """Drop the foreign keys that point at these tables (from any app), and re-add them after: deleting
    a hundred thousand rows then costs one validation query per foreign key, not a trigger per row and
    referencing table. Inside the caller's transaction, like indexes_rebuilt_after."""
    if not enabled or connection.vendor != "postgresql":
        yield
        return
    cursor.execute(
        "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "WHERE c.contype = 'f' AND c.confrelid = ANY(%s::regclass[]) ORDER BY c.conrelid, c.conname",
        [[m._meta.db_table for m in models]],
    )
    foreign_keys = cursor.fetchall()
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for table, name, _definition in foreign_keys:
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
    yield
    for table, name, definition in foreign_keys:
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")
