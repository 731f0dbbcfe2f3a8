"""Money, the same everywhere: amounts are Decimal with two places, stored as numeric(p, 2), and
rounded half away from zero as PostgreSQL's round(numeric) does, so a figure computed in Python
and the same figure computed by SQL agree to the cent."""

from decimal import ROUND_HALF_UP, Decimal

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
