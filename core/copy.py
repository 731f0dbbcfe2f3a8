"""PostgreSQL's binary COPY format, encoded by numpy without a Python loop per row.

A COPY ... FROM STDIN (FORMAT BINARY) stream is a header, one tuple per row (a 16-bit field count,
then per field a 32-bit length, -1 for NULL, and the value in network byte order) and a trailer.
Bulk writers that build millions of rows (the CLV write-back; the ledgers' rebuilds to come) lay
each column out as a 2-D byte array here and let copy_blocks() assemble the tuples. Only the value
types we write are here: integers and floats (fixed_field), numeric from integer cents
(numeric_cents_field), text from a small table of strings (text_field) and timestamptz
(timestamptz_value)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)
PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def timestamptz_value(moment: dt.datetime) -> int:
    """A timestamptz's binary value: microseconds since 2000-01-01 UTC (for fixed_field ">i8")."""
    return (moment - PG_EPOCH) // dt.timedelta(microseconds=1)


def fixed_width_rows(columns: list[tuple[np.ndarray, str]]) -> bytes:
    """A whole COPY stream (header and trailer included) of NOT NULL fixed-width columns, each
    (values, big-endian numpy type such as ">i8" or ">f8"), all of the same length."""
    n = len(columns[0][0]) if columns else 0
    fields = [("count", ">i2")]
    for i, (_values, dtype) in enumerate(columns):
        fields += [(f"len{i}", ">i4"), (f"v{i}", dtype)]
    rows = np.empty(n, dtype=np.dtype(fields))
    rows["count"] = len(columns)
    for i, (values, _dtype) in enumerate(columns):
        rows[f"len{i}"] = rows.dtype[f"v{i}"].itemsize
        rows[f"v{i}"] = values
    return COPY_HEADER + rows.tobytes() + COPY_TRAILER


@dataclass(frozen=True)
class CopyField:
    """One column of a COPY block: row i's field is the first lengths[i] bytes of data[i]."""

    data: np.ndarray  # uint8, (rows, width), the 4-byte length word included
    lengths: np.ndarray | None  # None: every row uses the whole width


def fixed_field(values: np.ndarray, dtype: str, null: np.ndarray | None) -> CopyField:
    rows = np.empty(len(values), dtype=[("len", ">i4"), ("value", dtype)])
    rows["value"] = values
    rows["len"] = rows.dtype["value"].itemsize
    lengths = None
    if null is not None and null.any():
        rows["len"][null] = -1
        lengths = np.where(null, 4, rows.itemsize).astype(np.int64)
    return CopyField(rows.view(np.uint8).reshape(len(values), rows.itemsize), lengths)


NUMERIC_DIGITS = 6  # base-10000 digits: five before the point (any int64 of cents), one after


def numeric_cents_field(cents: np.ndarray, null: np.ndarray | None) -> CopyField:
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
    return CopyField(rows.view(np.uint8).reshape(len(cents), rows.itemsize), lengths)


def text_field(codes: np.ndarray, texts: tuple[str, ...]) -> CopyField:
    encoded = [t.encode() for t in texts]
    width = 4 + max(len(e) for e in encoded)
    table = np.zeros((len(encoded), width), dtype=np.uint8)
    for i, e in enumerate(encoded):
        table[i, :4] = np.frombuffer(len(e).to_bytes(4, "big"), dtype=np.uint8)
        table[i, 4 : 4 + len(e)] = np.frombuffer(e, dtype=np.uint8)
    if len(codes) and (codes.min() < 0 or codes.max() >= len(texts)):
        raise ValueError("text code out of range")
    return CopyField(table[codes], (4 + np.array([len(e) for e in encoded]))[codes])




def copy_blocks(fields: list[CopyField], start: int, stop: int) -> Iterator[bytes]:
    """Rows start:stop as binary COPY tuples (no header or trailer), one block per row layout.

    Every field is laid out at its full width, the rows sorted by layout (which NULLs, which text
    lengths; in the CLV write-back a few per chunk: buyers or not, one per segment), then each layout's rows are
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
