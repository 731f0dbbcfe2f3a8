"""Benchmark of the customer list's search: a page of results for common and rare terms in each sort.

Run against a PostgreSQL database of its own (it replaces the customers in it):

    createdb -h 127.0.0.1 crm_search
    DATABASE_URL=postgres://root@127.0.0.1:5432/crm_search DEBUG=true .venv/bin/python manage.py migrate
    .venv/bin/python bench/bench_search.py postgres://root@127.0.0.1:5432/crm_search

It fills the table with --customers generated customers (names from the demo data's lists, one SQL
statement), unless --keep, then times the first page, the next and back again for each term and
sort: once as the list pages a search now (customer_page with search=) and once walking the sort's
index as before, and checks that both give the same customers. Times are the best of --repeat."""

from __future__ import annotations

import argparse
import sys
import time

from django_setup import setup_django

TERMS = ["smith", "ucas", "ann", "mar", "sofia mancini", "example", "C00042", "12345", "zzq", "ma", "o'"]
SORTS = ["-created", "name", "-signed_up"]


def fill(customers: int) -> None:
    from django.db import connection

    from customers.services.demo import params

    firsts = sorted({name for names in params.FIRST_NAMES.values() for name in names})
    lasts = sorted({name for names in params.LAST_NAMES.values() for name in names})
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE customers_customer CASCADE")
        # Names spread over the ids by two primes, so a last name's customers are all over the table
        # and in creation order, but together in name order (as in real data).
        cursor.execute(
            "INSERT INTO customers_customer (external_id, email, first_name, last_name, phone, country,"
            " signed_up_at, email_opt_in, created_at, updated_at)"
            " SELECT 'C' || lpad(g::text, 7, '0'), lower(f.a[1 + (g::bigint * 7919) %% cardinality(f.a)] || '.'"
            " || l.a[1 + (g::bigint * 104729) %% cardinality(l.a)]) || g || '@mail.example.com',"
            " f.a[1 + (g::bigint * 7919) %% cardinality(f.a)], l.a[1 + (g::bigint * 104729) %% cardinality(l.a)],"
            " '', 'US', now() - (g %% 730) * interval '1 day', false, now() - (%s - g) * interval '1 minute', now()"
            " FROM generate_series(1, %s) g, (SELECT %s::text[] AS a) f, (SELECT %s::text[] AS a) l",
            [customers, customers, firsts, lasts],
        )
        cursor.execute("VACUUM ANALYZE customers_customer")
    print(f"filled {customers:,} customers in {time.perf_counter() - started:.1f} s", flush=True)


def three_pages(sort: str, term: str, search: str) -> list[int]:
    """First page, the next one and back: the customers' ids of the first two."""
    from customers.selectors import customer_filter, customer_page

    qs = customer_filter(q=term)
    first = customer_page(qs=qs, sort=sort, search=search)
    ids = [c.pk for c in first.customers]
    if first.next_cursor:
        second = customer_page(qs=qs, sort=sort, search=search, cursor=first.next_cursor)
        ids += [c.pk for c in second.customers]
        back = customer_page(qs=qs, sort=sort, search=search, cursor=second.previous_cursor)
        assert [c.pk for c in back.customers] == [c.pk for c in first.customers]
    return ids


def best_of(repeat: int, work) -> tuple[float, list[int]]:
    best, result = float("inf"), []
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database_url")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the customers already there")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    setup_django(args.database_url)
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("The benchmark measures PostgreSQL's plans: give a postgres:// URL (a database of its own).")
    if not args.keep:
        fill(args.customers)
    print(f"{'sort':<11}{'term':<16}{'now':>10}{'index walk':>12}   (ms per page: first, next, back)")
    for sort in SORTS:
        for term in TERMS:
            now, ids = best_of(args.repeat, lambda sort=sort, term=term: three_pages(sort, term, search=term))
            walk, walked = best_of(args.repeat, lambda sort=sort, term=term: three_pages(sort, term, search=""))
            assert ids == walked, (sort, term)
            pages = 3 if len(ids) > 50 else 1
            print(f"{sort:<11}{term!r:<16}{now * 1000 / pages:>10.1f}{walk * 1000 / pages:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
