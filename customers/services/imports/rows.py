"""Turning one CSV row into clean values, or a reason why not.

Each parser returns a tuple in the column order of its staging table (see staging.py) and the row's
key within the file, so duplicates can be refused before they reach a set-based statement."""

from __future__ import annotations

import datetime as dt
import json
import operator
import re
import zoneinfo
from abc import ABC, abstractmethod
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customers.models import Order

from .reader import CsvFile

IMPORT_KINDS: dict[str, dict] = {
    "customers": {
        "label": gettext_lazy("Customers"),
        "required": ("customer_id", "email"),
        "optional": ("first_name", "last_name", "phone", "country", "signed_up_at", "channel"),
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
    },
}

MAX_AMOUNT = Decimal("9999999999.99")  # max_digits=12, decimal_places=2
CENT = Decimal("0.01")
ORDER_STATUSES = frozenset(Order.Status.values)
_COUNTRY = re.compile(r"[A-Z]{2}\Z")
_PLAIN_AMOUNT = re.compile(r"\d{1,10}(?:\.\d{1,2})?\Z")
_CURRENCY = re.compile(r"[A-Z]{3}\Z")


def _no_constant(name: str):
    # NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them.
    raise ValueError(name)


class RowError(ValueError):
    """A row cannot be imported; the message is the reason shown to the person importing."""


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

    def parse(self, row):
        external_id, email, first_name, last_name, phone, country, signed_up_at, channel = self.cells(row)
        external_id = self.text("customer_id", external_id, 64, required=True)
        email = self.text("email", email, 254, required=True).lower()
        try:
            validate_email(email)
        except ValidationError:
            raise RowError(_("email: '%(value)s' is not a valid e-mail address.") % {"value": _shown(email)}) from None
        if country is not None:
            country = country.upper()
            if not _COUNTRY.match(country):
                raise RowError(
                    _("country: '%(value)s' is not a two-letter country code (e.g. DE).") % {"value": _shown(country)}
                )
        channel_name = self.text("channel", channel, 120)
        channel_code = None
        if channel_name is not None:
            channel_code = slugify(channel_name)[:64]
            if not channel_code:
                raise RowError(
                    _("channel: '%(value)s' has no letters or digits to make a channel code from.")
                    % {"value": _shown(channel_name)}
                )
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
        )
        return values, external_id


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
        if currency is not None:
            currency = currency.upper()
            if not _CURRENCY.match(currency):
                raise RowError(
                    _("currency: '%(value)s' is not a three-letter currency code (e.g. EUR).")
                    % {"value": _shown(currency)}
                )
        if status is not None:
            status = status.lower()
            if status not in ORDER_STATUSES:
                raise RowError(
                    _("status: '%(value)s' is not one of %(choices)s.")
                    % {"value": _shown(status), "choices": ", ".join(Order.Status.values)}
                )
        values = (customer_id, order_id, self.when("ordered_at", ordered_at), amount, currency, status)
        return values, order_id

    def check_in_file(self, values, line):
        if values[2] is None or values[3] is None:
            return _("ordered_at and amount are needed for a new order (this order_id is not in the database yet).")
        return None

    @staticmethod
    def amount(value: str) -> Decimal:
        if _PLAIN_AMOUNT.match(value):
            return Decimal(value)
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise RowError(_("amount: '%(value)s' is not a number (use '.' for decimals, e.g. 12.50).") % {"value": _shown(value)}) from None
        if not amount.is_finite():
            raise RowError(_("amount: '%(value)s' is not a number (use '.' for decimals, e.g. 12.50).") % {"value": _shown(value)})
        if amount < 0:
            raise RowError(_("amount: %(value)s is negative.") % {"value": _shown(value)})
        if amount > MAX_AMOUNT:
            raise RowError(_("amount: %(value)s is too large.") % {"value": _shown(value)})
        if amount.as_tuple().exponent < -2 and amount != amount.quantize(CENT):
            raise RowError(_("amount: %(value)s has more than two decimal places.") % {"value": _shown(value)})
        return amount.quantize(CENT)


class EventRows(RowParser):
    kind = "events"

    def parse(self, row):
        customer_id, name, occurred_at, properties = self.cells(row)
        customer_id = self.text("customer_id", customer_id, 64, required=True)
        name = self.text("event", name, 100, required=True)
        occurred_at = self.when("occurred_at", occurred_at, required=True)
        if properties is not None:
            try:
                parsed = json.loads(properties, parse_constant=_no_constant)
            except ValueError:
                raise RowError(_("properties: not valid JSON.")) from None
            if not isinstance(parsed, dict):
                raise RowError(_("properties: must be a JSON object like {\"plan\": \"pro\"}."))
            if "\\u0000" in properties:
                raise RowError(_("properties: a text value contains the NUL character (\\u0000)."))
            # Stored the way Django's JSONField writes it, so an unchanged re-run compares equal.
            properties = json.dumps(parsed)
        return (customer_id, name, occurred_at, properties), (customer_id, name, occurred_at)


PARSERS: dict[str, type[RowParser]] = {"customers": CustomerRows, "orders": OrderRows, "events": EventRows}
KEY_NAMES = {"customers": "customer_id", "orders": "order_id", "events": "customer_id, event, occurred_at"}
