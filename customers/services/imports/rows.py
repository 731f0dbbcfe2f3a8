"""Turning one CSV row into clean values, or a reason why not.

Each parser returns a tuple in the column order of its staging table (see staging.py) and the row's
key within the file, so duplicates can be refused before they reach a set-based statement.

parse_columns() checks a whole batch of rows column by column with C-level operations (map, sets,
one regular expression over a joined column) for speed. It only vouches for rows whose values are
plainly valid and leaves every other row (Columns.slow) to parse(), which stays the one place that
decides reasons and unusual-but-valid values; a vouched-for value is exactly what parse() returns,
or its str() where parse() returns a Decimal or a date-time."""

from __future__ import annotations

import datetime as dt
import json
import operator
import re
import zoneinfo
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customers.import_hooks import CUSTOMER_IMPORT_COLUMNS
from customers.rules import RuleError, amount_clean, birth_date_clean, country_clean, currency_clean, order_status_clean

from .reader import CsvFile, RowBatch

IMPORT_KINDS: dict[str, dict] = {
    "customers": {
        "label": gettext_lazy("Customers"),
        "required": ("customer_id", "email"),
        # referral_code: the referrals app's column (customers.import_hooks).
        "optional": (
            "first_name", "last_name", "phone", "country", "signed_up_at", "channel", "birth_date", "referral_code",
        ),
        # Free text: a quoted name may span lines; a line break in any other cell means a stray quote.
        "multiline": ("first_name", "last_name"),
    },
    "orders": {
        "label": gettext_lazy("Orders"),
        "required": ("customer_id", "order_id"),
        "optional": ("ordered_at", "amount", "currency", "status"),
    },
    "events": {
        "label": gettext_lazy("Activity events"),
        # occurred_at is part of an event's identity (customer, event, occurred_at): without it a
        # re-run could not recognise the event, so it is required too.
        "required": ("customer_id", "event", "occurred_at"),
        "optional": ("properties",),
        # A JSON object may be pretty-printed: its quoted cell may span lines (reader._Records).
        "multiline": ("properties",),
    },
}

_PLAIN_AMOUNT = re.compile(r"\d{1,10}(?:\.\d{1,2})?\Z")
_EMPTY_IS_NONE = {"": None}


class _Form:
    """Values of one form, which a parser's method takes as they are: a regular expression for one
    value, and one for a whole column of them joined by newlines (one C loop for a batch)."""

    def __init__(self, pattern: str):
        self.one = re.compile(pattern)
        self._column = re.compile(f"(?:{pattern})(?:\n(?:{pattern}))*")

    def takes_all(self, column: list[str]) -> bool:
        joined = "\n".join(column)
        return bool(self._column.fullmatch(joined)) and joined.count("\n") == len(column) - 1


# An amount (or nothing) written as str(Decimal(value)) writes it back: no leading zeros, ASCII digits.
_AMOUNT_FORM = _Form(r"(?:(?:0|[1-9][0-9]{0,9})(?:\.[0-9]{1,2})?)?")
_ZEROS_AFTER_CENTS = re.compile(r"(?:0|[1-9][0-9]{0,9})\.[0-9]{2}0+")
# A date-time in UTC that str() writes the same way, but for the 'T' and 'Z'.
_UTC_MOMENT_FORM = _Form(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\+00:00|Z)")
# An e-mail address of at most 254 characters that validate_email() accepts as it is: lower case
# ASCII, a dot-atom before the '@', host names of letters, digits and inner hyphens, a TLD of letters.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{}|~-]+"
_EMAIL_FORM = _Form(rf"(?=[^\n]{{1,254}}(?![^\n])){_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*\.[a-z]{{2,63}}")
_from_iso = dt.datetime.fromisoformat
_to_utc = operator.methodcaller("astimezone", dt.UTC)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # stands in for a value fromisoformat() refused


def _or_epoch(moment: dt.datetime | None) -> dt.datetime:
    return _EPOCH if moment is None else moment


def _in_second_form(joined: str, count: int, *, utc: bool) -> bool:
    """Whether `count` date-times joined by newlines all read 'YYYY-MM-DDTHH:MM:SS', followed by
    '+00:00' if `utc` (a space may stand for the 'T'), checked one character position at a time;
    fromisoformat() vouches for the digits between."""
    width = 26 if utc else 20  # with the newline
    if len(joined) != width * count - 1 or joined[width - 1 :: width] != "\n" * (count - 1):
        return False
    separators = joined[10::width]
    return separators.count("T") + separators.count(" ") == count and all(
        joined[position::width] == char * count for position, char in _SECOND_FORM_CHARS[: 10 if utc else 4]
    )


_SECOND_FORM_CHARS = [(4, "-"), (7, "-"), (13, ":"), (16, ":"), (19, "+"), (20, "0"), (21, "0"), (22, ":"), (23, "0"), (24, "0")]


def _no_constant(name: str):
    # NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them.
    raise ValueError(name)


class RowError(ValueError):
    """A row cannot be imported; the message is the reason shown to the person importing."""


def _by_rule(name: str, rule, value: str):
    """A value checked by its rule in customers.rules (the API's and the forms' too), the reason
    prefixed with the column's name."""
    try:
        return rule(value)
    except RuleError as exc:
        raise RowError(f"{name}: {exc}") from None


def _shown(value: str, limit: int = 60) -> str:
    """A value quoted in a reason, shortened so a reason stays readable."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


class RowParser(ABC):
    """Reads the columns of one kind of file by position; subclasses parse a row into a tuple."""

    kind: str

    def __init__(self, csvfile: CsvFile):
        self.tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
        self._header_width = len(csvfile.header)
        positions = [csvfile.column(name) for name in self.known()]
        # Columns the file lacks are read from position 0 and then set to None.
        self._missing = [i for i, position in enumerate(positions) if position is None]
        self._positions = positions
        self._pick = operator.itemgetter(*[position or 0 for position in positions])

    @classmethod
    def known(cls) -> tuple[str, ...]:
        spec = IMPORT_KINDS[cls.kind]
        return spec["required"] + spec["optional"]

    def cells(self, row: list[str]) -> list[str | None]:
        """Stripped values in the order of known(); an empty cell or a column the file lacks is None."""
        if len(row) < self._header_width:
            row = row + [""] * (self._header_width - len(row))
        values = [value.strip() or None for value in self._pick(row)]
        for i in self._missing:
            values[i] = None
        return values

    def when(self, name: str, value: str | None, *, required: bool = False) -> dt.datetime | None:
        """An ISO date or date-time; naive values are in settings.TIME_ZONE; the result is UTC."""
        if value is None:
            if required:
                raise RowError(_("%(column)s is missing.") % {"column": name})
            return None
        try:
            moment = dt.datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=self.tz)
            return moment.astimezone(dt.UTC)
        except (ValueError, OverflowError):
            raise RowError(
                _("%(column)s: '%(value)s' is not an ISO date or date-time (e.g. 2024-03-05 or 2024-03-05T14:30:00+01:00).")
                % {"column": name, "value": _shown(value)}
            ) from None

    @staticmethod
    def text(name: str, value: str | None, max_length: int, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                raise RowError(_("%(column)s is missing.") % {"column": name})
            return None
        if len(value) > max_length:
            raise RowError(
                _("%(column)s is longer than %(max)d characters.") % {"column": name, "max": max_length}
            )
        return value

    @abstractmethod
    def parse(self, row: list[str]) -> tuple[tuple, object]:
        """One CSV row as (values for the staging table, extra info); raises RowError when bad."""

    def check_in_file(self, values: tuple, line: int) -> str | None:
        """Rules across rows of the file (raise RowError); return a reason when the row lacks a value
        that only a new record needs (decided against the database later)."""
        return None

    @abstractmethod
    def parse_columns(self, rows: RowBatch) -> ParsedColumns:
        """A batch of rows checked column by column; see the module docstring."""

    def check_columns(self, values: list[list], lines: list[int], start: int, stop: int) -> dict[int, str] | None:
        """check_in_file() for the rows start..stop of a batch at once, all vouched for and new in the
        file: {line: reason} of the incomplete ones, or None (and no change) when they must be checked
        one by one. A parser that overrides check_in_file() overrides this too."""
        return {}


@dataclass
class ParsedColumns:
    """A batch of rows as columns in the order of parse()'s tuple (a value as parse() gives it, or its
    str() for a Decimal or a date-time; None when empty), each row's key as parse() gives it, and the
    rows (by index in the batch) to leave to parse(): their entries here mean nothing."""

    values: list[list]
    keys: list
    slow: set[int]


class Columns:
    """The stripped cells of a batch of rows, column by column in the order of known(), and the checks
    that vouch for them; a row any check cannot vouch for is added to `slow`."""

    def __init__(self, parser: RowParser, rows: RowBatch):
        self.parser = parser
        self.size = len(rows)
        self.slow: set[int] = set()
        strip = (lambda column: column) if rows.bare else (lambda column: list(map(str.strip, column)))
        self.cells = [[""] * self.size if position is None else strip(rows.columns[position]) for position in parser._positions]

    def text(self, i: int, max_length: int, *, required: bool = False) -> list[str | None]:
        """Column `i` as RowParser.text() gives it."""
        column = self.cells[i]
        complete = all(column)
        if (required and not complete) or max(map(len, column), default=0) > max_length:
            self.slow.update(j for j, value in enumerate(column) if len(value) > max_length or (required and not value))
        return column if complete else list(map(_EMPTY_IS_NONE.get, column, column))

    def each(self, i: int, convert, *, refused=None, plain: _Form | None = None) -> list:
        """Column `i` through `convert` (a parser's method for one value or None), once per distinct
        value: cheap for the few currencies or statuses of a file. Values of the `plain` form, which
        convert() returns unchanged, skip it."""
        column = self.cells[i]
        if plain is None:
            values = set(column)
        elif plain.takes_all(column):
            return column
        else:
            values = {value for value in column if not plain.one.fullmatch(value)}
        results, refusals = {}, set()
        for value in values:
            try:
                results[value] = convert(value or None)
            except RowError:
                results[value] = refused
                refusals.add(value)
        if refusals:
            self.slow.update(j for j, value in enumerate(column) if value in refusals)
        return list(map(results.get, column, column))

    def amounts(self, i: int) -> list[str | None]:
        """Column `i` as OrderRows.amount() gives it, for amounts written as str() writes them back,
        or with more decimals that are all zero (which quantize() drops)."""
        column = self.cells[i]
        if _AMOUNT_FORM.takes_all(column):
            return list(map(_EMPTY_IS_NONE.get, column, column))
        amounts = []
        for j, value in enumerate(column):
            if _AMOUNT_FORM.one.fullmatch(value):
                amounts.append(value or None)
            elif _ZEROS_AFTER_CENTS.fullmatch(value):
                amounts.append(value[: value.index(".") + 3])
            else:
                amounts.append(None)
                self.slow.add(j)
        return amounts

    def moments(self, i: int, *, required: bool = False) -> tuple[list[str | None], list[dt.datetime | None]]:
        """Column `i` as RowParser.when() gives it: (the str() of each UTC date-time, the date-times).

        Writing a date-time with str() is slow, so a column of values in UTC (or naive when the time
        zone is UTC) in the form str() gives but for a 'T', a 'Z' or the offset is rewritten as text;
        any other column is converted as when() converts a value."""
        column = self.cells[i]
        present = None  # indices of the non-empty cells, when some are empty
        if not all(column):
            present = [j for j, value in enumerate(column) if value]
            if required:
                self.slow.update(j for j, value in enumerate(column) if not value)
            column = [column[j] for j in present]
            if not column:
                return [None] * self.size, [None] * self.size
        try:
            moments = list(map(_from_iso, column))
        except ValueError:
            moments = []
            for j, value in enumerate(column):
                try:
                    moments.append(_from_iso(value))
                except ValueError:
                    moments.append(None)
                    self.slow.add(j if present is None else present[j])
        joined = "\n".join(column)
        if _in_second_form(joined, len(column), utc=True) or _UTC_MOMENT_FORM.takes_all(column):
            texts = joined.replace("T", " ").replace("Z", "+00:00").split("\n")
        elif self.parser.tz.key == "UTC" and _in_second_form(joined, len(column), utc=False):
            texts = (joined.replace("T", " ").replace("\n", "+00:00\n") + "+00:00").split("\n")
            moments = [moment and moment.replace(tzinfo=dt.UTC) for moment in moments]
        else:
            texts, moments = self.utc_texts(column, moments, present)
        if present is None:
            return texts, moments
        all_texts, all_moments = [None] * self.size, [None] * self.size
        for j, text, moment in zip(present, texts, moments):
            all_texts[j], all_moments[j] = text, moment
        return all_texts, all_moments

    def utc_texts(self, column: list[str], moments: list, present: list[int] | None) -> tuple[list[str], list]:
        """str() of when() for each value (whose fromisoformat() is in `moments`, None if it failed)."""
        tz = self.parser.tz
        try:
            local = [moment.replace(tzinfo=tz) if moment.tzinfo is None else moment for moment in map(_or_epoch, moments)]
            utc = list(map(_to_utc, local))
        except OverflowError:  # at the ends of the calendar: one at a time, as when() does it
            utc = []
            for j, value in enumerate(column):
                try:
                    utc.append(self.parser.when("", value))
                except RowError:
                    utc.append(_EPOCH)
                    self.slow.add(j if present is None else present[j])
        return list(map(str, utc)), utc


class CustomerRows(RowParser):
    kind = "customers"

    def __init__(self, csvfile):
        super().__init__(csvfile)
        self.email_owner: dict[str, tuple[str, int]] = {}

    def check_in_file(self, values, line):
        external_id, email = values[0], values[1]
        owner = self.email_owner.get(email)
        if owner is not None and owner[0] != external_id:
            raise RowError(
                _("email: already used by customer_id %(other)s on line %(line)d.")
                % {"other": _shown(owner[0]), "line": owner[1]}
            )
        self.email_owner[email] = (external_id, line)
        return None

    def check_columns(self, values, lines, start, stop):
        external_ids, emails = values[0][start:stop], values[1][start:stop]
        owner = self.email_owner
        if not owner.keys().isdisjoint(emails):
            return None
        before = len(owner)
        owner.update(zip(emails, zip(external_ids, lines[start:stop])))
        if len(owner) != before + len(emails):  # an e-mail twice in these rows
            for email in emails:  # all were new: undo
                owner.pop(email, None)
            return None
        return {}

    def parse(self, row):
        (external_id, email, first_name, last_name, phone, country, signed_up_at, channel, birth_date,
         referral_code) = self.cells(row)
        external_id = self.text("customer_id", external_id, 64, required=True)
        email = self.email(email)
        country = self.country(country)
        channel_code, channel_name = self.channel(channel)
        values = (
            external_id,
            email,
            self.text("first_name", first_name, 100),
            self.text("last_name", last_name, 100),
            self.text("phone", phone, 32),
            country,
            self.when("signed_up_at", signed_up_at),
            channel_code,
            channel_name,
            self.birth_date(birth_date),
            self.text("referral_code", referral_code, CUSTOMER_IMPORT_COLUMNS["referral_code"]),
        )
        return values, external_id

    def parse_columns(self, rows):
        columns = Columns(self, rows)
        external_id = columns.text(0, 64, required=True)
        email = columns.each(1, self.email, plain=_EMAIL_FORM)
        channel = columns.each(7, self.channel, refused=(None, None))
        codes, names = zip(*channel)
        values = [
            external_id,
            email,
            columns.text(2, 100),
            columns.text(3, 100),
            columns.text(4, 32),
            columns.each(5, self.country),
            columns.moments(6)[0],
            list(codes),
            list(names),
            columns.each(8, self.birth_date),
            columns.text(9, CUSTOMER_IMPORT_COLUMNS["referral_code"]),
        ]
        return ParsedColumns(values=values, keys=external_id, slow=columns.slow)

    def email(self, value: str | None) -> str:
        email = self.text("email", value, 254, required=True).lower()
        try:
            validate_email(email)
        except ValidationError:
            raise RowError(_("email: '%(value)s' is not a valid e-mail address.") % {"value": _shown(email)}) from None
        return email

    @staticmethod
    def country(value: str | None) -> str | None:
        return None if value is None else _by_rule("country", country_clean, value)

    @staticmethod
    def birth_date(value: str | None) -> str | None:
        """An ISO date (YYYY-MM-DD), plausible as a date of birth (customers.rules), as ISO text."""
        if value is None:
            return None
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise RowError(
                _("birth_date: '%(value)s' is not an ISO date (e.g. 1984-03-05).") % {"value": _shown(value)}
            ) from None
        return _by_rule("birth_date", birth_date_clean, day).isoformat()

    def channel(self, value: str | None) -> tuple[str | None, str | None]:
        """(code, name) of an acquisition channel."""
        name = self.text("channel", value, 120)
        if name is None:
            return None, None
        code = slugify(name)[:64]
        if not code:
            raise RowError(
                _("channel: '%(value)s' has no letters or digits to make a channel code from.") % {"value": _shown(name)}
            )
        return code, name


class OrderRows(RowParser):
    kind = "orders"

    def __init__(self, csvfile):
        super().__init__(csvfile)
        self.default_currency = settings.DEFAULT_CURRENCY

    def parse(self, row):
        customer_id, order_id, ordered_at, amount, currency, status = self.cells(row)
        customer_id = self.text("customer_id", customer_id, 64, required=True)
        order_id = self.text("order_id", order_id, 64, required=True)
        if amount is not None:
            amount = self.amount(amount)
        currency = self.currency(currency)
        status = self.status(status)
        values = (customer_id, order_id, self.when("ordered_at", ordered_at), amount, currency, status)
        return values, order_id

    def parse_columns(self, rows):
        columns = Columns(self, rows)
        order_id = columns.text(1, 64, required=True)
        values = [
            columns.text(0, 64, required=True),
            order_id,
            columns.moments(2)[0],
            columns.amounts(3),
            columns.each(4, self.currency),
            columns.each(5, self.status),
        ]
        return ParsedColumns(values=values, keys=order_id, slow=columns.slow)

    def check_in_file(self, values, line):
        if values[2] is None or values[3] is None:
            return _("ordered_at and amount are needed for a new order (this order_id is not in the database yet).")
        return None

    def check_columns(self, values, lines, start, stop):
        ordered_at, amount = values[2], values[3]
        if None not in ordered_at[start:stop] and None not in amount[start:stop]:
            return {}
        incomplete = {}
        for i in range(start, stop):
            if ordered_at[i] is None or amount[i] is None:
                incomplete[lines[i]] = self.check_in_file(tuple(column[i] for column in values), lines[i])
        return incomplete

    @staticmethod
    def currency(value: str | None) -> str | None:
        return None if value is None else _by_rule("currency", currency_clean, value)

    @staticmethod
    def status(value: str | None) -> str | None:
        return None if value is None else _by_rule("status", order_status_clean, value)

    @staticmethod
    def amount(value: str) -> Decimal:
        if _PLAIN_AMOUNT.match(value):
            return Decimal(value)
        try:
            amount = Decimal(value)
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite():
            raise RowError(_("amount: '%(value)s' is not a number (use '.' for decimals, e.g. 12.50).") % {"value": _shown(value)})
        try:
            return amount_clean(amount, shown=value)
        except RuleError as exc:
            raise RowError(f"amount: {exc}") from None


class EventRows(RowParser):
    kind = "events"

    def parse(self, row):
        customer_id, name, occurred_at, properties = self.cells(row)
        customer_id = self.text("customer_id", customer_id, 64, required=True)
        name = self.text("event", name, 100, required=True)
        occurred_at = self.when("occurred_at", occurred_at, required=True)
        properties = self.properties(properties)
        return (customer_id, name, occurred_at, properties), (customer_id, name, occurred_at)

    def parse_columns(self, rows):
        columns = Columns(self, rows)
        customer_id = columns.text(0, 64, required=True)
        name = columns.text(1, 100, required=True)
        occurred_at, moments = columns.moments(2, required=True)
        values = [customer_id, name, occurred_at, columns.each(3, self.properties)]
        return ParsedColumns(values=values, keys=list(zip(customer_id, name, moments)), slow=columns.slow)

    @staticmethod
    def properties(value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parsed = json.loads(value, parse_constant=_no_constant)
        except ValueError:
            raise RowError(_("properties: not valid JSON.")) from None
        if not isinstance(parsed, dict):
            raise RowError(_("properties: must be a JSON object like {\"plan\": \"pro\"}."))
        if "\\u0000" in value:
            raise RowError(_("properties: a text value contains the NUL character (\\u0000)."))
        # Stored the way Django's JSONField writes it, so an unchanged re-run compares equal.
        return json.dumps(parsed)


PARSERS: dict[str, type[RowParser]] = {"customers": CustomerRows, "orders": OrderRows, "events": EventRows}
KEY_NAMES = {"customers": "customer_id", "orders": "order_id", "events": "customer_id, event, occurred_at"}
