"""Importing a CSV file of customers, orders or activity events.

Rows are parsed and checked in Python, collected in chunks, and each chunk is written with a few
set-based statements in its own transaction (see staging.py): a failure late in a big file loses
nothing before it, and the number of queries grows with the number of chunks, never of rows.

A thread parses while the database writes. On PostgreSQL, orders and events are written by several
connections at once (_merge_in_parallel): one connection keeps one core busy, and a bulk insert is
CPU-bound in the database (index entries, foreign-key checks)."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, transaction
from django.utils import translation
from django.utils.translation import gettext as _

from core.connections import close_thread_connections
from core.exceptions import DomainError
from core.services import ProgressCallback

from .parse import Chunk, RejectedRow, parse_chunks
from .reader import CsvFile, file_size, open_source, raw_text
from .rows import IMPORT_KINDS
from .staging import STAGINGS, ChunkOutcome, Staging

# Rows per transaction: big enough that per-chunk work (joins, commit) is small next to the rows.
DEFAULT_CHUNK_SIZE = 50_000
# Connections writing orders or events at once on PostgreSQL; each takes the rows of its share of the
# customers, so they never wait for each other. Two keep a small server's two cores busy.
DEFAULT_WRITERS = 2
# Chunks handed to the writers and not yet finished: one more than they work on, so a writer that
# is done with its part of a chunk goes on with the next instead of waiting for the other one.
CHUNKS_IN_FLIGHT = 2


@dataclass
class ImportResult:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    customers_created: int = 0
    channels_created: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def unchanged(self) -> int:
        """Rows already in the database with the same values (a re-run is all unchanged)."""
        return self.rows - self.created - self.updated - len(self.rejected)

    def summary(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(self.rejected),
            "customers_created": self.customers_created,
            "channels_created": self.channels_created,
        }


def import_kind_check(kind: str) -> dict:
    try:
        return IMPORT_KINDS[kind]
    except KeyError:
        raise DomainError(
            _("Unknown import kind '%(kind)s'; expected one of %(kinds)s.") % {"kind": kind, "kinds": ", ".join(IMPORT_KINDS)},
            field="kind",
        ) from None


def import_header_check(*, kind: str, file) -> None:
    """Raise ImportFileError now if the file as a whole cannot be imported; the file is rewound."""
    spec = import_kind_check(kind)
    source, close = open_source(file)
    try:
        position = source.tell()
        CsvFile(source, required=spec["required"], known=spec["required"] + spec["optional"], multiline=spec.get("multiline", ()))
        source.seek(position)
    finally:
        if close:
            source.close()


def import_csv(
    *,
    kind: str,
    file,
    progress: ProgressCallback | None = None,
    on_rejected: Callable[[list[RejectedRow]], None] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    writers: int = DEFAULT_WRITERS,
) -> ImportResult:
    """Import a CSV file (a path or an open binary file) of `kind` ("customers", "orders", "events").

    Upserts by external id (events by customer, name and time), so a re-run creates nothing twice.
    Bad rows are returned in `result.rejected` with their line and reason; good rows are kept.
    `progress(done, total)` is called after each chunk with bytes read and the file size, and last
    with done == total. `on_rejected(rows)` gets each chunk's rejected rows once the chunk is
    committed, so they can be kept even when a later chunk fails. Raises ImportFileError (a DomainError) when the file itself is unusable.
    `writers`: connections writing at once where that is possible (see _writer_count)."""
    spec = import_kind_check(kind)
    source, close = open_source(file)
    try:
        total = file_size(source)
        csvfile = CsvFile(source, required=spec["required"], known=spec["required"] + spec["optional"], multiline=spec.get("multiline", ()))
        result = _import_rows(
            kind,
            csvfile,
            progress=progress,
            on_rejected=on_rejected,
            total=total,
            chunk_size=chunk_size,
            writers=_writer_count(kind, writers),
        )
    finally:
        if close:
            source.close()
    if progress is not None:
        progress(total, total)
    return result


def _writer_count(kind: str, writers: int) -> int:
    """One writer unless: PostgreSQL (SQLite has one writer at a time anyway), a kind whose rows can
    be split by customer (a customers file keeps one, as an e-mail may be used once across chunks),
    and no transaction open around the import (other connections could not see its uncommitted
    rows, and would wait for its locks until it ends: for ever, as it waits for them)."""
    if connection.vendor != "postgresql" or not STAGINGS[kind].by_customer or connection.in_atomic_block:
        return 1
    return max(1, writers)


def _read_ahead(make_items: Callable[[], Iterator], depth: int = 1) -> Iterator:
    """Iterate `make_items()` in a background thread, up to `depth` items ahead of the consumer.

    Parsing is pure Python while the database works in its own process, so the next chunk is
    parsed while the current one is written. The thread never touches the database; it runs in
    the caller's language so the reasons it writes are translated alike."""
    channel: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    language = translation.get_language()

    def put(message) -> bool:
        while not stop.is_set():
            try:
                channel.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            with translation.override(language):
                for item in make_items():
                    if not put(("item", item)):
                        return
            put(("done", None))
        except BaseException as exc:  # handed to the consumer, who raises it
            put(("error", exc))

    thread = threading.Thread(target=produce, name="csv-import-parser", daemon=True)
    thread.start()
    try:
        while True:
            tag, value = channel.get()
            if tag == "done":
                return
            if tag == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join()


def _import_rows(
    kind: str, csvfile: CsvFile, *, progress, on_rejected=None, total: int, chunk_size: int, writers: int
) -> ImportResult:
    staging = STAGINGS[kind]()
    result = ImportResult(kind=kind)

    def parsed() -> Iterator[tuple[Chunk, list]]:
        # In the parsing thread: each chunk with its rows split into one part per writer.
        for chunk in parse_chunks(kind, csvfile, staging, chunk_size):
            yield chunk, (staging.split(chunk.prepared, writers) if writers > 1 else [chunk.prepared])

    def finish(chunk: Chunk, outcomes: Iterable[ChunkOutcome]) -> None:
        # In this thread and in file order, once every part of the chunk is written.
        result.rows += chunk.row_count
        rejected = list(chunk.rejected)
        for outcome in outcomes:
            result.created += outcome.created
            result.updated += outcome.updated
            result.customers_created += outcome.customers_created
            result.channels_created += outcome.channels_created
            rejected.extend(
                RejectedRow(line=line, reason=reason, raw=raw_text(chunk.raws[line])) for line, reason in outcome.rejected
            )
        result.rejected.extend(rejected)
        if on_rejected is not None and rejected:
            on_rejected(rejected)
        if progress is not None:
            progress(min(chunk.bytes_read, total), total)

    with closing(_read_ahead(parsed)) as chunks:
        if writers == 1:
            _merge_serially(staging, chunks, finish)
        else:
            _merge_in_parallel(staging, chunks, finish, writers)
    result.rejected.sort(key=lambda rejected: rejected.line)
    return result


def _merge(staging: Staging, chunk: Chunk, prepared) -> ChunkOutcome:
    """Load rows of a chunk into the staging table and merge them, in one transaction.

    Once more when the staging expected new rows only and one existed (Staging.insert_new_rows);
    an IntegrityError for any other reason comes back the second time and is raised."""
    while True:
        expected_new = staging.expect_new
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                staging.load(cursor, prepared)
                return staging.merge(cursor, incomplete=chunk.incomplete)
        except IntegrityError:
            if not expected_new:
                raise
            staging.expect_new = False


def _merge_serially(staging: Staging, chunks: Iterator[tuple[Chunk, list]], finish) -> None:
    with connection.cursor() as cursor:
        staging.create(cursor)
        try:
            for chunk, (prepared,) in chunks:
                finish(chunk, [_merge(staging, chunk, prepared)] if chunk.rows else [])
        finally:
            staging.drop(cursor)


def _merge_in_parallel(staging: Staging, chunks: Iterator[tuple[Chunk, list]], finish, writers: int) -> None:
    """Part i of every chunk goes to writer i: a thread with its own connection and staging table
    that merges its parts one after the other, each in its own transaction, as a serial import does.

    Parts hold different customers (Staging.split), so the writers never wait for each other's locks.
    Chunks are finished in file order. When a part fails, the chunks before it are still completed
    and no part of it or of a later chunk is started; what was committed stays (a re-run of the file
    completes the rest), and the error is raised here once every writer has stopped."""
    language = translation.get_language()
    lock = threading.Lock()
    failed_at = [float("inf")]  # the index of the first chunk with a failed part
    local = threading.local()

    def merge_part(index: int, chunk: Chunk, prepared: str) -> ChunkOutcome:
        if index >= failed_at[0]:
            raise _Skipped
        try:
            with translation.override(language):
                if not hasattr(local, "staging"):
                    local.staging = type(staging)(now=staging.now)
                    with connection.cursor() as cursor:
                        local.staging.create(cursor)
                return _merge(local.staging, chunk, prepared)
        except BaseException:
            with lock:
                failed_at[0] = min(failed_at[0], index)
            raise

    def finish_first() -> None:
        chunk, futures = in_flight.popleft()
        try:
            outcomes = [future.result() for future in futures]
        except _Skipped:
            # A part of this chunk was not started because another one failed: raise that error.
            for other in [*futures, *(f for _chunk, later in in_flight for f in later)]:
                error = other.exception()
                if error is not None and not isinstance(error, _Skipped):
                    raise error from None
            raise
        finish(chunk, outcomes)

    pools = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"csv-import-writer-{i}") for i in range(writers)]
    in_flight: deque[tuple[Chunk, list[Future]]] = deque()
    try:
        for index, (chunk, parts) in enumerate(chunks):
            futures = [pool.submit(merge_part, index, chunk, part) for pool, part in zip(pools, parts) if part]
            in_flight.append((chunk, futures))
            while in_flight and (len(in_flight) > CHUNKS_IN_FLIGHT or all(f.done() for f in in_flight[0][1])):
                finish_first()
        while in_flight:
            finish_first()
    finally:
        for pool in pools:
            # Runs after the parts already handed over; the staging table goes with the connection.
            pool.submit(close_thread_connections)
            pool.shutdown(wait=True)


class _Skipped(Exception):
    """A part not merged because another part failed first."""
