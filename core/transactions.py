"""A transaction that is always rolled back, for work done only to look at or time its writes: the
tests that compare two evaluations on the same rows, and the benchmarks that time a run without
keeping what it wrote (bench/ imports it once Django is set up)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction


@contextmanager
def rolled_back(using: str | None = None) -> Iterator[None]:
    """`with rolled_back(): ...` runs the block in a transaction (a savepoint when nested) and rolls
    it back at the end; an exception in the block rolls back too and propagates."""
    with transaction.atomic(using=using):
        yield
        transaction.set_rollback(True, using=using)
