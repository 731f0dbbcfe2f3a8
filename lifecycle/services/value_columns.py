"""The columns a CLV run computes per customer, shared by scoring (which fills them) and the
write-backs (values_upsert, values_generation), which turn them into CustomerValue rows.

Integer columns customer_id, orders_count, refund_cents, paid_cents, r_score, f_score, m_score
(0 = NULL), segment (index into SEGMENTS); float columns in currency units or plain numbers,
NaN = NULL."""

from django.db import connection

from customers.models import Customer
from lifecycle.models import RfmSegment

SEGMENTS: tuple[str, ...] = tuple(s.value for s in RfmSegment)
INT_COLUMNS = ("customer_id", "orders_count", "refund_cents", "paid_cents", "r_score", "f_score", "m_score", "segment")
MONEY_COLUMNS = ("aov", "formula_clv", "monetary_value", "expected_order_value", "predicted_clv")
FLOAT_COLUMNS = ("purchase_frequency", "lifespan_years", "frequency", "recency", "T", "p_alive", "expected_purchases")
STAGE_COLUMNS = INT_COLUMNS + MONEY_COLUMNS + FLOAT_COLUMNS


def still_exists(value: str) -> str:
    """SQL: the customer `value` still exists. A customer deleted since the aggregate ran is
    skipped instead of failing the chunk."""
    return f"EXISTS (SELECT 1 FROM {connection.ops.quote_name(Customer._meta.db_table)} c WHERE c.id = {value})"
