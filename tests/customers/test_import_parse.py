"""The import's parsing stage: the columnar path (PostgreSQL's COPY text) gives exactly what the row
by row path gives - the same COPY text, rejections, reasons, line numbers and chunks - on files
mixing good rows with every kind of bad or unusual row. Pure Python: runs on any database."""

import io
import random

import pytest
from django.db import connection

from customers.models import Customer, Order
from customers.services.imports import import_csv, parse, reader
from customers.services.imports import rows as rows_module
from customers.services.imports.reader import HEAD_BYTES, CsvFile
from customers.services.imports.rows import IMPORT_KINDS, PARSERS
from customers.services.imports.staging import STAGINGS

ORDERS_HEADER = "customer_id,order_id,ordered_at,amount,currency,status\n"
CUSTOMERS_HEADER = "customer_id,email,first_name,last_name,phone,country,signed_up_at,channel\n"
EVENTS_HEADER = "customer_id,event,occurred_at,properties\n"


def csv_file(kind: str, content: str | bytes) -> CsvFile:
    spec = IMPORT_KINDS[kind]
    data = content if isinstance(content, bytes) else content.encode("utf-8")
    return CsvFile(io.BytesIO(data), required=spec["required"], known=spec["required"] + spec["optional"])


def copy_staging(kind: str):
    staging = STAGINGS[kind]()
    staging.vendor = "postgresql"  # COPY text, whatever database the tests run on
    return staging


def summary(chunks) -> list[dict]:
    """What a chunk hands to the database and the person importing, values compared as COPY text."""
    return [
        {
            "copy": chunk.prepared,
            "lines": [row[0] for row in chunk.rows],
            "rejected": [(r.line, r.reason, r.raw) for r in chunk.rejected],
            "incomplete": chunk.incomplete,
            "raws": {line: list(raw) for line, raw in chunk.raws.items()},
            "row_count": chunk.row_count,
        }
        for chunk in chunks
    ]


def both_ways(kind: str, content: str | bytes, chunk_size: int = 50_000) -> tuple[list[dict], list[dict]]:
    csvfile = csv_file(kind, content)
    by_rows = parse._parse_rows(parse._InFile(kind, csvfile), csvfile, copy_staging(kind), chunk_size)
    by_columns = parse.parse_chunks(kind, csv_file(kind, content), copy_staging(kind), chunk_size)
    return summary(by_rows), summary(by_columns)


def assert_same(kind: str, content: str | bytes, chunk_size: int = 50_000) -> list[dict]:
    by_rows, by_columns = both_ways(kind, content, chunk_size)
    assert by_columns == by_rows
    return by_columns


def rejected(chunks) -> dict[int, str]:
    return {line: reason for chunk in chunks for line, reason, _raw in chunk["rejected"]}


GOOD_ORDERS = [
    "C1,O1,2024-03-05T10:00:00+00:00,12.50,EUR,paid",
    "C2,O2,2024-03-05 10:00:00+00:00,7,usd,REFUNDED",
    "C3,O3,2024-03-05T10:00:00Z,0.5,,",
]
ODD_ORDERS = [  # valid, but not in the plain forms the columns vouch for
    "C1,O10,2024-03-05,1e2,,",
    "C1,O11,2024-03-05T10:00,007,,",
    "C1,O12,2024-03-05T10:00:00.5+05:30,1.500,,",
    "C1,O13,2024-W10-2,0012.30,,",
    "C1,O14,2024-03-31T02:30:00,1,,",  # does not exist in Berlin (clocks go forward)
    "C1,O15,2024-10-27T02:30:00,1,,",  # happens twice in Berlin
    "C1,O16,2024-10-27T02:30:00+01:00,1,,",
    "C1,O17,2024-03-30T23:30:00-02:00,1,,",
    "C1,O18, 2024-03-05T10:00:00+00:00 , 3.10 , eur , Paid ",
    "C1,O19,2024-02-29T10:00:00+00:00,\u0661\u0662,,",  # Arabic-Indic digits: Decimal reads them
    "C1,O20,0001-01-01T00:00:00+00:00,1,,",
    "C1,O21,2024-03-05,,,",  # incomplete: fine for an update, refused later if new
    "C1,O22,,5,,",
    "C1,O23,2024-03-05T10:00:00-00:00,1,,",
    "C1,O24,2024-03-05T10:00:00+00:30,1,,",
    "C1,O25,2024-03-05T10:00:00.000+00:00,1,,",
    "C1,O26,2024-03-05 10:00:00Z,1,,",
    "C1,O27,20240305T100000+0000,1,,",
    "C1,O28,2024-03-05x10:00:00+00:00,1,,",  # fromisoformat takes any separator
    " C1 ,\tO29 ,2024-03-05T10:00:00+00:00,1,,",
    "C1\t,O30\x1f,2024-03-05T10:00:00+00:00,1,,",
    "C1,O31,2024-03-05T10:00:00+00:00,12.5000,,",
    "C1,O32,2024-03-05T10:00:00+00:00,0.000,,",
    "C1,O33,2024-03-05T10:00:00+00:00,9999999999.990,,",
    "C1,O34,2024-03-05T10:00:00+00:00,01.500,,",
]
BAD_ORDERS = [
    "C1,O30,05/03/2024,1.00,,",
    "C1,O31,2024-02-30T10:00:00+00:00,1.00,,",
    "C1,O32,2023-02-29,1.00,,",
    "C1,O33,2024-03-05T24:00:00+00:00,1,,",
    "C1,O34,0001-01-01T00:00:00+01:00,1.00,,",
    "C1,O35,9999-12-31T23:00:00-02:00,1.00,,",
    "C1,O36,2024-03-05,-1.00,,",
    "C1,O37,2024-03-05,1.005,,",
    "C1,O38,2024-03-05,12;50,,",
    "C1,O39,2024-03-05,NaN,,",
    "C1,O40,2024-03-05,Infinity,,",
    "C1,O41,2024-03-05,10000000000,,",
    "C1,O42,2024-03-05,1.00,,shipped",
    "C1,O43,2024-03-05,1.00,EURO,",
    "C1,O44,2024-03-05,1.00,E1R,",
    ",O45,2024-03-05,1.00,,",
    "C1,,2024-03-05,1.00,,",
    "C1," + "x" * 65 + ",2024-03-05,1.00,,",
    "C" + "1" * 64 + ",O46,2024-03-05,1.00,,",
    "C1,O1,2024-03-05,1.00,,",  # duplicate of a row vouched for by the columns
    "C1,O10,2024-03-05,1.00,,",  # duplicate of a row parsed one by one
    "C1,O47,2024-03-05T10:00:00+00:00,1.00,EUR,paid,extra,cells",  # long rows are fine
    "C1,O48,2024-03-05T10:00:00+00:00",  # short rows too
    "C1,O49\x00,2024-03-05,1.00,,",
    "   ",
    ",,,,,",
    '"C1","O50","2024-03-05T10:00:00+00:00","1.00","EUR","paid"',
    '"C1\\","O51\ttab","2024-03-05T10:00:00+00:00","1.00","EUR","paid"',
    '"C1","O52\nover\r\nlines\rand more","2024-03-05T10:00:00+00:00","1.00","EUR","paid"',
    "C1,O53,2024-03-05T10:00:00+00:00,1.00,EUR,paid",
    "C1,O54,2024-03-05,-1,,",
    "C1,O55,2024-03-05,1e2,,",  # parsed one by one right after a refused row
    "C1,O56,2024-03-05,,,",
]


def orders_file(rows: list[str], newline: str = "\n") -> str:
    return ORDERS_HEADER.replace("\n", newline) + "".join(row + newline for row in rows)


@pytest.fixture
def berlin(settings):
    settings.TIME_ZONE = "Europe/Berlin"


@pytest.fixture(params=[(256 * 1024, 8 * 1024 * 1024), (1, 1), (7, 40)], ids=["big-reads", "one-char", "small-reads"])
def reads(request, monkeypatch):
    """Text read ahead in pieces that end anywhere: in a cell, a quoted line break, a CRLF."""
    monkeypatch.setattr(reader, "READ_CHARS", request.param[0])
    monkeypatch.setattr(reader, "READ_AHEAD_LIMIT", request.param[1])


def test_orders_every_kind_of_row_gives_the_same_chunks(berlin):
    rows = GOOD_ORDERS + ODD_ORDERS + [""] + BAD_ORDERS + GOOD_ORDERS[:1]
    chunks = assert_same("orders", orders_file(rows))

    reasons = rejected(chunks)
    # The checks really happened (the comparison alone would pass if both paths were wrong alike).
    # 25 bad rows, and O52's order_id spanning lines: a stray quote, whose three lines after it are
    # read again as rows of their own (and refused).
    assert len(reasons) == 29
    assert reasons[max(reasons)] == "duplicate order_id, first seen on line 2."
    assert any(reason == "duplicate order_id, first seen on line 5." for reason in reasons.values())
    assert "The row contains a NUL character." in reasons.values()
    copy = chunks[0]["copy"]
    assert "2024-03-05 10:00:00+00:00\t12.50\tEUR\tpaid\n" in copy
    assert "\tC1\tO14\t2024-03-31 01:30:00+00:00\t1\t" in copy  # as Python reads it: before the gap
    assert "\tC1\tO10\t2024-03-04 23:00:00+00:00\t100.00\t" in copy  # '1e2', rounded to cents
    assert "\tC1\tO12\t2024-03-05 04:30:00.500000+00:00\t1.50\t" in copy
    assert "\tC1\tO31\t2024-03-05 10:00:00+00:00\t12.50\t" in copy
    assert "C1\\\\\tO51\\ttab\t" in copy
    o52 = 2 + rows.index(next(row for row in rows if "O52" in row))
    assert reasons[o52].startswith(f"A quote opened on this line is closed only on line {o52 + 3}")
    assert all(line in reasons for line in range(o52, o52 + 4))
    assert "O52" not in copy
    assert chunks[0]["incomplete"] == {
        line: "ordered_at and amount are needed for a new order (this order_id is not in the database yet)."
        for line in (16, 17, 53, 66)
    }


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 50_000])
@pytest.mark.parametrize("batch_size", [1, 3, 2_000])
def test_orders_chunks_and_batches_of_any_size(monkeypatch, reads, berlin, newline, chunk_size, batch_size):
    monkeypatch.setattr(parse, "BATCH_SIZE", batch_size)
    rows = GOOD_ORDERS + ODD_ORDERS + ["", ""] + BAD_ORDERS + GOOD_ORDERS
    assert_same("orders", orders_file(rows, newline), chunk_size)


def test_utc_naive_times_and_a_bom(settings):
    settings.TIME_ZONE = "UTC"
    content = "\ufeff" + orders_file(GOOD_ORDERS + ODD_ORDERS + BAD_ORDERS)
    chunks = assert_same("orders", content.encode("utf-8"))
    assert "\tC1\tO11\t2024-03-05 10:00:00+00:00\t7\t" in chunks[0]["copy"]


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize("batch_size", [1, 5, 2_000])
def test_naive_times_in_any_time_zone(monkeypatch, settings, zone, batch_size):
    settings.TIME_ZONE = zone
    monkeypatch.setattr(parse, "BATCH_SIZE", batch_size)
    moments = ["2024-03-31T01:59:59", "2024-03-31T02:30:00", "2024-03-31 03:00:00", "2024-10-27T02:30:00",
               "2024-11-03T01:30:00", "2024-03-10T02:30:00", "0001-01-01T00:00:00", "9999-12-31T23:59:59",
               "2024-02-29T12:00:00", "2024-07-01T00:00:00", "2024-07-01T24:00:00"]
    orders = "".join(f"C1,O{n},{moment},1,,\n" for n, moment in enumerate(moments))
    chunks = assert_same("orders", ORDERS_HEADER + orders)
    events = "".join(f"C1,login,{moment},\n" for moment in [*moments, "2024-07-01 00:00:00"])
    assert rejected(assert_same("events", EVENTS_HEADER + events))[13] == (
        "duplicate customer_id, event, occurred_at, first seen on line 11."
    )
    copy = chunks[0]["copy"] if batch_size == 2_000 else "".join(chunk["copy"] for chunk in chunks)
    # Hour 24, and one end of the calendar when the time zone moves a time past it.
    assert len(rejected(chunks)) == (1 if zone == "UTC" else 2)
    if zone == "UTC":
        assert "\tO0\t2024-03-31 01:59:59+00:00\t" in copy
        assert "\tO7\t9999-12-31 23:59:59+00:00\t" in copy
    elif zone == "Europe/Berlin":
        assert "\tO1\t2024-03-31 01:30:00+00:00\t" in copy  # in the gap: as Python reads it


def test_bytes_that_are_not_utf8_late_in_the_file(berlin):
    good = "".join(f"C{n % 7},O{n},2024-03-05T10:{n % 60:02d}:00+00:00,{n}.25,EUR,paid\n" for n in range(HEAD_BYTES // 40))
    content = ORDERS_HEADER.encode() + good.encode() + b"C1,O-\xe9,2024-03-05,1.00,,\nC1,O-last,2024-03-05,1,,\n"
    content += "".join(f"C1,P{n},2024-03-05,1,,\n" for n in range(50)).encode() + b"C1,P-end,2024-03-05,1,\xc3"
    chunks = assert_same("orders", content, chunk_size=500)
    reasons = rejected(chunks)
    not_utf8 = "The row contains bytes that are not valid UTF-8; save the file as UTF-8."
    assert list(reasons.values()) == [not_utf8, not_utf8]  # a character cut off by the end counts too
    assert sum(len(chunk["lines"]) for chunk in chunks) == HEAD_BYTES // 40 + 51


def test_a_character_cut_off_by_the_end_of_a_clean_file(berlin):
    good = "".join(f"C1,O{n},2024-03-05T10:00:00+00:00,1.25,EUR,paid\n" for n in range(HEAD_BYTES // 40))
    content = ORDERS_HEADER.encode() + good.encode() + b"C1,O-end,2024-03-05T10:00:00+00:00,1.25,EUR,paid,\xc3"
    chunks = assert_same("orders", content)
    assert rejected(chunks) == {HEAD_BYTES // 40 + 2: "The row contains bytes that are not valid UTF-8; save the file as UTF-8."}


def test_a_random_file_with_mistakes_gives_the_same_chunks(monkeypatch, berlin):
    monkeypatch.setattr(parse, "BATCH_SIZE", 97)
    rng = random.Random(7)
    pool = GOOD_ORDERS + ODD_ORDERS + BAD_ORDERS
    rows = []
    for n in range(3000):
        if rng.random() < 0.05:
            rows.append(rng.choice(pool).replace("O", f"R{n}-", 1) if rng.random() < 0.5 else rng.choice(pool))
        else:
            second = rng.randrange(86400 * 365)
            moment = f"2024-{1 + second % 12:02d}-{1 + second % 28:02d}T{second % 24:02d}:{second % 60:02d}:{second % 59:02d}"
            offset = rng.choice(["+00:00", "Z", "+00:00", "+02:00", ""])
            rows.append(f"C{rng.randrange(500)},O{rng.randrange(3500)},{moment}{offset},{rng.randrange(100000) / 100},USD,paid")
    chunks = assert_same("orders", orders_file(rows), chunk_size=400)
    assert 150 < len(rejected(chunks)) < 1500  # duplicates and the bad rows


CUSTOMER_ROWS = [
    "C1,ann@example.com,Ann,Lee,+49 30 1234,de,2024-02-01,Paid Search",
    "C2, Bob@Example.COM ,Bob,,,,2024-02-01T10:00:00+00:00,Podcast Ads",
    "C3,cy@example.com,Cy,,,,,podcast ads",
    "C4,not-an-email,,,,,,",
    "C5,,,,,,,",
    "C6,z@example.com,,,,DEU,,",
    "C7,y@example.com,,,,,yesterday,",
    "C8,x@example.com,,,,,,!!!",
    "C9,w@example.com," + "n" * 101 + ",,,,,",
    "C10,ANN@example.com,,,,,,",  # e-mail of C1
    "C1,v@example.com,,,,,,",  # duplicate customer_id
    "C11,u@example.com,\"Back\\slash\",\"Tab\there\",,,,",
    "C12,t@example.com,\"Two\nlines\",\\N,,,,",
    "C13,s@example.com,,,,,2024-03-31T02:30:00," + "c" * 121,
    "C14,r@example.com,,,,,,Ünïcode Chännel",
    "C15,q@example.com,,,,,,",
    "C16,q@example.com,,,,,,",  # e-mail of C15, within a batch
    "C17,p@example.com,,,,,,",
    "C17,p@example.com,,,,,,",
    "C18,v@example.com,,,,,,",  # the e-mail of the refused duplicate C1 row is free
    "C19,a@b.c,,,,,,",
    "C20,a@-b.com,,,,,,",
    "C21,a@b-.com,,,,,,",
    "C22,x@localhost,,,,,,",
    "C23,x@[127.0.0.1],,,,,,",
    '"C24","""q r""@example.com",,,,,,',
    "C25,a..b@example.com,,,,,,",
    "C26,a@example.com.,,,,,,",
    "C27,ü@example.com,,,,,,",
    "C28,Mixed@Example.COM,,,,,,",
    "C29,x@xn--bcher-kva.example,,,,,,",
    "C30," + "l" * 64 + "@" + "d" * 63 + "." + "e" * 63 + ".com,,,,,,",
    "C31," + "l" * 200 + "@" + "d" * 63 + ".com,,,,,,",
]


@pytest.mark.parametrize("batch_size", [1, 4, 2_000])
def test_customers_give_the_same_chunks(monkeypatch, berlin, batch_size):
    monkeypatch.setattr(parse, "BATCH_SIZE", batch_size)
    content = CUSTOMERS_HEADER + "\n".join(CUSTOMER_ROWS + CUSTOMER_ROWS[:3]) + "\n"
    chunks = assert_same("customers", content, chunk_size=5)
    reasons = rejected(chunks)
    assert reasons[11] == "email: already used by customer_id C1 on line 2."
    assert reasons[19] == "email: already used by customer_id C15 on line 18."
    assert reasons[21] == "duplicate customer_id, first seen on line 20."
    assert 22 not in reasons  # the e-mail of the refused duplicate on line 12 is free
    assert [line for line in range(23, 36) if line in reasons] == [23, 24, 25, 28, 29, 30, 31, 35]


def test_plain_emails_are_what_the_email_check_returns_unchanged():
    rng = random.Random(5)
    parser = PARSERS["customers"](csv_file("customers", CUSTOMERS_HEADER))
    pieces = ["a", "Z", "0", ".", "-", "@", "_", "+", "é", " ", '"', "[1.2.3.4]", "localhost", "xn--", "com", "b" * 63]
    for _ in range(20_000):
        value = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 12)))
        if rows_module._EMAIL_FORM.one.fullmatch(value):
            assert parser.email(value) == value
            assert rows_module._EMAIL_FORM.takes_all([value, "a@example.com"])


EVENT_ROWS = [
    'C1,login,2024-03-05T10:00:00Z,"{""device"": ""ios""}"',
    "C1,login,2024-03-05T11:00:00+01:00,",  # the same moment as the row before
    "C1,login,2024-03-05T10:00:00.000+00:00,{}",
    'C7,page_view,2024-03-05,"{""path"": ""/pricing""}"',
    "C7,page_view,2024-03-05T00:00:00+01:00,",  # Berlin midnight again
    "C1,login,2024-03-05,{not json}",
    'C1,login,2024-03-06,"[1, 2]"',
    "C1,login,2024-03-07,NaN",
    "C1,login,,",
    "C1,,2024-03-05,",
    'C1,login,2024-03-08,"{""a"": ""\\u0000""}"',
    'C1,login,2024-03-09,"{""a"":1,   ""b"": [1,2]}"',
    "C1,login,2024-03-10T10:00:00+00:00,{}",
    "C2,login,2024-03-10T10:00:00+00:00,{}",
]


@pytest.mark.parametrize("batch_size", [1, 5, 2_000])
def test_events_give_the_same_chunks(monkeypatch, berlin, batch_size):
    monkeypatch.setattr(parse, "BATCH_SIZE", batch_size)
    chunks = assert_same("events", EVENTS_HEADER + "\n".join(EVENT_ROWS) + "\n", chunk_size=4)
    reasons = rejected(chunks)
    assert reasons[3] == "duplicate customer_id, event, occurred_at, first seen on line 2."
    assert reasons[4] == "duplicate customer_id, event, occurred_at, first seen on line 2."
    assert reasons[6] == "duplicate customer_id, event, occurred_at, first seen on line 5."
    assert len(reasons) == 9


def batched(content: str, size: int) -> list[tuple[int, list[str]]]:
    """(line, cells) of every row as CsvFile.batch() reads them, its columns checked against them."""
    csvfile, got = csv_file("orders", content), []
    width = len(csvfile.header)
    while True:
        rows, ended = csvfile.batch(size)
        cells = [rows.row(i) for i in range(len(rows))]
        assert [list(column) for column in rows.columns] == [
            [(row[i] if i < len(row) else "") for row in cells] for i in range(width)
        ] or not cells
        got.extend(zip(rows.lines, cells))
        if ended:
            return got


def test_lines_of_a_batch_are_the_lines_rows_gives(reads):
    content = (
        "\ufeffcustomer_id,order_id,note\r\n"
        'C1,O1,"a note\r\nover two lines"\r\n'
        "\r\n"
        'C1,O2,"cr\ronly"\n'
        ",,\n"
        'C1,O3,"lf\nand\n\nmore"\r'
        "C1,O4,\n"
        '\n\nC1,O5,"open quote to the end\n'
    )
    expected = list(csv_file("orders", content).rows())
    for size in (1, 2, 3, 100):
        assert batched(content, size) == expected
    assert [line for line, _row in expected] == [2, 5, 8, 12, 15]


def test_rows_of_other_widths_that_add_up_are_not_taken_as_a_table(reads):
    content = "customer_id,order_id,note\nC1,O1,x\nC2,O2\nC3,O3,y,z\nC4,O4,\n"
    expected = [(2, ["C1", "O1", "x"]), (3, ["C2", "O2"]), (4, ["C3", "O3", "y", "z"]), (5, ["C4", "O4", ""])]
    assert list(csv_file("orders", content).rows()) == expected
    assert batched(content, 100) == expected
    assert batched(content.replace("C4,O4,", ",,\nC4,O4,"), 100) == [*expected[:3], (6, ["C4", "O4", ""])]


def test_batches_read_what_the_csv_module_reads(reads):
    """Blocks without quotes are split by str methods: the same cells and lines as the csv module."""
    rng = random.Random(3)
    pieces = ["C1", "O1", "", " ", "x y", "\t", "\x00", "é", ",", ",", ",", '"', '""', "\n", "\r\n", "\r"]
    cells = ["C1", "O1", "", " ", "x y", "\t", "\x00", "é"]
    for _ in range(300):
        if rng.random() < 0.5:  # rows of three cells, now and then another number of cells or a blank line
            body = "".join(
                ",".join(rng.choice(cells) for _ in range(3 if rng.random() < 0.9 else rng.randrange(5)))
                + rng.choice(["\n", "\n", "\r\n"])
                for _ in range(rng.randrange(12))
            )
        else:
            body = "".join(rng.choice(pieces[:-4] if rng.random() < 0.5 else pieces) for _ in range(rng.randrange(60)))
        content = "customer_id,order_id,x\n" + body
        expected = list(csv_file("orders", content).rows())
        for size in (1, 4, 1000):
            assert batched(content, size) == expected, body


def test_an_unreadable_line_is_named_the_same_way(reads):
    huge = "x" * (1024 * 1024 + 1)
    content = ORDERS_HEADER + "C1,O1,2024-03-05,1,,\n" * 3 + '"C1\nC2",O9,' + huge + ",1,,\n"
    outcomes = []
    for make in (parse._parse_rows, None):
        csvfile = csv_file("orders", content)
        chunks = (
            make(parse._InFile("orders", csvfile), csvfile, copy_staging("orders"), 2)
            if make
            else parse.parse_chunks("orders", csvfile, copy_staging("orders"), 2)
        )
        outcomes.append(rejected(summary(chunks)))
    assert outcomes[0] == outcomes[1]
    # The line the field starts on, and the next one read again on its own: each a rejected row.
    assert sorted(outcomes[0]) == [3, 4, 5, 6]  # 3 and 4 repeat the order of line 2
    assert outcomes[0][5].startswith("The line cannot be read as CSV: field larger than field limit")


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the columnar path is PostgreSQL's")
def test_a_postgresql_import_stores_what_the_row_by_row_path_stores(tmp_path, monkeypatch, berlin):
    path = tmp_path / "orders.csv"
    path.write_text(orders_file(GOOD_ORDERS + ODD_ORDERS + BAD_ORDERS), encoding="utf-8")

    def stored(result):
        orders = list(Order.objects.order_by("external_id").values_list("external_id", "customer__external_id", "ordered_at", "amount", "currency", "status"))
        return result.summary(), [(r.line, r.reason, r.raw) for r in result.rejected], orders

    by_columns = stored(import_csv(kind="orders", file=path, chunk_size=5))
    Order.objects.all().delete()
    Customer.objects.all().delete()
    monkeypatch.setattr(parse, "_parse_columns", parse._parse_rows)
    by_rows = stored(import_csv(kind="orders", file=path, chunk_size=5))
    assert by_columns == by_rows
    assert by_columns[0]["created"] == 31  # the good rows but four incomplete new orders, and O52 (a stray quote)
