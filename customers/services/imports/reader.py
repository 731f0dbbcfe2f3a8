"""Reading an uploaded CSV file: encoding, delimiter and header checks, then rows with their line numbers.

Everything wrong with the file as a whole raises one ImportFileError with a message a person can act
on; problems of single rows are left to the row parsers."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import operator
import os
import re
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from django.utils.translation import gettext as _

from core.exceptions import DomainError

# How much of the file is checked up front for the encoding and the header.
HEAD_BYTES = 64 * 1024
BOM = b"\xef\xbb\xbf"
OTHER_DELIMITERS = {";": "';'", "\t": "tab", "|": "'|'"}
# Bytes that are not UTF-8 survive decoding as lone surrogates (errors="surrogateescape").
_UNDECODABLE = re.compile("[\udc80-\udcff]")
# A single field larger than this is not a CSV we can read (and protects the worker's memory).
csv.field_size_limit(1024 * 1024)
# CsvFile.batch() reads decoded text this many characters at a time, and at most about this much
# ahead in search of the lines it was asked for.
READ_CHARS = 256 * 1024
READ_AHEAD_LIMIT = 8 * 1024 * 1024
# A quoted field may hold line breaks (a pretty-printed JSON object), but not more than this many:
# past it, the opening quote is taken for a stray one (see _Records).
MAX_RECORD_LINES = 100


class ImportFileError(DomainError):
    """The file as a whole cannot be imported (empty, wrong delimiter, missing columns, not UTF-8)."""

    def __init__(self, message: str):
        super().__init__(message, field="file", code="import_file")


class _CountingReader(io.RawIOBase):
    """A raw stream over `head` followed by the rest of `source`, counting the bytes handed out.

    The count drives the progress bar: it is the position in the file, whatever the text holds.
    `suspect` turns true once the bytes handed out hold a NUL or are not UTF-8: until then no text
    read from them can have a row_problem(), and rows need no check of their own."""

    def __init__(self, head: bytes, source: IO[bytes]):
        self._head = memoryview(head)
        self._source = source
        self.bytes_read = 0
        self.suspect = False
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._check(head)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
        else:
            data = self._source.read(len(buffer))
            n = len(data)
            buffer[:n] = data
            self._check(data)
        self.bytes_read += n
        return n

    def _check(self, data: bytes) -> None:
        if self.suspect:
            return
        if b"\x00" in data:
            self.suspect = True
        elif not data.isascii() or self._utf8.getstate()[0]:  # a character may continue from before
            try:
                self._utf8.decode(data, final=not data)  # no data: the end, where nothing may be left over
            except UnicodeDecodeError:
                self.suspect = True


def file_size(source: IO[bytes]) -> int:
    """The size in bytes of an open binary file (a local file, an upload or a storage file)."""
    size = getattr(source, "size", None)
    if isinstance(size, int):
        return size
    # A file without a descriptor (an in-memory upload) is measured by seeking instead.
    with contextlib.suppress(AttributeError, OSError, io.UnsupportedOperation):
        return os.fstat(source.fileno()).st_size
    position = source.tell()
    source.seek(0, io.SEEK_END)
    end = source.tell()
    source.seek(position)
    return end - position


class CsvFile:
    """An open import file: `header` is known, `rows()` yields (line, fields) for each data row.

    `line` is the physical line of the row in the file (the header is line 1), so a person can find
    it in an editor even when quoted fields span several lines."""

    def __init__(
        self, source: IO[bytes], *, required: tuple[str, ...], known: tuple[str, ...], multiline: tuple[str, ...] = ()
    ):
        head = source.read(HEAD_BYTES)
        _check_head(head)
        self._counter = _CountingReader(head, source)
        text = io.TextIOWrapper(
            io.BufferedReader(self._counter, buffer_size=256 * 1024),
            encoding="utf-8-sig",
            errors="surrogateescape",
            newline="",
        )
        self._text = text
        self._reader = csv.reader(text, strict=False)
        try:
            header = next(self._reader)
        except csv.Error as exc:
            raise ImportFileError(_("The header row cannot be read: %(error)s") % {"error": exc}) from exc
        self.header = [name.strip().lower() for name in header]
        self._check_header(head, required=required, known=known)
        # For batch(): lines read, and decoded text read ahead (from the start of a line) and its lines.
        self._width = len(self.header)
        self._lines_read = self._reader.line_num
        # Columns whose quoted cells may span lines (and the ignored ones, whatever they hold); in any
        # other a line break means a stray quote.
        self._multiline = frozenset(i for i, name in enumerate(self.header) if name in multiline or name not in known)
        self._ahead, self._lines_ahead, self._at_end = "", 0, False

    @property
    def bytes_read(self) -> int:
        return self._counter.bytes_read

    @property
    def text_is_clean(self) -> bool:
        """True while every byte read so far is UTF-8 without NUL: no row read yet has a row_problem()."""
        return not self._counter.suspect

    def column(self, name: str) -> int | None:
        """The position of a column in the file, or None when the file does not have it."""
        try:
            return self.header.index(name)
        except ValueError:
            return None

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line, cells) of each data row; a line with a stray quote comes as a BrokenLine (see _Records)."""
        return iter(self._records(self._text, first_line=self._lines_read + 1))

    def _records(self, lines, *, first_line: int) -> _Records:
        return _Records(lines, first_line=first_line, width=self._width, multiline=self._multiline)

    def batch(self, size: int) -> tuple[RowBatch, bool]:
        """The rows on the next `size` lines at most, as rows() gives them, and whether the file ended.
        Not to be mixed with rows().

        Text without quotes or lone carriage returns (one line, one record) is split into cells with
        str methods, as the csv module would split it: a block of rows with as many cells each becomes
        columns by slicing, without a list per row. Any other text is read by the csv module."""
        self._read_ahead(size)
        text, lines_ahead = self._ahead, self._lines_ahead
        if lines_ahead > size:
            *kept, rest = text.split("\n", size)
            block = "\n".join(kept) + "\n"
        elif self._at_end:
            block, rest = text, ""
        else:
            cut = text.rfind("\n") + 1
            block, rest = text[:cut], text[cut:]
        if "\r" in block:
            block = block.replace("\r\n", "\n")
        limit = csv.field_size_limit()
        if not block or '"' in block or "\r" in block or (len(block) >= limit and _longest_line(block) >= limit):
            rows = self._csv_batch(size)
            return rows, self._at_end and not self._ahead
        count = block.count("\n")
        self._ahead, self._lines_ahead = rest, lines_ahead - count
        if not block.endswith("\n"):  # the last line of the file
            block += "\n"
            count += 1
        first = self._lines_read + 1
        self._lines_read += count
        lines = list(range(first, first + count))
        ended = self._at_end and not rest
        # Each line's cells, then a CR (which the block does not hold) where the line ended.
        stride = block.count(",", 0, block.index("\n")) + 2
        cells = block.replace("\n", ",\r,").split(",")
        if stride > 2 and len(cells) == count * stride + 1 and cells[stride - 1 :: stride] == ["\r"] * count:
            columns = [cells[i : count * stride : stride] for i in range(min(stride - 1, self._width))]
            if all(columns[0]):  # and no row is blank: its first cell has something
                columns += [[""] * count] * (self._width - len(columns))
                bare = block.isascii() and not _ASCII_SPACE.search(block)
                return RowBatch(lines, columns, text=block, cells=cells, stride=stride, bare=bare), ended
        records = block.split("\n")
        records.pop()
        return RowBatch.of_rows(lines, list(map(_SPLIT_COMMAS, records)), self._width), ended

    def _read_ahead(self, lines: int) -> None:
        """Read text until `lines` lines are ahead (or much text is, or the file ended)."""
        while not self._at_end and (
            (self._lines_ahead < lines and len(self._ahead) < READ_AHEAD_LIMIT) or self._ahead.endswith("\r")
        ):
            more = self._text.read(READ_CHARS)  # a CR at the end may be the first half of a CRLF
            if not more:
                self._at_end = True
            self._ahead += more
            self._lines_ahead += more.count("\n")

    def _csv_batch(self, size: int) -> RowBatch:
        """The next `size` rows at most, read by the csv module from the text read ahead and on."""
        # The csv module takes each string as a line: the text ahead is cut after its last line end and
        # what follows goes with the rest of its line from the file.
        cut = max(self._ahead.rfind("\n"), self._ahead.rfind("\r")) + 1
        ahead, rest = io.StringIO(self._ahead[:cut], newline=""), _Rest(self._ahead[cut:], self._text)
        records = self._records(itertools.chain(ahead, rest), first_line=self._lines_read + 1)
        taken = list(itertools.islice(records, size))
        if len(taken) < size:
            self._at_end = True
        lines = [line for line, _row in taken]
        rows = [row for _line, row in taken]
        self._lines_read = records.next_line - 1
        # Lines to be read again after a stray quote are still ahead.
        self._ahead = records.unread() + ahead.read() + rest.partial
        self._lines_ahead = self._ahead.count("\n")
        return RowBatch.of_rows(lines, rows, self._width)

    def _check_header(self, head: bytes, *, required: tuple[str, ...], known: tuple[str, ...]) -> None:
        seen = set()
        for name in self.header:
            if name and name in seen and name in known:
                raise ImportFileError(_("The column %(column)s appears twice in the header.") % {"column": name})
            seen.add(name)
        missing = [name for name in required if name not in seen]
        if not missing:
            return
        first_line = head.removeprefix(BOM).split(b"\n", 1)[0].decode("utf-8", "replace")
        for delimiter, label in OTHER_DELIMITERS.items():
            if first_line.count(delimiter) > first_line.count(","):
                raise ImportFileError(
                    _("The file seems to use %(delimiter)s as delimiter; expected ','.") % {"delimiter": label}
                )
        raise ImportFileError(
            _("The header misses the required column(s) %(missing)s. Expected columns: %(expected)s.")
            % {"missing": ", ".join(missing), "expected": ", ".join(known)}
        )


_SPLIT_COMMAS = operator.methodcaller("split", ",")
# What str.strip() takes for white space in ASCII text (line breaks aside).
_ASCII_SPACE = re.compile("[ \t\x0b\x0c\x1c-\x1f]")


class _Rest:
    """The lines of `text`, the first of them completing `partial` (text read ahead of its line end)."""

    def __init__(self, partial: str, text: Iterator[str]):
        self.partial, self._text = partial, text

    def __iter__(self) -> _Rest:
        return self

    def __next__(self) -> str:
        if self.partial:
            line, self.partial = self.partial + next(self._text, ""), ""
            return line
        return next(self._text)


def _longest_line(text: str) -> int:
    return max(map(len, text.split("\n")))


class RowBatch:
    """Rows read at once (none of them blank): their lines, and their cells column by column (as many
    columns as the header has; a short row's missing cells are empty)."""

    def __init__(
        self,
        lines: list[int],
        columns: list,
        *,
        rows: list[tuple[str, ...]] | None = None,
        broken: dict[int, BrokenLine] | None = None,
        text: str = "",
        cells: list[str] | None = None,
        stride: int = 0,
        bare: bool = False,
    ):
        self.lines = lines
        self.columns = columns
        self.bare = bare  # no cell has white space to strip (str.strip)
        self._rows = rows
        self.broken = broken or {}  # index -> the BrokenLine read there
        # Or the rows' text, and all their cells with a separator after each row's (`stride` apart).
        self._text, self._cells, self._stride = text, cells, stride

    @classmethod
    def of_rows(cls, lines: list[int], rows: list, width: int) -> RowBatch:
        if not all(map(any, rows)):
            kept = [i for i, row in enumerate(rows) if any(row)]
            lines, rows = [lines[i] for i in kept], [rows[i] for i in kept]
        broken = {i: row for i, row in enumerate(rows) if isinstance(row, BrokenLine)}
        # Kept as tuples, which the garbage collector stops tracking, unlike lists.
        rows = list(map(tuple, rows))
        table = rows
        if min(map(len, rows), default=width) < width:
            table = [row + ("",) * (width - len(row)) if len(row) < width else row for row in rows]
        return cls(lines, list(zip(*table))[:width], rows=rows, broken=broken)

    def __len__(self) -> int:
        return len(self.lines)

    def row(self, i: int) -> list[str]:
        """The cells of the i-th row, as the csv module reads them."""
        if self._rows is not None:
            return self.broken[i] if i in self.broken else list(self._rows[i])
        start = i * self._stride
        return self._cells[start : start + self._stride - 1]

    def rows_with_problems(self) -> list[int]:
        """The indices of the rows that row_problem() refuses, checking the batch's text at once first."""
        text = self._text if self._rows is None else "".join(itertools.chain.from_iterable(self._rows))
        if "\x00" not in text and (text.isascii() or not _UNDECODABLE.search(text)):
            return sorted(self.broken)
        return [i for i in range(len(self.lines)) if row_problem(self.row(i))]


def _check_head(head: bytes) -> None:
    """Refuse a file with nothing in it, or whose header line is not UTF-8 (its column names could not
    be read). A byte that is not UTF-8 further on only rejects its row (row_problem), wherever it is."""
    body = head.removeprefix(BOM)
    if not body.strip():
        raise ImportFileError(_("The file is empty."))
    first_line = body.split(b"\n", 1)[0] if b"\n" in body else body
    try:
        first_line.decode("utf-8")
    except UnicodeDecodeError as exc:
        if b"\n" not in body and exc.start >= len(first_line) - 3 and len(head) == HEAD_BYTES:
            return  # the sample ends inside a character of a very long header line
        raise ImportFileError(
            _(
                "The file is not UTF-8 encoded: byte 0x%(byte)02x in the header row is not valid UTF-8. "
                "Save it as 'CSV UTF-8' and try again."
            )
            % {"byte": first_line[exc.start]}
        ) from exc


class BrokenLine(list):
    """A line that cannot be read as a row of its own: a quote opened on it is never closed, or joins
    it with the lines after it into an impossible row. It stands in for the row's cells (its only
    cell is the line's text) so it is rejected, with `reason`, where any bad row is (row_problem)."""

    def __init__(self, text: str, reason: str):
        super().__init__([text])
        self.text, self.reason = text, reason


class _TooManyLines(Exception):
    """A quoted field went on for more than MAX_RECORD_LINES lines."""


class _Records:
    """(line, cells) of each non-blank record read from `lines` (physical lines with their ends).

    The csv module, meeting a stray opening quote (`"R6BQ-10`), reads on to the next quote or to the
    end of the file and makes one field of everything in between: the rows after it would vanish.
    So a record that spans lines is kept only when it has exactly the header's cells and its line
    breaks are in columns that may hold them (`multiline`), within MAX_RECORD_LINES lines. Otherwise,
    and for a quote still open at the end of the file, its first line becomes a BrokenLine and the
    lines after it are read again as rows of their own: every line is in a row read or rejected."""

    def __init__(self, lines, *, first_line: int, width: int, multiline: frozenset[int]):
        self._lines = iter(lines)
        self._back: deque[str] = deque()  # lines to read again
        self._taken: list[str] = []  # the lines of the record being read
        self._hit_end = False
        self._width, self._multiline = width, multiline
        self.next_line = first_line  # the line the next record starts on
        self._reader = csv.reader(self._feed(), strict=False)

    def _feed(self) -> Iterator[str]:
        back = self._back
        while True:
            if back:
                line = back.popleft()
            else:
                line = next(self._lines, None)
                if line is None:
                    self._hit_end = True
                    return
            self._taken.append(line)
            if len(self._taken) > MAX_RECORD_LINES:
                raise _TooManyLines
            yield line

    def unread(self) -> str:
        """The text of the lines to be read again, not read yet."""
        return "".join(self._back)

    def __iter__(self) -> _Records:
        return self

    def __next__(self) -> tuple[int, list[str]]:
        while True:
            self._taken.clear()
            self._hit_end = False
            first, error = self.next_line, None
            try:
                fields = next(self._reader)
            except _TooManyLines:
                fields = None
                error = _("A quote opened on this line is not closed within %(count)d lines.") % {"count": MAX_RECORD_LINES}
            except csv.Error as exc:
                fields, error = None, _("The line cannot be read as CSV: %(error)s") % {"error": exc}
            taken = self._taken  # cleared for the next record: copied below where it is kept
            if fields is not None and not self._hit_end and (len(taken) == 1 or self._may_span(fields, taken)):
                self.next_line += len(taken)
                if any(fields):  # a blank line is no row
                    return first, fields
                continue
            if error is None:
                if self._hit_end:
                    error = _("A quote opened on this line is never closed.")
                else:
                    error = _(
                        "A quote opened on this line is closed only on line %(last)d, which joins the lines into "
                        "one impossible row; remove the stray quote or close it on this line."
                    ) % {"last": first + len(taken) - 1}
            # The csv reader may be inside a record: a new one reads the lines after the first again.
            first_text = taken[0]
            self._back.extendleft(reversed(taken[1:]))
            self._reader = csv.reader(self._feed(), strict=False)
            self.next_line = first + 1
            return first, BrokenLine(first_text.rstrip("\r\n"), error)

    def _may_span(self, fields: list[str], taken: list[str]) -> bool:
        """Whether a record over several lines is a real one: as many cells as the header, line breaks
        only where they may be, and every quote closed right before a comma or the line's end (read
        strictly: a stray quote that happens to meet another one in a JSON cell is caught here)."""
        if len(fields) != self._width:
            return False
        if not all(i in self._multiline for i, cell in enumerate(fields) if "\n" in cell or "\r" in cell):
            return False
        try:
            return list(csv.reader(taken, strict=True)) == [fields]
        except csv.Error:
            return False


def row_problem(fields: list[str]) -> str | None:
    """Why a row's text cannot be stored: bytes that were not UTF-8 (past the checked start of the
    file) or a NUL character (PostgreSQL text cannot hold one); None when it is fine."""
    if isinstance(fields, BrokenLine):
        return fields.reason
    text = "".join(fields)
    if not text.isascii() and _UNDECODABLE.search(text):
        return _("The row contains bytes that are not valid UTF-8; save the file as UTF-8.")
    if "\x00" in text:
        return _("The row contains a NUL character.")
    return None


def raw_text(fields: list[str], limit: int = 2000) -> str:
    """The row as CSV text again, for showing a rejected row (a BrokenLine as it is in the file), in
    text PostgreSQL can store: undecodable bytes become U+FFFD, a NUL the symbol for it (U+2400)."""
    if isinstance(fields, BrokenLine):
        text = fields.text
    else:
        buffer = io.StringIO()
        csv.writer(buffer).writerow(fields)
        text = buffer.getvalue().rstrip("\r\n")
    return storable_text(text[:limit])


def storable_text(text: str) -> str:
    """`text` as PostgreSQL text can hold it: no NUL (shown as U+2400), no lone surrogates (U+FFFD)."""
    if text.isascii():
        return text.replace("\x00", "\u2400") if "\x00" in text else text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\x00", "\u2400")


def open_source(file) -> tuple[IO[bytes], bool]:
    """A binary stream for a path or an already open file; the flag says whether we must close it."""
    if isinstance(file, (str, Path)):
        return open(file, "rb"), True
    return file, False
