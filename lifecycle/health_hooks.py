"""Where other apps feed the health score. Feedback positivity counts 10% by default and is neutral
(half its weight) for every customer until an app registers a source here.

A source is a function returning SQL and its parameters that selects `customer_id` and `positivity`
(0-100, e.g. the share of promoters in a customer's survey answers) for the customers with
`customer_id >= %(lo)s AND customer_id < %(hi)s`: the evaluation joins it set-based, by id range.
The feedback app calls `register_feedback_source` from its AppConfig.ready()."""

from __future__ import annotations

from collections.abc import Callable

FeedbackSource = Callable[[], tuple[str, dict]]

_feedback_source: FeedbackSource | None = None


def register_feedback_source(source: FeedbackSource | None) -> None:
    global _feedback_source
    _feedback_source = source


def feedback_source() -> FeedbackSource | None:
    return _feedback_source
