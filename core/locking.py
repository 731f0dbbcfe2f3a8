"""Lock rows in primary-key order (Saleor's lock_objects).

Two transactions that lock overlapping sets of rows in different orders can each hold a row the
other waits for: PostgreSQL detects the cycle and kills one of them. Locking every set in the same
global order (ascending primary key) makes such a cycle impossible, so every service that locks
more than one row before checking a balance (the ledgers of loyalty and referrals) goes through
lock_rows()."""

from typing import TypeVar

from django.db import transaction
from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)


def lock_rows(queryset: QuerySet[M], *, of: tuple[str, ...] = ()) -> list[M]:
    """The rows of `queryset`, locked FOR UPDATE in ascending primary-key order, as a list.

    Must run inside a transaction (the locks last until it ends). `of` limits the lock to the named
    related tables (select_for_update(of=...)) when the query joins others."""
    if not transaction.get_connection(queryset.db).in_atomic_block:
        raise transaction.TransactionManagementError("lock_rows() needs a transaction: the locks end with it.")
    return list(queryset.select_for_update(of=of).order_by("pk"))
