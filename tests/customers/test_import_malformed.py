"""Malformed CSV files: no row may vanish unreported. Every non-blank line of the file is the first
line of a row that was read, or of a row that was rejected with its line, on both parsing paths
(row by row for SQLite, column by column for PostgreSQL's COPY) and through the whole import."""

import io
import random

import pytest

from customers.models import Order
from customers.services.imports import import_csv, parse
from customers.services.imports.reader import MAX_RECORD_LINES, CsvFile
from customers.services.imports.rows import IMPORT_KINDS
from customers.services.imports.staging import STAGINGS

ORDERS_HEADER = "customer_id,order_id,ordered_at,amount,currency,status\n"
EVENTS_HEADER = "customer_id,event,occurred_at,properties\n"
NEVER_CLOSED = "A quote opened on this line is never closed."


def order_line(n: int) -> str:
    return f"C{n % 7},O{n},2024-03-05T10:00:00+00:00,{n}.50,EUR,paid"


def csv_file(kind: str, data: bytes) -> CsvFile:
    spec = IMPORT_KINDS[kind]
    return CsvFile(
        io.BytesIO(data), required=spec["required"], known=spec["required"] + spec["optional"], multiline=spec.get("multiline", ())
    )


def parsed_lines(kind: str, data: bytes, *, columnar: bool) -> tuple[list[int], dict[int, str]]:
    """(lines of the rows read, {line: reason} of the rows rejected) by one parsing path."""
    staging = STAGINGS[kind]()
    staging.vendor = "postgresql" if columnar else "sqlite"
    csvfile = csv_file(kind, data)
    read, rejected = [], {}
    for chunk in parse.parse_chunks(kind, csvfile, staging, 7):
        read += [row[0] for row in chunk.rows]
        for row in chunk.rejected:
            assert row.line not in rejected
            rejected[row.line] = row.reason
    return read, rejected


def non_blank_data_lines(data: bytes) -> list[int]:
    return [number for number, line in enumerate(data.split(b"\n"), start=1) if number > 1 and line.strip(b"\r")]


def test_a_stray_quote_rejects_its_line_and_keeps_every_row_after_it(csv_file_path):
    """The issue's file: `"R6BQ-10` on line 12 of 200 rows once swallowed the 189 rows after it."""
    lines = [order_line(n) for n in range(200)]
    lines[10] = 'C1,"R6BQ-10,2024-03-05T10:00:00+00:00,3.00,EUR,paid'
    result = import_csv(kind="orders", file=csv_file_path(ORDERS_HEADER + "\n".join(lines) + "\n"))
    assert {row.line: row.reason for row in result.rejected} == {12: "A quote opened on this line is not closed within 100 lines."}
    assert result.rejected[0].raw == lines[10]
    assert result.rows == 200
    assert result.created == 199
    assert Order.objects.count() == 199


def test_a_quote_still_open_at_the_end_of_the_file_is_never_closed(csv_file_path):
    lines = [order_line(n) for n in range(20)]
    lines[15] = 'C1,O15,"2024-03-05T10:00:00+00:00,3.00,EUR,paid'
    result = import_csv(kind="orders", file=csv_file_path(ORDERS_HEADER + "\n".join(lines)))
    assert {row.line: row.reason for row in result.rejected} == {17: NEVER_CLOSED}
    assert result.created == 19


def test_a_quote_closed_lines_later_is_reported_with_the_line_it_closes_on(csv_file_path):
    lines = [order_line(n) for n in range(10)]
    lines[2] = 'C1,"O-2,2024-03-05,1.00,EUR,paid'
    lines[5] = 'C1,O-5",2024-03-05,1.00,EUR,paid'  # a second stray quote, closing the first one
    result = import_csv(kind="orders", file=csv_file_path(ORDERS_HEADER + "\n".join(lines) + "\n"))
    reasons = {row.line: row.reason for row in result.rejected}
    assert reasons[4].startswith("A quote opened on this line is closed only on line 7")
    assert result.rows == 10
    assert Order.objects.filter(external_id__in=["O3", "O4", "O6", "O7", "O8", "O9"]).count() == 6


def test_a_quote_open_for_too_many_lines_is_a_stray_one_even_where_line_breaks_are_allowed(csv_file_path):
    rows = [f'C1,view,2024-03-05T10:00:{n % 60:02d}+00:00,"{{}}"' for n in range(MAX_RECORD_LINES + 20)]
    rows[3] = 'C1,view,2024-03-05T11:00:00+00:00,"{'
    rows.append('C9,view,2024-03-06T10:00:00+00:00,"{""ok"": 1}"')
    result = import_csv(kind="events", file=csv_file_path(EVENTS_HEADER + "\n".join(rows) + "\n"))
    assert result.rows == len(rows)
    assert [row.line for row in result.rejected if row.reason.startswith("A quote")] == [5]


def test_a_quoted_json_object_may_span_lines(csv_file_path):
    content = EVENTS_HEADER + 'C1,view,2024-03-05T10:00:00+00:00,"{\n  ""page"": ""home""\n}"\nC2,view,2024-03-05T10:00:00+00:00,{}\n'
    result = import_csv(kind="events", file=csv_file_path(content))
    assert result.rejected == []
    assert result.created == 2


MUTATIONS = [
    lambda cells, rng: cells.__setitem__(rng.randrange(len(cells)), '"' + cells[rng.randrange(len(cells))]),  # stray opening quote
    lambda cells, rng: cells.__setitem__(rng.randrange(len(cells)), cells[0] + '"'),  # a quote closing nothing
    lambda cells, rng: cells.__setitem__(1, cells[1][:1] + '"' + cells[1][1:]),  # a quote inside a cell
    lambda cells, rng: cells.__setitem__(rng.randrange(len(cells)), '"' + cells[0] + '"'),  # a well-quoted cell
    lambda cells, rng: cells.__setitem__(1, cells[1] + "\x00"),
    lambda cells, rng: cells.__setitem__(1, cells[1] + "\udce9"),  # a byte that is not UTF-8
    lambda cells, rng: cells.__setitem__(1, "x" * 80),
    lambda cells, rng: cells.append("extra"),
    lambda cells, rng: cells.__delitem__(slice(2, None)),
    lambda cells, rng: cells.__setitem__(2, '"2024-03-05\n"'),  # a quoted line break where none may be
]


def event_line(n: int) -> str:
    return f'C{n % 7},view,2024-03-05T10:{n // 60:02d}:{n % 60:02d}+00:00,"{{""n"": {n}}}"'


LINES = {"orders": (ORDERS_HEADER, order_line), "events": (EVENTS_HEADER, event_line)}


@pytest.mark.parametrize("kind", ["orders", "events"])
@pytest.mark.parametrize("seed", range(30))
def test_no_row_vanishes_from_a_malformed_file(kind, seed):
    """Property: in files of good rows, some mutated in the ways above (stray quotes above all),
    with blank lines here and there, every non-blank line is read or rejected, on both paths alike."""
    rng = random.Random(seed)
    body = []
    for n in range(rng.randrange(1, 60)):
        if rng.random() < 0.05:
            body.append("")
            continue
        cells = LINES[kind][1](n).split(",")
        for _ in range(rng.choice([0, 0, 1, 1, 2])):
            rng.choice(MUTATIONS)(cells, rng)
        body.append(",".join(cells))
    newline = rng.choice(["\n", "\r\n"])
    data = (LINES[kind][0] + newline.join(body) + rng.choice([newline, ""])).encode("utf-8", "surrogateescape")
    expected = non_blank_data_lines(data)
    by_rows = parsed_lines(kind, data, columnar=False)
    by_columns = parsed_lines(kind, data, columnar=True)
    assert by_rows == by_columns, body
    read, rejected = by_rows
    assert not set(read) & set(rejected), body
    assert sorted([*read, *rejected]) == expected, body


@pytest.mark.parametrize("seed", range(5))
def test_rows_read_and_rejected_add_up_to_the_lines_of_the_file(csv_file_path, seed):
    rng = random.Random(seed)
    body = [order_line(n) for n in range(300)]
    for index in rng.sample(range(300), 12):
        cells = body[index].split(",")
        rng.choice(MUTATIONS[:3])(cells, rng)
        body[index] = ",".join(cells)
    content = ORDERS_HEADER + "\n".join(body) + "\n"
    result = import_csv(kind="orders", file=csv_file_path(content))
    assert result.rows == 300
    assert len({row.line for row in result.rejected}) == len(result.rejected)
    assert result.created + result.updated + result.unchanged + len(result.rejected) == 300
    assert Order.objects.count() == result.created


@pytest.fixture
def csv_file_path(tmp_path, db):
    counter = iter(range(1000))

    def write(content: str):
        path = tmp_path / f"import{next(counter)}.csv"
        path.write_bytes(content.encode("utf-8"))
        return path

    return write
