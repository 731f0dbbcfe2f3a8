"""Whether this code runs while the demo data is being loaded (`manage.py seed_demo`).

The demo's services are the real ones (a demo referral is rewarded by `referral_reward`, which puts
the "you earned a reward" e-mail in the outbox), so the demo's history would otherwise be mailed to
its made-up customers: a few dozen e-mails delivered the moment a newcomer's `make run` starts.
seed_demo runs inside `demo_data_loading()`; the outbox (messaging) asks `demo_data_is_loading()` and
records such messages as suppressed with the reason "demo" instead of queueing them, so they are
still there to look at and are never sent. A context variable: only the seeding thread (and the eager
tasks it runs) sees it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_loading: ContextVar[bool] = ContextVar("demo_data_loading", default=False)


@contextmanager
def demo_data_loading() -> Iterator[None]:
    token = _loading.set(True)
    try:
        yield
    finally:
        _loading.reset(token)


def demo_data_is_loading() -> bool:
    return _loading.get()
