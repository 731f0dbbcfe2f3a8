"""Fixed-window request counters in the cache, for the portal's login-link requests.

A rate is "N/period" (period s, m, h or d), as in the settings PORTAL_LOGIN_RATE_PER_EMAIL and
PORTAL_LOGIN_RATE_PER_IP. The counter is one atomic increment (Redis INCR in production, a locked
dict in the local-memory cache), so parallel requests cannot slip past the limit together. What is
counted is hashed first: e-mail addresses do not end up in the cache's keys."""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """"5/h" -> (5, 3600)."""
    count, _, period = rate.partition("/")
    seconds = PERIODS.get(period.strip().lower()[:1])
    if not count.strip().isdigit() or seconds is None:
        raise ValueError(f"a rate is 'N/period' with period s, m, h or d, not {rate!r}")
    return int(count), seconds


def rate_hit(*, scope: str, ident: str, rate: str) -> int | None:
    """Count one request of `ident` in `scope`. None when it is within `rate`, otherwise the
    seconds until the window ends (for Retry-After)."""
    limit, seconds = parse_rate(rate)
    now = int(time.time())
    window = now // seconds
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
    key = f"portal:rate:{scope}:{digest}:{window}"
    # add() only creates the counter when absent, so the first requests of a window cannot reset it.
    cache.add(key, 0, timeout=seconds + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: this request starts the window
        cache.add(key, 1, timeout=seconds + 1)
        count = 1
    if count <= limit:
        return None
    return (window + 1) * seconds - now
