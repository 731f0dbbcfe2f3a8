"""Reads of customers for the staff UI: list with search, filters and keyset pagination, the detail
page's key figures and timeline, and the dashboard's figures."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import (
    Count,
    DecimalField,
    F,
    Field,
    FloatField,
    Func,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce, Lower
from django.db.models.lookups import GreaterThan, LessThan
from django.utils import timezone

from core.ids import MAX_BIGINT
from core.roles import ROLE_RANK
from core.times import as_utc
from customers.models import AcquisitionChannel, ActivityEvent, Customer, Note, Order, Tag, Task

PAGE_SIZE = 50
TIMELINE_PAGE_SIZE = 20
# A search matching at most this many customers is paged by sorting its matches (customer_page).
SEARCH_SELECTIVE_LIMIT = 10_000
# pg_trgm indexes a word by its trigrams: a term without three letters or digits in a row has none
# to look up, and PostgreSQL would scan the whole table to count its matches.
_TRIGRAM_WORD = re.compile(r"[^\W_]{3}")


class FullNameLower(Func):
    """lower(first_name || ' ' || last_name): exactly the expression of the trigram index
    customer_fullname_trgm_idx (customers/migrations/0002), so PostgreSQL can use it."""

    template = "LOWER(%(expressions)s)"
    arg_joiner = " || ' ' || "

    def __init__(self, **extra):
        super().__init__(F("first_name"), F("last_name"), **extra)


# --- Customer list ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SortKey:
    """A whitelisted sort: fields (the last is always `id`, the tie-breaker) and whether each may be
    NULL. NULL sorts as the largest value, as in a PostgreSQL b-tree index, so both directions can
    walk the index.

    `annotate`: fields that are not the customer's own, by the names used in `fields`. They come
    from the customer's value row (lifecycle.CustomerValue, reverse relation "value"), joined by
    name so that customers does not import lifecycle: a value sort lists the customers that have a
    value row (all of them after a recompute; those added since appear after the next one), walking
    the value table's expression index and joining each customer by primary key. A missing
    prediction or order is COALESCEd below every real one (the indexes use the same expressions),
    so "highest first" ends with the customers who have none, on SQLite too (no NULLS FIRST there)."""

    fields: tuple[tuple[str, bool], ...]
    annotate: tuple[tuple[str, object], ...] = ()
    # The reverse one-to-one a sort's annotations read (lifecycle.CustomerValue or CustomerHealth).
    row: str = "value"
    # Customers without that row come too, after all the others in both directions (by id), instead
    # of being left out: customer_page walks the row's index first, then the customers lacking it.
    missing_last: bool = False


# Below any real value: predicted CLV is never negative; recency - T (minus the time since the last
# order) is never below minus a customer's age in days.
NO_PREDICTION = Decimal("-1")
NO_ORDER = -1e9
HISTORIC_VALUE = F("value__historic_value")
VALUE_ID = F("value__customer_id")
PREDICTED_CLV_SORT = Coalesce(F("value__predicted_clv"), Value(NO_PREDICTION), output_field=DecimalField(max_digits=14, decimal_places=2))
LAST_ORDER_SORT = Coalesce(F("value__recency") - F("value__T"), Value(NO_ORDER), output_field=FloatField())

SORT_KEYS = {
    "name": SortKey((("last_name", False), ("first_name", False), ("id", False))),
    "signed_up": SortKey((("signed_up_at", True), ("id", False))),
    "created": SortKey((("created_at", False), ("id", False))),
    # Value sorts (indexes in lifecycle/migrations/0005: custvalue_*_sort_idx).
    # The tie-breaker is the value row's customer_id (the customer's id): the one the index holds.
    "historic_value": SortKey(
        (("sort_historic_value", False), ("sort_id", False)), annotate=(("sort_historic_value", HISTORIC_VALUE), ("sort_id", VALUE_ID))
    ),
    "predicted_clv": SortKey(
        (("sort_predicted_clv", False), ("sort_id", False)), annotate=(("sort_predicted_clv", PREDICTED_CLV_SORT), ("sort_id", VALUE_ID))
    ),
    # The last paid order as of the last recompute: recency - T is minus the time since it (larger
    # is more recent), in the run's time unit.
    "last_order": SortKey(
        (("sort_last_order", False), ("sort_id", False)), annotate=(("sort_last_order", LAST_ORDER_SORT), ("sort_id", VALUE_ID))
    ),
    # Health score (index lifecycle/migrations/0011: customerhealth_score_sort_idx on (score, customer)),
    # tie-broken by the customer id. Customers without a health row yet (added since the last
    # evaluation) come last in both directions, by id.
    "health": SortKey(
        (("sort_health", True), ("sort_id", False)),
        annotate=(("sort_health", F("health__score")), ("sort_id", F("id"))),
        row="health",
        missing_last=True,
    ),
}
SORT_CHOICES = [s for name in SORT_KEYS for s in (name, f"-{name}")]
# Sorts whose header link starts with the highest value first.
DESCENDING_FIRST = {"historic_value", "predicted_clv", "last_order", "health"}
DEFAULT_SORT = "-created"
_DATETIME_FIELDS = {"signed_up_at", "created_at"}
_DECIMAL_FIELDS = {"sort_historic_value", "sort_predicted_clv"}
_FLOAT_FIELDS = {"sort_last_order"}
_INT_FIELDS = {"id", "sort_id", "sort_health"}


def customer_search_q(term: str) -> Q:
    """Case-insensitive substring match on e-mail, full name and external id (needs
    `with_search_alias`). Lower-cased both sides with LIKE so the trigram indexes apply."""
    term = term.strip().lower()
    return Q(_email_lc__contains=term) | Q(_name_lc__contains=term) | Q(_external_id_lc__contains=term)


def with_search_alias(qs: QuerySet) -> QuerySet:
    return qs.alias(_email_lc=Lower("email"), _name_lc=FullNameLower(), _external_id_lc=Lower("external_id"))


def customer_filter(
    *,
    q: str = "",
    channel: AcquisitionChannel | None = None,
    country: str = "",
    owner=None,
    tag: Tag | None = None,
    segment: str = "",
    stage: str = "",
    risk: int | None = None,
    health_min: int | None = None,
    health_max: int | None = None,
    qs: QuerySet | None = None,
) -> QuerySet:
    """The customers matching a search term and filters, unordered. `segment`: an RFM segment
    (lifecycle.RfmSegment value) of the customer's value row; `stage`: the lifecycle stage
    (lifecycle.CustomerStage); `risk`, `health_min`, `health_max`: the churn-risk level and health
    score range (inclusive) of the customer's health row (lifecycle.CustomerHealth). All through
    the reverse one-to-one relations, so customers does not import lifecycle."""
    qs = Customer.objects.all() if qs is None else qs
    if q and q.strip():
        qs = with_search_alias(qs).filter(customer_search_q(q))
    if channel is not None:
        qs = qs.filter(channel=channel)
    if country:
        qs = qs.filter(country=country.strip().upper())
    if owner is not None:
        qs = qs.filter(owner=owner)
    if tag is not None:
        # One row per customer: (customer, tag) is unique in the through table.
        qs = qs.filter(tags=tag)
    if segment:
        qs = qs.filter(value__rfm_segment=segment)
    if stage:
        qs = qs.filter(stage__stage=stage)
    if risk is not None:
        qs = qs.filter(health__churn_risk=risk)
    if health_min is not None:
        qs = qs.filter(health__score__gte=health_min)
    if health_max is not None:
        qs = qs.filter(health__score__lte=health_max)
    return qs


def customer_search_is_selective(qs: QuerySet, term: str, *, limit: int | None = None) -> bool:
    """Whether `qs`, a search for `term` (see customer_filter), matches at most `limit` customers,
    as counted through the trigram indexes (PostgreSQL only; a term needs a trigram to look up).

    A page of a search walks the sort's index and stops at the 51st match. When the matches sit far
    along that index (a last name searched in name order: every name before it is read first), the
    walk took 1.0-1.5 s at a million customers. customer_page then finds the matches through the
    trigram indexes and sorts them instead (_by_search_indexes). A term matching more customers
    than `limit` is common, and a walk meets 51 of its matches soon."""
    if connection.vendor != "postgresql" or not _TRIGRAM_WORD.search(term):
        return False
    limit = SEARCH_SELECTIVE_LIMIT if limit is None else limit
    return qs.order_by()[: limit + 1].count() <= limit


@contextmanager
def _by_search_indexes(selective: bool):
    """For the queries inside (SET LOCAL, in a transaction of their own): no index walk and no
    sequential scan, which leaves the bitmap scans of the trigram indexes, then a sort of what
    they found. PostgreSQL's planner cannot see that a term's matches cluster on the sort key, so
    it is told; customer_search_is_selective made sure there are few matches to sort."""
    if not selective:
        yield
        return
    outer = connection.in_atomic_block  # SET LOCAL would outlive our savepoint: put it back after
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('enable_indexscan', 'off', true), set_config('enable_seqscan', 'off', true)")
        try:
            yield
        finally:
            if outer:
                cursor.execute(
                    "SELECT set_config(name, reset_val, true) FROM pg_settings"
                    " WHERE name IN ('enable_indexscan', 'enable_seqscan')"
                )


def _sort_parts(sort: str) -> tuple[str, SortKey, bool]:
    if sort not in SORT_CHOICES:
        sort = DEFAULT_SORT
    descending = sort.startswith("-")
    return sort, SORT_KEYS[sort.lstrip("-")], descending


def customer_ordering(sort: str, *, reverse: bool = False) -> list:
    sort, key, descending = _sort_parts(sort)
    descending ^= reverse
    if key.missing_last:  # NULL last in the sort's own direction, first when walking it backwards
        nulls = {"nulls_first": True} if reverse else {"nulls_last": True}
        return [F(name).desc(**nulls) if descending else F(name).asc(**nulls) for name, _nullable in key.fields]
    return [
        F(name).desc(nulls_first=True) if descending else F(name).asc(nulls_last=True)
        for name, _nullable in key.fields
    ]


def customer_sorted(qs: QuerySet, sort: str) -> QuerySet:
    """`qs` with what `sort` orders by: a value or health sort's columns, and only customers with
    that row."""
    _sort, key, _descending = _sort_parts(sort)
    if key.annotate:
        if not key.missing_last:
            qs = qs.filter(**{f"{key.row}__isnull": False})
        qs = qs.annotate(**dict(key.annotate))
    return qs


def _beyond(name: str, value, descending: bool) -> Q:
    """Rows strictly after `value` on one key, walking in the given direction (NULL is largest)."""
    if descending:
        return Q(**{f"{name}__isnull": False}) if value is None else Q(**{f"{name}__lt": value})
    if value is None:
        return Q(pk__in=[])
    return Q(**{f"{name}__gt": value}) | Q(**{f"{name}__isnull": True})


def _equal(name: str, value) -> Q:
    return Q(**{f"{name}__isnull": True}) if value is None else Q(**{name: value})


class _Row(Func):
    """A row value, (a, b): compared as a whole it is the keyset seek that a multi-column index
    answers directly, however many rows tie on the first column."""

    template = "(%(expressions)s)"
    arg_joiner = ", "
    output_field = Field()  # a row has no single type; only compared, never selected


def _seek(key: SortKey, values: list, descending: bool) -> Q:
    """Lexicographic "after (v1, v2, ..., id)": (k1 > v1) OR (k1 = v1 AND k2 > v2) OR ...

    A value sort (no NULL in its keys) says it as one row comparison (k1, id) > (v1, v2): the OR
    form made PostgreSQL walk every tied row (a third of all customers have no orders, hence
    value 0 and no prediction) to reach the cursor, 0.5 s a page at a million customers."""
    if key.annotate:
        compare = LessThan if descending else GreaterThan
        row = _Row(*[F(name) for name, _nullable in key.fields])
        return Q(compare(row, _Row(*[Value(v) for v in values])))
    condition = Q(pk__in=[])
    prefix = Q()
    for (name, _nullable), value in zip(key.fields, values, strict=True):
        condition |= prefix & _beyond(name, value, descending)
        prefix &= _equal(name, value)
    first_name, first_nullable = key.fields[0]
    first_value = values[0]
    if not first_nullable:
        # A plain range on the leading column, redundant but it lets the index start at the cursor.
        bound = f"{first_name}__lte" if descending else f"{first_name}__gte"
        condition &= Q(**{bound: first_value})
    return condition


def _encode_cursor(sort: str, direction: str, customer: Customer, key: SortKey) -> str:
    values = []
    for name, _nullable in key.fields:
        value = getattr(customer, name)
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)  # exact: a float would not find the row again
        values.append(value)
    raw = json.dumps({"s": sort, "d": direction, "v": values}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str, key: SortKey) -> tuple[str, list] | None:
    """(direction, values) or None when the cursor is malformed or was made for another sort."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if data.get("s") != sort or data.get("d") not in ("n", "p") or len(data["v"]) != len(key.fields):
            return None
        values = []
        for (name, nullable), value in zip(key.fields, data["v"], strict=True):
            if value is None:
                if not nullable:
                    return None
            elif name in _DATETIME_FIELDS:
                value = dt.datetime.fromisoformat(value)
                if timezone.is_naive(value):
                    return None
                value = as_utc(value)  # as the cursors we make are (core.times)
            elif name in _INT_FIELDS:
                if not isinstance(value, int) or isinstance(value, bool):
                    return None
            elif name in _DECIMAL_FIELDS:
                value = Decimal(value) if isinstance(value, str) else None
                if value is None or not value.is_finite():
                    return None
            elif name in _FLOAT_FIELDS:
                if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                    return None
            elif not isinstance(value, str):
                return None
            values.append(value)
        return data["d"], values
    except (ValueError, TypeError, KeyError, binascii.Error, json.JSONDecodeError, AttributeError, ArithmeticError):
        return None


@dataclass
class CustomerPage:
    customers: list[Customer]
    sort: str
    next_cursor: str | None = None
    previous_cursor: str | None = None

    @property
    def has_other_pages(self) -> bool:
        return bool(self.next_cursor or self.previous_cursor)


def customer_page(
    *, qs: QuerySet, sort: str = DEFAULT_SORT, cursor: str = "", size: int = PAGE_SIZE, search: str = ""
) -> CustomerPage:
    """One page of `qs` in `sort` order after or before `cursor`: keyset ("seek") pagination,
    fetching size+1 rows to learn whether there is another page. No COUNT, no OFFSET, so page
    10,000 costs what page 1 costs. `search`: the term `qs` searches for, if any; a term with few
    matches costs one more query, which counts them (customer_search_is_selective)."""
    sort, key, descending = _sort_parts(sort)
    decoded = _decode_cursor(cursor, sort, key) if cursor else None
    selective = bool(search) and customer_search_is_selective(qs, search)
    with _by_search_indexes(selective):
        if key.missing_last:
            return _customer_page_missing_last(qs, sort, key, descending, decoded, size)
        return _customer_page(customer_sorted(qs, sort), sort, key, descending, decoded, size)


def _page_backwards(rows: list, sort: str, key: SortKey, size: int) -> CustomerPage:
    """The page from up to size+1 rows fetched walking backwards from a "previous" cursor."""
    more_before = len(rows) > size
    rows = rows[:size][::-1]
    page = CustomerPage(rows, sort)
    if rows:
        page.next_cursor = _encode_cursor(sort, "n", rows[-1], key)
        if more_before:
            page.previous_cursor = _encode_cursor(sort, "p", rows[0], key)
    return page


def _page_forwards(rows: list, sort: str, key: SortKey, size: int, *, from_cursor: bool) -> CustomerPage:
    """The page from up to size+1 rows fetched walking forwards (from the start or a "next" cursor)."""
    more_after = len(rows) > size
    rows = rows[:size]
    page = CustomerPage(rows, sort)
    if rows and more_after:
        page.next_cursor = _encode_cursor(sort, "n", rows[-1], key)
    if rows and from_cursor:
        page.previous_cursor = _encode_cursor(sort, "p", rows[0], key)
    return page


def _customer_page_missing_last(qs: QuerySet, sort: str, key: SortKey, descending: bool, decoded, size: int) -> CustomerPage:
    """A page of a sort whose customers without the row come last (the health sort) in two walks:
    the customers with the row by its index (the row comparison of `_seek`, tie-broken by the row's
    customer_id, which is the customer's id), then, while the page is not full, those without it by
    id. A cursor in the second part has NULL for the value. Two queries at most, each by an index,
    and one for the page's tags."""
    page = _customer_page_missing_last_rows(qs, sort, key, descending, decoded, size)
    prefetch_related_objects(page.customers, "tags")
    return page


def _customer_page_missing_last_rows(qs: QuerySet, sort: str, key: SortKey, descending: bool, decoded, size: int) -> CustomerPage:
    qs = qs.select_related("channel", "owner", "value__run", "health")
    (value_name, _), (id_name, _) = key.fields
    value_expr = dict(key.annotate)[value_name]
    has = qs.filter(**{f"{key.row}__isnull": False}).annotate(
        **{value_name: value_expr, id_name: F(f"{key.row}__customer_id")}
    )
    lacks = qs.filter(**{f"{key.row}__isnull": True}).annotate(**{value_name: Value(None, output_field=Field()), id_name: F("id")})

    def lacking(after_id, walk_descending: bool, limit: int) -> list:
        rows = lacks
        if after_id is not None:
            rows = rows.filter(id__lt=after_id) if walk_descending else rows.filter(id__gt=after_id)
        return list(rows.order_by("-id" if walk_descending else "id")[:limit]) if limit > 0 else []

    def having(values, walk_descending: bool, limit: int) -> list:
        rows = has if values is None else has.filter(_seek(key, values, walk_descending))
        order = [F(value_name).desc(), F(id_name).desc()] if walk_descending else [F(value_name).asc(), F(id_name).asc()]
        return list(rows.order_by(*order)[:limit]) if limit > 0 else []

    if decoded is not None and decoded[0] == "p":
        values = decoded[1]
        if values[0] is None:  # backwards from the tail: the tail before the cursor, then the rows from their end
            rows = lacking(values[1], not descending, size + 1)
            rows += having(None, not descending, size + 1 - len(rows))
        else:
            rows = having(values, not descending, size + 1)
        return _page_backwards(rows, sort, key, size)

    if decoded is not None and decoded[1][0] is None:
        rows = lacking(decoded[1][1], descending, size + 1)
    else:
        rows = having(decoded[1] if decoded else None, descending, size + 1)
        rows += lacking(None, descending, size + 1 - len(rows))
    return _page_forwards(rows, sort, key, size, from_cursor=decoded is not None)


def _customer_page(qs: QuerySet, sort: str, key: SortKey, descending: bool, decoded, size: int) -> CustomerPage:
    # The value row (and its run, for the last order's day) and the health row come in the same
    # query: LEFT JOINs by primary key, or the joins a sort or filter already made.
    qs = qs.select_related("channel", "owner", "value__run", "health").prefetch_related("tags")

    if decoded is not None and decoded[0] == "p":
        rows = list(
            qs.filter(_seek(key, decoded[1], not descending)).order_by(*customer_ordering(sort, reverse=True))[: size + 1]
        )
        return _page_backwards(rows, sort, key, size)

    if decoded is not None:
        qs = qs.filter(_seek(key, decoded[1], descending))
    rows = list(qs.order_by(*customer_ordering(sort))[: size + 1])
    return _page_forwards(rows, sort, key, size, from_cursor=decoded is not None)


def customer_export_rows(*, qs: QuerySet, sort: str = DEFAULT_SORT, chunk_size: int = 2000):
    """Every customer of `qs` in `sort` order, streamed from the database in chunks."""
    return (
        customer_sorted(qs, sort)
        .select_related("channel", "owner")
        .prefetch_related("tags")
        .order_by(*customer_ordering(sort))
        .iterator(chunk_size=chunk_size)
    )


def _lifecycle_choices(model: str, field_name: str) -> list:
    """A lifecycle model field's choices through the app registry (customers does not import
    lifecycle); none when lifecycle is not installed."""
    try:
        return list(apps.get_model("lifecycle", model)._meta.get_field(field_name).choices)
    except LookupError:
        return []


def rfm_segment_choices() -> list[tuple[str, str]]:
    """The RFM segments a customer's value row can have."""
    return _lifecycle_choices("CustomerValue", "rfm_segment")


def stage_choices() -> list[tuple[str, str]]:
    return _lifecycle_choices("CustomerStage", "stage")


def churn_risk_choices() -> list[tuple[int, str]]:
    return _lifecycle_choices("CustomerHealth", "churn_risk")


def customer_health_bands(customers: list[Customer]) -> None:
    """Set `health_band` ("red", "yellow", "green" or "") on each customer of a page from its
    health row (select_related by customer_page), by the bands of lifecycle.HealthRules: one query
    whatever the page's size; the rules' defaults when they were never saved."""
    try:
        rules_model = apps.get_model("lifecycle", "HealthRules")
    except LookupError:
        rules_model = None
    rules = None
    if rules_model is not None:
        rules = rules_model.objects.filter(pk=1).first() or rules_model()
    for customer in customers:
        health = getattr(customer, "health", None) if rules is not None else None
        customer.health_band = rules.band(health.score) if health is not None else ""


def owner_choices() -> QuerySet:
    """Staff who may own customers: every user holding a role (or a superuser)."""
    return (
        get_user_model()
        .objects.filter(Q(groups__name__in=list(ROLE_RANK)) | Q(is_superuser=True), is_active=True)
        .distinct()
        .order_by("username")
    )


# --- Customer detail ----------------------------------------------------------------------------

def customer_detail(*, pk: int) -> Customer:
    return (
        Customer.objects.select_related("channel", "owner").prefetch_related("tags").get(pk=pk)
    )


@dataclass
class MoneyTotal:
    amount: Decimal
    currency: str


@dataclass
class CustomerKeyFigures:
    orders: int = 0
    paid_orders: int = 0
    refunds: int = 0
    first_order_at: dt.datetime | None = None
    last_order_at: dt.datetime | None = None
    spent: list[MoneyTotal] = field(default_factory=list)
    refunded: list[MoneyTotal] = field(default_factory=list)


def customer_key_figures(*, customer: Customer) -> CustomerKeyFigures:
    """Orders, total spent (paid orders), refunds, first and last order: one GROUP BY query.

    Grouped by currency because orders keep their own; amounts of different currencies are
    never added up."""
    paid, refunded = Q(status=Order.Status.PAID), Q(status=Order.Status.REFUNDED)
    rows = (
        Order.objects.filter(customer=customer)
        .values("currency")
        .annotate(
            n=Count("id"),
            n_paid=Count("id", filter=paid),
            n_refunded=Count("id", filter=refunded),
            spent=Sum("amount", filter=paid),
            refunded=Sum("amount", filter=refunded),
            first=Min("ordered_at"),
            last=Max("ordered_at"),
        )
        .order_by("currency")
    )
    figures = CustomerKeyFigures()
    for row in rows:
        figures.orders += row["n"]
        figures.paid_orders += row["n_paid"]
        figures.refunds += row["n_refunded"]
        if row["spent"] is not None:
            figures.spent.append(MoneyTotal(row["spent"], row["currency"]))
        if row["refunded"] is not None:
            figures.refunded.append(MoneyTotal(row["refunded"], row["currency"]))
        figures.first_order_at = min(filter(None, [figures.first_order_at, row["first"]]), default=None)
        figures.last_order_at = max(filter(None, [figures.last_order_at, row["last"]]), default=None)
    return figures


# Ties on the timestamp are broken by kind, then id: orders before events before notes.
TIMELINE_SOURCES = (
    ("order", 3, "ordered_at"),
    ("event", 2, "occurred_at"),
    ("note", 1, "created_at"),
)
_KIND_RANK = {kind: rank for kind, rank, _ in TIMELINE_SOURCES}


@dataclass(frozen=True)
class TimelineEntry:
    kind: str
    at: dt.datetime
    obj: object

    @property
    def sort_key(self) -> tuple:
        return (self.at, _KIND_RANK[self.kind], self.obj.pk)

    @property
    def cursor(self) -> str:
        return f"{self.at.isoformat()}~{self.kind}~{self.obj.pk}"


@dataclass
class TimelinePage:
    entries: list[TimelineEntry]
    next_cursor: str | None


def parse_timeline_cursor(cursor: str) -> tuple[dt.datetime, int, int] | None:
    """(time, kind, id) of a "load more" cursor, or None when it is malformed. The time in UTC
    (core.times) and the id within a BIGINT, as the cursors we make are."""
    try:
        at, kind, pk = cursor.split("~")
        at = dt.datetime.fromisoformat(at)
        if timezone.is_naive(at) or not 0 < int(pk) <= MAX_BIGINT:
            return None
        return as_utc(at), _KIND_RANK[kind], int(pk)
    except (ValueError, KeyError, AttributeError):
        return None


def _timeline_before(field_name: str, rank: int, cursor: tuple | None) -> Q:
    if cursor is None:
        return Q()
    at, cursor_rank, cursor_pk = cursor
    condition = Q(**{f"{field_name}__lt": at})
    if rank < cursor_rank:
        condition |= Q(**{field_name: at})
    elif rank == cursor_rank:
        condition |= Q(**{field_name: at, "pk__lt": cursor_pk})
    return condition


def customer_timeline(*, customer: Customer, before: str = "", size: int = TIMELINE_PAGE_SIZE) -> TimelinePage:
    """Orders, activity events and notes of a customer, newest first, `size` at a time.

    Keyset on (timestamp, kind, id): each source returns at most size+1 rows older than the
    cursor through its (customer, timestamp) index, and the three short lists are merged."""
    cursor = parse_timeline_cursor(before) if before else None
    querysets = {
        "order": Order.objects.all(),
        "event": ActivityEvent.objects.all(),
        "note": Note.objects.select_related("author"),
    }
    entries = []
    for kind, rank, field_name in TIMELINE_SOURCES:
        rows = (
            querysets[kind]
            .filter(customer=customer)
            .filter(_timeline_before(field_name, rank, cursor))
            .order_by(f"-{field_name}", "-id")[: size + 1]
        )
        entries.extend(TimelineEntry(kind, getattr(row, field_name), row) for row in rows)
    entries.sort(key=lambda e: e.sort_key, reverse=True)
    page = entries[:size]
    return TimelinePage(page, page[-1].cursor if len(entries) > size else None)


def customer_open_tasks(*, customer: Customer, limit: int = 20) -> list[Task]:
    return list(
        Task.objects.filter(customer=customer, done_at__isnull=True)
        .select_related("assignee")
        .order_by(F("due_at").asc(nulls_last=True), "id")[:limit]
    )


# --- Dashboard ----------------------------------------------------------------------------------

@dataclass
class DashboardFigures:
    customers: int
    new_this_month: int
    orders_30d: int
    paid_orders_30d: int
    revenue_30d: list[MoneyTotal]
    open_tasks: int


def dashboard_figures(*, user, now: dt.datetime | None = None) -> DashboardFigures:
    """Key figures for the home page in three queries, whatever the size of the tables."""
    now = now or timezone.now()
    local_now = timezone.localtime(now)
    month_start = local_now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    counts = Customer.objects.aggregate(
        total=Count("id"), new=Count("id", filter=Q(signed_up_at__gte=month_start, signed_up_at__lte=now))
    )
    paid = Q(status=Order.Status.PAID)
    order_rows = (
        Order.objects.filter(ordered_at__gte=now - dt.timedelta(days=30), ordered_at__lte=now)
        .values("currency")
        .annotate(n=Count("id"), n_paid=Count("id", filter=paid), revenue=Sum("amount", filter=paid))
        .order_by("currency")
    )
    orders = paid_orders = 0
    revenue = []
    for row in order_rows:
        orders += row["n"]
        paid_orders += row["n_paid"]
        if row["revenue"] is not None:
            revenue.append(MoneyTotal(row["revenue"], row["currency"]))
    return DashboardFigures(
        customers=counts["total"],
        new_this_month=counts["new"],
        orders_30d=orders,
        paid_orders_30d=paid_orders,
        revenue_30d=revenue,
        open_tasks=Task.objects.filter(assignee=user, done_at__isnull=True).count(),
    )


def user_next_tasks(*, user, limit: int = 8) -> list[Task]:
    """The user's open tasks, the soonest due first (undated last), with their customers: one query."""
    open_tasks = Task.objects.filter(assignee=user, done_at__isnull=True).select_related("customer")
    return list(open_tasks.order_by(F("due_at").asc(nulls_last=True), "id")[:limit])
