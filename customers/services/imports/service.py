"""Importing a CSV file of customers, orders or activity events.

Rows are parsed and checked in Python, collected in chunks, and each chunk is written with a few
set-based statements in its own transaction (see staging.py): a failure late in a big file loses
nothing before it, and the number of queries grows with the number of chunks, never of rows."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from core.services import ProgressCallback

from .reader import CsvFile, file_size, has_undecodable, open_source, raw_text
from .rows import IMPORT_KINDS, KEY_NAMES, PARSERS, RowError
from .staging import STAGINGS

DEFAULT_CHUNK_SIZE = 20_000


@dataclass(frozen=True)
class RejectedRow:
    line: int
    reason: str
    raw: str


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


def _import_rows(kind: str, csvfile: CsvFile, *, progress, total: int, chunk_size: int) -> ImportResult:
    parser = PARSERS[kind](csvfile)
    staging = STAGINGS[kind]()
    result = ImportResult(kind=kind)
    first_seen: dict = {}  # key of a row in the file -> its line, to refuse later duplicates
    key_name = KEY_NAMES[kind]
    chunk: list[tuple] = []
    raws: dict[int, list[str]] = {}
    incomplete: dict[int, str] = {}

    def reject(line: int, reason: str, row: list[str]) -> None:
        result.rejected.append(RejectedRow(line=line, reason=reason, raw=raw_text(row)))

    def flush() -> None:
        if not chunk:
            return
        with transaction.atomic():
            staging.load(cursor, chunk)
            outcome = staging.merge(cursor, incomplete=incomplete)
        result.created += outcome.created
        result.updated += outcome.updated
        result.customers_created += outcome.customers_created
        result.channels_created += outcome.channels_created
        for line, reason in outcome.rejected:
            reject(line, reason, raws[line])
        chunk.clear()
        raws.clear()
        incomplete.clear()
        if progress is not None:
            progress(min(csvfile.bytes_read, total), total)

    with connection.cursor() as cursor:
        staging.create(cursor)
        try:
            for line, row in csvfile.rows():
                result.rows += 1
                try:
                    if has_undecodable(row):
                        raise RowError(_("The row contains bytes that are not valid UTF-8; save the file as UTF-8."))
                    if any("\x00" in value for value in row):
                        raise RowError(_("The row contains a NUL character."))
                    values, key = parser.parse(row)
                    first = first_seen.get(key)
                    if first is not None:
                        raise RowError(
                            _("duplicate %(key)s, first seen on line %(line)d.") % {"key": key_name, "line": first}
                        )
                    missing = parser.check_in_file(values, line)
                except RowError as exc:
                    reject(line, str(exc), row)
                    continue
                first_seen[key] = line
                if missing:
                    incomplete[line] = missing
                chunk.append((line, *values))
                raws[line] = row
                if len(chunk) >= chunk_size:
                    flush()
            flush()
        finally:
            staging.drop(cursor)
    result.rejected.sort(key=lambda rejected: rejected.line)
    return result
