"""Benchmark of the feedback app at scale: a survey's results over 1,000,000 responses, and inviting
100,000 customers (invitations and their outbox e-mails queued).

Run against a PostgreSQL database of its own (it replaces the customers and surveys in it):

    createdb -h 127.0.0.1 crm_feedback
    DATABASE_URL=postgres://root@127.0.0.1:5432/crm_feedback DEBUG=true .venv/bin/python manage.py migrate
    .venv/bin/python bench/bench_feedback.py postgres://root@127.0.0.1:5432/crm_feedback

It fills --customers customers, one NPS survey with --responses submitted responses (scores spread
0-10, over a year of days) and the day totals the submits keep, in a few SQL statements. Then it
times, best of --repeat:
- `survey_results` (what GET /api/v1/surveys/{id}/results/ reads) and the API request itself,
  against the floor: one bare aggregate over the responses table (COUNT ... FILTER by category);
- `survey_invite_bulk` of --invite opted-in customers to a second survey (invitations + one outbox
  e-mail each), against the floor: the same rows INSERT ... SELECT into two bare tables of the same
  shape (no constraint, no index)."""

from __future__ import annotations

import argparse
import statistics
import time

from django_setup import setup_django


def fill(customers: int, responses: int, invite: int) -> int:
    from django.db import connection

    from feedback.models import Survey
    from feedback.services.surveys import survey_create, survey_open

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE customers_customer, feedback_survey CASCADE")
        cursor.execute(
            "INSERT INTO customers_customer (external_id, email, first_name, last_name, phone, country, language,"
            " signed_up_at, email_opt_in, email_opt_in_at, created_at, updated_at)"
            " SELECT 'C' || g, 'c' || g || '@mail.example.com', 'First' || g, 'Last', '', 'US', 'en',"
            " now() - interval '400 days', g <= %s, CASE WHEN g <= %s THEN now() END, now(), now()"
            " FROM generate_series(1, %s) g",
            [invite, invite, customers],
        )
    survey = survey_open(
        survey=survey_create(
            name="Bench NPS",
            kind=Survey.Kind.NPS,
            questions=[{"type": "nps", "text": "Recommend us?"}, {"type": "text", "text": "Why?", "required": False}],
        )
    )
    nps_question = survey.questions.get(position=0)
    with connection.cursor() as cursor:
        # The oldest customers answered; invitations, then responses and their NPS answers, a year of days.
        cursor.execute(
            "INSERT INTO feedback_invitation (survey_id, customer_id, token, \"trigger\", created_at, expires_at, answered_at)"
            " SELECT %s, c.id, md5(c.id::text || random()::text) || md5(random()::text), 'manual',"
            " now() - (31 + c.id %% 335) * interval '1 day', now() + interval '30 days',"
            " now() - (31 + c.id %% 335) * interval '1 day'"
            " FROM customers_customer c ORDER BY c.id DESC LIMIT %s",
            [survey.pk, responses],
        )
        cursor.execute(
            "INSERT INTO feedback_response (invitation_id, survey_id, customer_id, started_at, submitted_at, nps_score, outcome)"
            " SELECT i.id, i.survey_id, i.customer_id, i.answered_at, i.answered_at, (i.customer_id * 7919) %% 11, ''"
            " FROM feedback_invitation i WHERE i.survey_id = %s",
            [survey.pk],
        )
        cursor.execute(
            "INSERT INTO feedback_answer (response_id, question_id, score, choices, text)"
            " SELECT r.id, %s, r.nps_score, '[]'::jsonb, '' FROM feedback_response r WHERE r.survey_id = %s",
            [nps_question.pk, survey.pk],
        )
        # The running totals the submits keep, built the same way in one statement.
        cursor.execute(
            "INSERT INTO feedback_surveydaytotals (survey_id, day, invitations, responses, promoters, passives, detractors,"
            " csat_answers, csat_satisfied)"
            " SELECT survey_id, (submitted_at AT TIME ZONE current_setting('TimeZone'))::date, count(*), count(*),"
            " count(*) FILTER (WHERE nps_score >= 9), count(*) FILTER (WHERE nps_score BETWEEN 7 AND 8),"
            " count(*) FILTER (WHERE nps_score <= 6), 0, 0"
            " FROM feedback_response WHERE survey_id = %s GROUP BY 1, 2",
            [survey.pk],
        )
        cursor.execute("VACUUM ANALYZE")
    print(f"filled {customers:,} customers, {responses:,} responses in {time.perf_counter() - started:.1f} s", flush=True)
    return survey.pk


def best(repeat: int, work) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database_url")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--invite", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--broker", default="redis://127.0.0.1:6379/15",
        help="Celery broker the delivery kicks go to (not run here: this measures queueing, not sending)",
    )
    args = parser.parse_args()
    import os

    os.environ["REDIS_URL"] = args.broker
    setup_django(args.database_url)

    from django.contrib.auth.models import User
    from django.db import connection
    from rest_framework.test import APIClient

    from core.roles import Role
    from customers.models import Customer
    from feedback.models import Survey
    from feedback.selectors import survey_results
    from feedback.services.invitations import survey_invite_bulk
    from feedback.services.surveys import survey_create, survey_open

    survey_id = fill(args.customers, args.responses, args.invite)
    survey = Survey.objects.get(pk=survey_id)

    seconds, results = best(args.repeat, lambda: survey_results(survey=survey))
    print(f"survey_results over {results.responses:,} responses: {seconds * 1000:.1f} ms (NPS {results.nps:.1f})")

    user, _ = User.objects.get_or_create(username="bench-agent")
    from django.contrib.auth.models import Group

    user.groups.add(Group.objects.get(name=Role.AGENT))
    client = APIClient()
    client.force_authenticate(user)
    api_seconds, response = best(
        args.repeat, lambda: client.get(f"/api/v1/surveys/{survey_id}/results/", SERVER_NAME="localhost")
    )
    assert response.status_code == 200, response.status_code
    print(f"GET /api/v1/surveys/{survey_id}/results/: {api_seconds * 1000:.1f} ms")

    def floor_results():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), count(*) FILTER (WHERE nps_score >= 9), count(*) FILTER (WHERE nps_score BETWEEN 7 AND 8),"
                " count(*) FILTER (WHERE nps_score <= 6) FROM feedback_response WHERE survey_id = %s AND submitted_at IS NOT NULL",
                [survey_id],
            )
            return cursor.fetchone()

    floor, counts = best(args.repeat, floor_results)
    assert counts[0] == results.responses and counts[1] == results.promoters
    print(f"floor, one bare aggregate over the responses: {floor * 1000:.1f} ms (results are {floor / seconds:.0f}x faster)")

    # Inviting: a fresh survey each round, the same opted-in customers.
    invite_times = []
    for _round in range(min(args.repeat, 3)):
        target = survey_open(survey=survey_create(name="Bench invite", kind="nps", questions=[{"type": "nps", "text": "?"}]))
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM feedback_invitation WHERE survey_id <> %s", [survey_id])
            cursor.execute("DELETE FROM messaging_message")
        started = time.perf_counter()
        summary = survey_invite_bulk(survey=target, customers=Customer.objects.filter(email_opt_in=True))
        invite_times.append(time.perf_counter() - started)
        assert summary.invited == args.invite, summary
    with connection.cursor() as cursor:
        queued = cursor.execute("SELECT count(*) FROM messaging_message").fetchone()[0]
    print(
        f"survey_invite_bulk of {args.invite:,} customers: best {min(invite_times):.2f} s, median "
        f"{statistics.median(invite_times):.2f} s; {queued:,} e-mails queued"
    )

    def floor_invite():
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS bench_inv, bench_msg")
            cursor.execute("CREATE TABLE bench_inv AS SELECT * FROM feedback_invitation WITH NO DATA")
            cursor.execute("CREATE TABLE bench_msg AS SELECT * FROM messaging_message WITH NO DATA")
            cursor.execute(
                "INSERT INTO bench_inv (id, survey_id, customer_id, token, \"trigger\", created_at, expires_at)"
                " SELECT c.id, 1, c.id, replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'manual', now(), now()"
                " FROM customers_customer c WHERE c.email_opt_in"
            )
            cursor.execute(
                "INSERT INTO bench_msg (id, key, purpose, template_id, customer_id, to_email, language, context, state,"
                " suppressed_reason, attempts, last_error, provider_message_id, created_at, next_attempt_at)"
                " SELECT c.id, 'k' || c.id, 'marketing', 1, c.id, lower(c.email), c.language, '{}'::jsonb, 'queued', '', 0, '', '',"
                " now(), now() FROM customers_customer c WHERE c.email_opt_in"
            )
            cursor.execute("DROP TABLE bench_inv, bench_msg")

    invite_floor, _ = best(min(args.repeat, 3), floor_invite)
    print(f"floor, the same rows into bare tables: {invite_floor:.2f} s (ratio {min(invite_times) / invite_floor:.1f}x)")
    import redis

    redis.Redis.from_url(args.broker).flushdb()  # the delivery kicks nobody will run


if __name__ == "__main__":
    main()
