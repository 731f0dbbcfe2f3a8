"""Where other apps feed the lifecycle evaluation without lifecycle importing them (the feedback and
referrals apps build on lifecycle, not the other way round; an app that is not installed simply
registers nothing).

Feedback positivity counts 10% of the health score by default and is neutral (half its weight) for
every customer until an app registers a source here. A feedback source is a function returning SQL
and its parameters that selects `customer_id` and `positivity` (0-100, e.g. the share of promoters
in a customer's survey answers) for the customers with `customer_id >= %(lo)s AND customer_id <
%(hi)s`: the evaluation joins it set-based, by id range. The feedback app calls
`register_feedback_source` from its AppConfig.ready().

Advocates (the stage rules' "loyal: ... a successful referrer"): an advocate source is a function
returning SQL and its parameters that selects the `customer_id` of the customers who count as
advocates, restricted to `customer_id >= %(lo)s AND customer_id < %(hi)s` (the id range the
evaluation is working on; a customer may appear more than once). It must only read, must not use
the parameter names the evaluation uses (prefix its own, e.g. `%(referrals_min)s`), and should
answer from an index on the customer id. The evaluation makes every customer a source lists loyal
while `StageRules.loyal_advocates` is on; the transition's figures say `"advocate": 1`. The referrals
app registers its source (customers with an approved referral) from its AppConfig.ready() with
`register_advocate_source("referrals", source)`; registering the same name again replaces it,
`None` removes it.

Retention offers in loyalty points (lifecycle.services.retention, level 3): the loyalty app
registers a points awarder, `register_points_awarder(award)`, where `award(customer_id=..., points=...,
key=..., reason=...)` credits the points once per idempotency key. Without loyalty installed no awarder
is registered and an intervention cannot be set to offer points (the admin form says why).
"""

from __future__ import annotations

from collections.abc import Callable

FeedbackSource = Callable[[], tuple[str, dict]]
AdvocateSource = Callable[[], tuple[str, dict]]
PointsAwarder = Callable[..., object]

_feedback_source: FeedbackSource | None = None
_advocate_sources: dict[str, AdvocateSource] = {}
_points_awarder: PointsAwarder | None = None


def register_feedback_source(source: FeedbackSource | None) -> None:
    global _feedback_source
    _feedback_source = source


def feedback_source() -> FeedbackSource | None:
    return _feedback_source


def register_advocate_source(name: str, source: AdvocateSource | None) -> None:
    if source is None:
        _advocate_sources.pop(name, None)
    else:
        _advocate_sources[name] = source


def advocate_sources() -> dict[str, AdvocateSource]:
    return dict(_advocate_sources)


def register_points_awarder(award: PointsAwarder | None) -> None:
    global _points_awarder
    _points_awarder = award


def points_awarder() -> PointsAwarder | None:
    return _points_awarder
