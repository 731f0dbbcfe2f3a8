"""Parsing an import file into chunks of clean rows, in pure Python without the database.

Runs in the import's reader thread (service._read_ahead) while the database writes the previous
chunk; each chunk comes out already formatted for the staging table's load (staging.Staging.prepare).

Two ways to the same chunks:
- row by row (_parse_rows): every row through RowParser.parse, then Staging.prepare;
- column by column (_parse_columns, for PostgreSQL's COPY text): batches of rows are checked with
  C-level operations on whole columns (RowParser.parse_columns) and written as COPY text column-wise,
  without a Python loop per row. A row those checks cannot vouch for (a bad value, but also an unusual
  valid one such as the amount '1e2') goes through the row-by-row steps in its place, so reasons and
  values are decided in one place. Both give the same COPY text, rejections and line numbers
  (tests/customers/test_import_parse.py compares them).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from .reader import CsvFile, RowBatch, raw_text, row_problem
from .rows import KEY_NAMES, PARSERS, ParsedColumns, RowError
from .staging import Staging, _copy_plain, _copy_text

# Rows checked at once on the columnar path: large enough that the per-batch Python is nothing next
# to the C loops, small enough to stay in memory next to a chunk.
BATCH_SIZE = 2_000
_TEXT_KINDS = ("text", "json")  # staging column kinds written with COPY escapes (Staging.prepare)
_NULL_FOR_NONE = {None: "\\N"}


@dataclass(frozen=True)
class RejectedRow:
    line: int
    reason: str
    raw: str


@dataclass
class Chunk:
    """Parsed rows ready for the staging table, and what was rejected while parsing them."""

    # (line, *values) of the good rows in file order. Values are what RowParser.parse gives; on the
    # columnar path a Decimal or a date-time is its str() instead (the text COPY stages).
    rows: Sequence[tuple] = field(default_factory=list)
    prepared: object = None  # the rows as Staging.load() takes them
    raws: Mapping[int, list[str]] = field(default_factory=dict)  # the good rows' cells by line, for raw_text()
    incomplete: dict[int, str] = field(default_factory=dict)
    rejected: list[RejectedRow] = field(default_factory=list)
    row_count: int = 0
    bytes_read: int = 0


def parse_chunks(kind: str, csvfile: CsvFile, staging: Staging, chunk_size: int) -> Iterator[Chunk]:
    """Pure Python, no database: read, check and parse rows, `chunk_size` good rows at a time, each
    chunk already formatted for loading into the staging table."""
    in_file = _InFile(kind, csvfile)
    if staging.vendor == "postgresql":
        yield from _parse_columns(in_file, csvfile, staging, chunk_size)
    else:
        yield from _parse_rows(in_file, csvfile, staging, chunk_size)


class _InFile:
    """The row parser of a file and the rules across its rows: a key may appear once."""

    def __init__(self, kind: str, csvfile: CsvFile):
        self.parser = PARSERS[kind](csvfile)
        self.key_name = KEY_NAMES[kind]
        self.first_seen: dict = {}  # key of a good row -> its line, to refuse later duplicates

    def check_new(self, key) -> None:
        first = self.first_seen.get(key)
        if first is not None:
            raise RowError(_("duplicate %(key)s, first seen on line %(line)d.") % {"key": self.key_name, "line": first})

    def parse(self, line: int, row: list[str]) -> tuple[tuple, str | None]:
        """One row: (values, the reason it is incomplete or None); raises RowError for a bad row."""
        problem = row_problem(row)
        if problem:
            raise RowError(problem)
        values, key = self.parser.parse(row)
        self.check_new(key)
        missing = self.parser.check_in_file(values, line)
        self.first_seen[key] = line
        return values, missing


def _rejected(line: int, row: list[str], exc: RowError) -> RejectedRow:
    return RejectedRow(line=line, reason=str(exc), raw=raw_text(row))


def _parse_rows(in_file: _InFile, csvfile: CsvFile, staging: Staging, chunk_size: int) -> Iterator[Chunk]:
    chunk = Chunk()
    for line, row in csvfile.rows():
        chunk.row_count += 1
        try:
            values, missing = in_file.parse(line, row)
        except RowError as exc:
            chunk.rejected.append(_rejected(line, row, exc))
            continue
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


def _parse_columns(in_file: _InFile, csvfile: CsvFile, staging: Staging, chunk_size: int) -> Iterator[Chunk]:
    """Chunks as _parse_rows makes them (the same rows in each), for COPY text."""
    kinds = [kind for _name, kind in staging.columns]
    chunk, copy_text = _column_chunk(), []
    while True:
        # Never more rows than still fit, so a chunk ends where _parse_rows ends it.
        rows, ended = csvfile.batch(min(chunk_size - len(chunk.rows), BATCH_SIZE))
        if rows.lines:
            _Batch(in_file, staging, kinds, rows, text_is_clean=csvfile.text_is_clean).take(chunk, copy_text)
        if len(chunk.rows) >= chunk_size:
            chunk.bytes_read = csvfile.bytes_read
            chunk.prepared = "".join(copy_text)
            yield chunk
            chunk, copy_text = _column_chunk(), []
        if ended:
            break
    chunk.bytes_read = csvfile.bytes_read
    chunk.prepared = "".join(copy_text)
    yield chunk


def _column_chunk() -> Chunk:
    return Chunk(rows=_ColumnRows(), raws=_Raws())


class _ColumnRows(Sequence):
    """A chunk's good rows, (line, *values), kept as the column slices they were checked in and made
    into tuples only when read: an import counts them and loads their COPY text."""

    def __init__(self):
        self._parts: list[tuple[list[int], list[list]]] = []  # (lines, values column by column)
        self._ends: list[int] = []  # rows up to the end of each part

    def add(self, lines: list[int], values: list[list]) -> None:
        self._parts.append((lines, values))
        self._ends.append(len(self) + len(lines))

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        part = bisect.bisect_right(self._ends, index)
        lines, values = self._parts[part]
        i = index - (self._ends[part - 1] if part else 0)
        return (lines[i], *(column[i] for column in values))


class _Raws(Mapping):
    """The cells of a chunk's good rows by line, taken from their batches when asked for: an import
    asks only for the rows the database refuses."""

    def __init__(self):
        self._parts: list[tuple[list[int], RowBatch, Sequence[int]]] = []  # (lines, their batch, their indices in it)
        self._firsts: list[int] = []  # the first line of each part; parts come in file order

    def add(self, lines: list[int], rows: RowBatch, indices: Sequence[int]) -> None:
        self._parts.append((lines, rows, indices))
        self._firsts.append(lines[0])

    def __getitem__(self, line: int) -> list[str]:
        part = bisect.bisect_right(self._firsts, line) - 1
        if part >= 0:
            lines, rows, indices = self._parts[part]
            i = bisect.bisect_left(lines, line)
            if i < len(lines) and lines[i] == line:
                return rows.row(indices[i])
        raise KeyError(line)

    def __iter__(self) -> Iterator[int]:
        for lines, _rows, _indices in self._parts:
            yield from lines

    def __len__(self) -> int:
        return sum(len(lines) for lines, _rows, _indices in self._parts)


class _Batch:
    """Rows read at once, checked column by column; taken into a chunk in file order."""

    def __init__(self, in_file: _InFile, staging: Staging, kinds: list[str], rows: RowBatch, *, text_is_clean: bool):
        self.in_file, self.staging, self.rows, self.lines = in_file, staging, rows, rows.lines
        parsed: ParsedColumns = in_file.parser.parse_columns(rows)
        if len(parsed.values) != len(kinds):
            raise ValueError(f"{type(in_file.parser).__name__} gives {len(parsed.values)} columns, the staging table has {len(kinds)}")
        self.values, self.keys = parsed.values, parsed.keys
        self.slow = parsed.slow
        if not text_is_clean:
            self.slow.update(rows.rows_with_problems())
        self.slow.update(rows.broken)  # lines with a stray quote, rejected by the row parser
        self.copies = [_copy_column(column, kind) for column, kind in zip(parsed.values, kinds)]

    def take(self, chunk: Chunk, copy_text: list[str]) -> None:
        """The rows in file order: runs of vouched-for rows, and runs of rows for the row parser."""
        chunk.row_count += len(self.lines)
        start = 0
        for first_slow, end_slow in _runs(sorted(self.slow)):
            if start < first_slow:
                self.take_vouched(chunk, copy_text, start, first_slow)
            self.take_parsed(chunk, copy_text, first_slow, end_slow)
            start = end_slow
        if start < len(self.lines):
            self.take_vouched(chunk, copy_text, start, len(self.lines))

    def take_vouched(self, chunk: Chunk, copy_text: list[str], start: int, stop: int) -> None:
        """Rows start..stop, all vouched for by the columns: at once when their keys are new."""
        lines, keys = self.lines[start:stop], self.keys[start:stop]
        first_seen = self.in_file.first_seen
        # One C loop registers the new keys and gives, for a key seen before, the line it was seen on.
        firsts = list(map(first_seen.setdefault, keys, lines))
        if firsts == lines:
            incomplete = self.in_file.parser.check_columns(self.values, self.lines, start, stop)
            if incomplete is not None:
                chunk.incomplete.update(incomplete)
                self.add(chunk, copy_text, range(start, stop))
                return
        for key, first, line in zip(keys, firsts, lines):  # undo, and go row by row
            if first == line:
                del first_seen[key]
        taken = []
        for i in range(start, stop):
            line, values = self.lines[i], tuple(column[i] for column in self.values)
            try:
                self.in_file.check_new(self.keys[i])
                missing = self.in_file.parser.check_in_file(values, line)
            except RowError as exc:
                chunk.rejected.append(_rejected(line, self.rows.row(i), exc))
                continue
            self.in_file.first_seen[self.keys[i]] = line
            if missing:
                chunk.incomplete[line] = missing
            taken.append(i)
        if taken:
            self.add(chunk, copy_text, taken)

    def add(self, chunk: Chunk, copy_text: list[str], indices: range | list[int]) -> None:
        """Vouched-for rows into the chunk, and their COPY text."""

        def pick(column: list) -> list:
            if isinstance(indices, range):
                return column[indices.start : indices.stop]
            return [column[i] for i in indices]

        lines = pick(self.lines)
        chunk.rows.add(lines, list(map(pick, self.values)))
        chunk.raws.add(lines, self.rows, indices)
        copy_text.append("\n".join(map("\t".join, zip(map(str, lines), *map(pick, self.copies)))) + "\n")

    def take_parsed(self, chunk: Chunk, copy_text: list[str], start: int, stop: int) -> None:
        """Rows start..stop, which the columns could not vouch for, through the row parser."""
        parsed, indices = [], []
        for i in range(start, stop):
            line, row = self.lines[i], self.rows.row(i)
            try:
                values, missing = self.in_file.parse(line, row)
            except RowError as exc:
                chunk.rejected.append(_rejected(line, row, exc))
                continue
            if missing:
                chunk.incomplete[line] = missing
            parsed.append((line, *values))
            indices.append(i)
        if parsed:
            lines, *values = zip(*parsed)
            chunk.rows.add(list(lines), values)
            chunk.raws.add(list(lines), self.rows, indices)
            copy_text.append(self.staging.prepare(parsed))


def _runs(indices: list[int]) -> Iterator[tuple[int, int]]:
    """(first, end) of each run of consecutive numbers in sorted `indices`."""
    if not indices:
        return
    first = previous = indices[0]
    for index in indices[1:]:
        if index != previous + 1:
            yield first, previous + 1
            first = index
        previous = index
    yield first, previous + 1


def _copy_column(column: list, kind: str) -> list[str]:
    """A column of values (text, or the str() of numbers and date-times) as Staging.prepare writes
    them for COPY; the usual column needs no escape and no NULL and is returned as it is."""
    if kind in _TEXT_KINDS:
        text = "".join(filter(None, column))
        if "\\" in text or "\t" in text or "\n" in text or "\r" in text:  # what COPY escapes
            return list(map(_copy_text, column))
    if None in column:
        return list(map(_NULL_FOR_NONE.get, column, column)) if kind in _TEXT_KINDS else list(map(_copy_plain, column))
    return column
