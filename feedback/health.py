"""Feedback positivity for the lifecycle app's health score (lifecycle.health_hooks).

A customer's positivity is the mean of their submitted answers of the last FEEDBACK_HEALTH_DAYS, each
as 0-100: an NPS score times ten, a CSAT rating 1-5 as 0, 25, 50, 75, 100. Customers without such an
answer get none, and the health score keeps its neutral half for them."""

from django.conf import settings
from django.db import connection


def feedback_positivity_source() -> tuple[str, dict]:
    """SQL selecting (customer_id, positivity) for customer ids in [lo, hi), as the evaluation
    joins it, set-based; the response_customer_idx index serves the range."""
    # %(t)s is the evaluation's as-of moment.
    if connection.vendor == "postgresql":
        window = "r.submitted_at <= %(t)s AND r.submitted_at > %(t)s - make_interval(days => %(feedback_days)s)"
    else:
        window = "julianday(r.submitted_at) <= julianday(%(t)s) AND julianday(r.submitted_at) > julianday(%(t)s) - %(feedback_days)s"
    sql = f"""
        SELECT r.customer_id,
               ROUND(AVG(CASE WHEN r.nps_score IS NOT NULL THEN r.nps_score * 10.0
                              ELSE (r.csat_score - 1) * 25.0 END)) AS positivity
        FROM feedback_response r
        WHERE r.customer_id >= %(lo)s AND r.customer_id < %(hi)s
          AND r.submitted_at IS NOT NULL AND {window}
          AND (r.nps_score IS NOT NULL OR r.csat_score IS NOT NULL)
        GROUP BY r.customer_id
    """
    return sql, {"feedback_days": int(settings.FEEDBACK_HEALTH_DAYS)}
