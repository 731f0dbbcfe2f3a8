"""Health score and churn risk, computed set-based by the lifecycle evaluation from the same
per-customer figures as the stages (lifecycle.services.stages), one id range at a time.

Score (0-100) = the sum of four parts, each whole points of its weight (HealthRules):
- activity frequency: events plus paid orders in the window, full marks at `activity_target`;
- breadth of use: how many of the listed feature events the customer used in the window;
- service interactions: full marks without any service event (a support ticket) in the window,
  none at `service_limit` of them;
- feedback positivity: from a registered source (lifecycle.health_hooks) as 0-100, else neutral
  (half the weight).
Parts are rounded down, so the stored parts add up to the stored score exactly (a database check).

Churn risk, the highest level that applies, for customers past the lead stage:
3 = idle (no order, no event) for `idle_days` or more; 2 = no core action for `no_core_days` or more;
1 = core actions in the last `decline_period_days` down by `decline_percent` or more against the
period before (e.g. 7 against 10 is exactly -30% and counts); 0 = none.

Only customers whose score, a part or the risk changes are written (one UPDATE ... FROM and one
INSERT ... SELECT), each change with a history row; a re-run on the same data writes nothing.
"""

from __future__ import annotations

from lifecycle.models_health import HealthRules

POINT_COLUMNS = "activity_points, breadth_points, service_points, feedback_points"


def health_rules_get() -> HealthRules:
    rules, _created = HealthRules.objects.get_or_create(pk=1)
    return rules


def health_table_create(cursor, table: str) -> None:
    cursor.execute(
        f"CREATE TEMPORARY TABLE {table} (customer_id bigint PRIMARY KEY, is_new boolean, activity_points integer, "
        "breadth_points integer, service_points integer, feedback_points integer, churn_risk integer)"
    )


def health_select(health: HealthRules, *, rules_target: str, table: str, params: dict) -> str:
    """The customers of the figures table `table` (lifecycle.services.stages) whose health or risk
    changes, with the new values. `rules_target` is the stage rules' CASE over the same row."""
    params.update(
        w_act=health.weight_activity,
        w_br=health.weight_breadth,
        w_srv=health.weight_service,
        w_fb=health.weight_feedback,
        w_fb_neutral=health.weight_feedback // 2,
        act_target=health.activity_target,
        n_breadth=max(1, len(health.breadth_event_list)),
        srv_limit=health.service_limit,
        keep_percent=100 - health.decline_percent,
    )
    return f"""
WITH x AS (
    SELECT f.customer_id,
           CASE WHEN f.window_actions >= %(act_target)s THEN %(w_act)s
                ELSE (%(w_act)s * f.window_actions) / %(act_target)s END AS activity_points,
           (%(w_br)s * f.breadth) / %(n_breadth)s AS breadth_points,
           CASE WHEN f.service >= %(srv_limit)s THEN 0
                ELSE (%(w_srv)s * (%(srv_limit)s - f.service)) / %(srv_limit)s END AS service_points,
           CASE WHEN f.feedback IS NULL THEN %(w_fb_neutral)s ELSE (%(w_fb)s * f.feedback) / 100 END AS feedback_points,
           CASE WHEN {rules_target} = 'lead' THEN 0
                WHEN f.last_active_at IS NULL OR f.last_active_at <= %(idle_since)s THEN 3
                WHEN f.last_core_at IS NULL OR f.last_core_at <= %(no_core_since)s THEN 2
                WHEN f.core_previous > 0 AND f.core_recent * 100 <= f.core_previous * %(keep_percent)s THEN 1
                ELSE 0 END AS churn_risk
    FROM {table} f
)
SELECT x.customer_id, h.customer_id IS NULL, x.activity_points, x.breadth_points, x.service_points,
       x.feedback_points, x.churn_risk
FROM x LEFT JOIN lifecycle_customerhealth h ON h.customer_id = x.customer_id
WHERE h.customer_id IS NULL OR h.activity_points <> x.activity_points OR h.breadth_points <> x.breadth_points
   OR h.service_points <> x.service_points OR h.feedback_points <> x.feedback_points OR h.churn_risk <> x.churn_risk
"""


def split_counts(cursor, table: str, new_condition: str) -> tuple[int, int]:
    """(new rows, changed rows) of a changes table: the writes that have nothing to do are skipped."""
    cursor.execute(f"SELECT COALESCE(SUM(CASE WHEN {new_condition} THEN 1 ELSE 0 END), 0), COUNT(*) FROM {table}")
    new, total = cursor.fetchone()
    return int(new), int(total) - int(new)


def health_write_changes(cursor, select_sql: str, table: str, params: dict, timings) -> None:
    """Write one id range's health changes and their history rows: at most four statements, none
    when nothing changes."""
    score = "activity_points + breadth_points + service_points + feedback_points"
    with timings.phase("health_changes"):
        cursor.execute(f"INSERT INTO {table} (customer_id, is_new, {POINT_COLUMNS}, churn_risk) {select_sql}", params)
        new, changed = split_counts(cursor, table, "is_new")
    if not new and not changed:
        return
    with timings.phase("health_writes"):
        if new:
            # A plain INSERT (no ON CONFLICT, whose speculative insertion costs a lock and a WAL record
            # per row): only the evaluation writes health rows, one run at a time (lifecyclerun_one_running).
            cursor.execute(
                f"INSERT INTO lifecycle_customerhealth (customer_id, score, {POINT_COLUMNS}, churn_risk, changed_at) "
                f"SELECT customer_id, {score}, {POINT_COLUMNS}, churn_risk, %(t)s FROM {table} WHERE is_new",
                params,
            )
        if changed:
            cursor.execute(
                f"UPDATE lifecycle_customerhealth AS h SET score = x.activity_points + x.breadth_points + x.service_points "
                "+ x.feedback_points, activity_points = x.activity_points, breadth_points = x.breadth_points, "
                "service_points = x.service_points, feedback_points = x.feedback_points, churn_risk = x.churn_risk, "
                f"changed_at = %(t)s FROM {table} AS x WHERE h.customer_id = x.customer_id AND NOT x.is_new",
                params,
            )
        cursor.execute(
            f"INSERT INTO lifecycle_healthhistory (customer_id, at, score, {POINT_COLUMNS}, churn_risk, run_id) "
            f"SELECT customer_id, %(t)s, {score}, {POINT_COLUMNS}, churn_risk, %(run)s FROM {table}",
            params,
        )
        cursor.execute(f"DELETE FROM {table}")
