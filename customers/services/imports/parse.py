"""Parsing an import file into chunks of clean rows, in pure Python without the database.

Runs in the import's reader thread (service._read_ahead) while the database writes the previous
chunk; each chunk comes out already formatted for the staging table's load (staging.Staging.prepare)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from .reader import CsvFile, raw_text, row_problem
from .rows import KEY_NAMES, PARSERS, RowError
from .staging import Staging


@dataclass(frozen=True)
class RejectedRow:
    line: int
    reason: str
    raw: str


@dataclass
class Chunk:
    """Parsed rows ready for the staging table, and what was rejected while parsing them."""

    rows: list[tuple] = field(default_factory=list)
    prepared: object = None  # the rows as Staging.load() takes them
    raws: dict[int, list[str]] = field(default_factory=dict)
    incomplete: dict[int, str] = field(default_factory=dict)
    rejected: list[RejectedRow] = field(default_factory=list)
    row_count: int = 0
    bytes_read: int = 0


def parse_chunks(kind: str, csvfile: CsvFile, staging: Staging, chunk_size: int) -> Iterator[Chunk]:
    """Pure Python, no database: read, check and parse rows, `chunk_size` good rows at a time, each
    chunk already formatted for loading into the staging table."""
    parser = PARSERS[kind](csvfile)
    key_name = KEY_NAMES[kind]
    first_seen: dict = {}  # key of a row in the file -> its line, to refuse later duplicates
    chunk = Chunk()
    for line, row in csvfile.rows():
        chunk.row_count += 1
        try:
            problem = row_problem(row)
            if problem:
                raise RowError(problem)
            values, key = parser.parse(row)
            first = first_seen.get(key)
            if first is not None:
                raise RowError(_("duplicate %(key)s, first seen on line %(line)d.") % {"key": key_name, "line": first})
            missing = parser.check_in_file(values, line)
        except RowError as exc:
            chunk.rejected.append(RejectedRow(line=line, reason=str(exc), raw=raw_text(row)))
            continue
        first_seen[key] = line
        if missing:
            chunk.incomplete[line] = missing
        chunk.rows.append((line, *values))
        chunk.raws[line] = row
        if len(chunk.rows) >= chunk_size:
            chunk.bytes_read = csvfile.bytes_read
            chunk.prepared = staging.prepare(chunk.rows)
            yield chunk
            chunk = Chunk()
    chunk.bytes_read = csvfile.bytes_read
    chunk.prepared = staging.prepare(chunk.rows)
    yield chunk
