"""Importing a CSV file of customers, orders or activity events.

Rows are parsed and checked in Python, collected in chunks, and each chunk is written with a few
set-based statements in its own transaction (see staging.py): a failure late in a big file loses
nothing before it, and the number of queries grows with the number of chunks, never of rows."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import translation
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from core.services import ProgressCallback

from .parse import RejectedRow, parse_chunks
from .reader import CsvFile, file_size, open_source, raw_text
from .rows import IMPORT_KINDS
from .staging import STAGINGS

# Rows per transaction: big enough that per-chunk work (joins, commit) is small next to the rows.
DEFAULT_CHUNK_SIZE = 50_000


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
        CsvFile(source, required=spec["required"], known=spec["required"] + spec["optional"])
        source.seek(position)
    finally:
        if close:
            source.close()


def import_csv(
    *, kind: str, file, progress: ProgressCallback | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> ImportResult:
    """Import a CSV file (a path or an open binary file) of `kind` ("customers", "orders", "events").

    Upserts by external id (events by customer, name and time), so a re-run creates nothing twice.
    Bad rows are returned in `result.rejected` with their line and reason; good rows are kept.
    `progress(done, total)` is called after each chunk with bytes read and the file size, and last
    with done == total. Raises ImportFileError (a DomainError) when the file itself is unusable."""
    spec = import_kind_check(kind)
    source, close = open_source(file)
    try:
        total = file_size(source)
        csvfile = CsvFile(source, required=spec["required"], known=spec["required"] + spec["optional"])
        result = _import_rows(kind, csvfile, progress=progress, total=total, chunk_size=chunk_size)
    finally:
        if close:
            source.close()
    if progress is not None:
        progress(total, total)
    return result


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


def _import_rows(kind: str, csvfile: CsvFile, *, progress, total: int, chunk_size: int) -> ImportResult:
    staging = STAGINGS[kind]()
    result = ImportResult(kind=kind)
    with connection.cursor() as cursor:
        staging.create(cursor)
        try:
            with closing(_read_ahead(lambda: parse_chunks(kind, csvfile, staging, chunk_size))) as chunks:
                for chunk in chunks:
                    result.rows += chunk.row_count
                    result.rejected.extend(chunk.rejected)
                    if chunk.rows:
                        with transaction.atomic():
                            staging.load(cursor, chunk.prepared)
                            outcome = staging.merge(cursor, incomplete=chunk.incomplete)
                        result.created += outcome.created
                        result.updated += outcome.updated
                        result.customers_created += outcome.customers_created
                        result.channels_created += outcome.channels_created
                        result.rejected.extend(
                            RejectedRow(line=line, reason=reason, raw=raw_text(chunk.raws[line]))
                            for line, reason in outcome.rejected
                        )
                    if progress is not None:
                        progress(min(chunk.bytes_read, total), total)
        finally:
            staging.drop(cursor)
    result.rejected.sort(key=lambda rejected: rejected.line)
    return result
