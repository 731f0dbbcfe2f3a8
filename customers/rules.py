"""The rules of the customers app's data, each written once, for every path that writes it: the API
(through customers.services.orders), the CSV import (customers.services.imports.rows), the staff
forms (customers.forms) and the admin (model validators).

Value rules raise RuleError with a reason that reads on its own ("-1.00 is negative."); each path
puts it where its user sees it (a field error, or "amount: ..." on an import's rejected line).
`customer_write_permitted` is the one answer to "who may write for this customer"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from core.roles import Role, role_at_least
from customers.models import Order, validate_birth_date, validate_country

MAX_AMOUNT = Decimal("9999999999.99")  # max_digits=12, decimal_places=2
CENT = Decimal("0.01")
ORDER_STATUSES = frozenset(Order.Status.values)


class RuleError(ValueError):
    """A value breaks a rule; str() is the reason shown to a person."""


def _shown(value: str, limit: int = 60) -> str:
    """A value quoted in a reason, shortened so a reason stays readable."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


# --- values ---------------------------------------------------------------------------------------


def amount_clean(amount: Decimal, *, shown: str | None = None) -> Decimal:
    """A finite, non-negative amount of at most 10 digits and 2 decimal places, quantized to cents.
    `shown`: the value as the person wrote it, for the reason."""
    text = _shown(shown if shown is not None else str(amount))
    if amount < 0:
        raise RuleError(_("%(value)s is negative.") % {"value": text})
    if amount > MAX_AMOUNT:
        raise RuleError(_("%(value)s is too large.") % {"value": text})
    if amount.as_tuple().exponent < -2 and amount != amount.quantize(CENT):
        raise RuleError(_("%(value)s has more than two decimal places.") % {"value": text})
    return amount.quantize(CENT)


def currency_clean(value: str) -> str:
    """A three-letter currency code, in capitals."""
    currency = value.upper()
    if len(currency) != 3 or not (currency.isascii() and currency.isalpha()):
        raise RuleError(_("'%(value)s' is not a three-letter currency code (e.g. EUR).") % {"value": _shown(currency)})
    return currency


def order_status_clean(value: str) -> str:
    status = value.lower()
    if status not in ORDER_STATUSES:
        raise RuleError(
            _("'%(value)s' is not one of %(choices)s.")
            % {"value": _shown(status), "choices": ", ".join(Order.Status.values)}
        )
    return status


def country_clean(value: str) -> str:
    """An ISO 3166-1 alpha-2 country code, in capitals (the model's validator, pycountry's list)."""
    country = value.strip().upper()
    try:
        validate_country(country)
    except ValidationError as exc:
        raise RuleError(exc.messages[0]) from None
    return country


def birth_date_clean(value: dt.date) -> dt.date:
    """A plausible date of birth (the model's validator): not in the future, not before 1900."""
    try:
        validate_birth_date(value)
    except ValidationError as exc:
        raise RuleError(exc.messages[0]) from None
    return value


def moment_check(value: dt.datetime) -> None:
    if timezone.is_naive(value):
        raise RuleError(_("The time needs a UTC offset."))


# --- whole items ----------------------------------------------------------------------------------


def _check(errors: dict[str, list[str]], item: dict, name: str, rule) -> None:
    if item.get(name) is None:
        return
    try:
        cleaned = rule(item[name])
    except RuleError as exc:
        errors.setdefault(name, []).append(str(exc))
    else:
        if cleaned is not None:
            item[name] = cleaned


def order_item_errors(item: dict) -> dict[str, list[str]]:
    """Check (and normalise in place) one order as the API and the staff form give it: external_id,
    customer or customer_external_id, ordered_at, amount, currency, status. The field errors."""
    errors: dict[str, list[str]] = {}
    _check(errors, item, "amount", amount_clean)
    _check(errors, item, "currency", currency_clean)
    _check(errors, item, "status", order_status_clean)
    _check(errors, item, "ordered_at", moment_check)
    return errors


def event_item_errors(item: dict) -> dict[str, list[str]]:
    """Check one activity event: customer or customer_external_id, name, occurred_at, properties."""
    errors: dict[str, list[str]] = {}
    if not isinstance(item.get("properties", {}), Mapping):
        errors["properties"] = [_("Properties must be a JSON object.")]
    _check(errors, item, "occurred_at", moment_check)
    return errors


def customer_new_error(data: Mapping) -> str | None:
    """Why these fields cannot make a new customer, or None: one needs an external id or an e-mail
    (how imports and the API find it again)."""
    if not ((data.get("external_id") or "").strip() or (data.get("email") or "").strip()):
        return _("A customer needs an external id or an e-mail address.")
    return None


# --- who may write --------------------------------------------------------------------------------


def customer_write_permitted(*, user, customer) -> bool:
    """Managers (and Admins) write everything for every customer; an Agent writes notes and tasks
    for the customers they own. Views ask it to offer only forms that will be accepted; services
    enforce it (customer_write_check)."""
    if role_at_least(user, Role.MANAGER):
        return True
    return role_at_least(user, Role.AGENT) and customer.owner_id == user.pk


def customer_write_check(*, user, customer) -> None:
    """Raise PermissionError (a 403 in views and the API) unless customer_write_permitted."""
    if not customer_write_permitted(user=user, customer=customer):
        raise PermissionError(_("You may only write notes and tasks for your own customers."))
