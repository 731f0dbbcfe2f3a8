"""Money, the same everywhere: amounts are Decimal with two places, stored as numeric(p, 2), and
rounded half away from zero as PostgreSQL's round(numeric) does, so a figure computed in Python
and the same figure computed by SQL agree to the cent."""

from decimal import ROUND_HALF_UP, Decimal

import numpy as np

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
MONEY_PLACES = 2
ORDER_DIGITS = 12  # one order's amount: numeric(12, 2), up to 9,999,999,999.99
TOTAL_DIGITS = 14  # sums and computed values (spend, CLV, averages): numeric(14, 2)


def money_field_args(max_digits: int = TOTAL_DIGITS) -> dict:
    """The arguments of a money DecimalField (model or DRF): `DecimalField(_("amount"), **money_field_args())`."""
    return {"max_digits": max_digits, "decimal_places": MONEY_PLACES}


def money_max(max_digits: int = ORDER_DIGITS) -> Decimal:
    """The largest amount a numeric(max_digits, 2) column holds."""
    return Decimal(10) ** (max_digits - MONEY_PLACES) - CENT


def money_round(value, places: int = MONEY_PLACES) -> Decimal:
    """`value` (Decimal, int, str or float) rounded to `places` decimals, halves away from zero
    (ROUND_HALF_UP is away from zero for negatives too, as PostgreSQL's round(numeric))."""
    return Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def money_cents(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cents as int64, NULL mask) of float money, exactly as PostgreSQL's round(value::numeric, 2).

    float8::numeric keeps 15 significant digits ("%.15g"), round() then goes half away from zero:
    1.005 (binary 1.00499999999999989...) becomes 1.01. numpy rounds x * 100 to the nearest cent;
    that agrees unless x * 100 lies within float error of a half cent, and those few values (money
    computed from cents, 5.025, are the usual ones) take PostgreSQL's steps in Python."""
    null = np.isnan(values)
    x = np.where(null, 0.0, values)
    if not np.isfinite(x).all():
        raise ValueError("money value is infinite")
    scaled = np.abs(x) * 100.0
    if (scaled >= 2.0**53).any():  # beyond, cents are not exact floats (and numeric(14, 2) overflows long before)
        raise ValueError("money value out of range")
    cents = np.floor(scaled + 0.5)
    fraction = scaled - np.floor(scaled)
    for i in np.flatnonzero(np.abs(fraction - 0.5) <= 1e-13 * scaled + 1e-9):
        cents[i] = abs(money_round(f"{x[i]:.15g}").scaleb(2))
    return np.where(x < 0, -cents, cents).astype(np.int64), null

