"""Set-based upserts of orders and activity events, as the API and the staff forms send them (one
or up to BULK_MAX_ITEMS at a time).

Every item is checked first (customers.rules, the rules the import applies too): one bad item
rejects the whole batch. Then a handful of statements whatever the batch size, never one per item:
1. INSERT ... ON CONFLICT DO NOTHING RETURNING: the rows it returns are exactly the ones this request
   created. "Created" comes from the write itself, so of twenty identical requests racing, one says
   created (a lookup before the write would let several see the order missing).
2. The other items exist now (ON CONFLICT waited for whoever was inserting them): lock them in key
   order, compare, and update only the ones that really change.
3. Orders only: one INSERT of the order feed rows (customers.order_feed) for what was created or
   changed, in the same transaction.
Both steps go in key order, so two requests writing the same rows wait for each other rather than
deadlock."""

import datetime as dt
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import DomainError, ItemErrors
from customers.models import ActivityEvent, Customer, Order
from customers.order_feed import order_changes_record, order_feed_writer_lock
from customers.rules import event_item_errors, order_item_errors
from customers.services.customers import customers_create_missing

BULK_MAX_ITEMS = 1000

EVENT_UPDATE_FIELDS = ["properties"]


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    objects: list = field(default_factory=list)


@dataclass
class _CustomerRefs:
    """Which customer each item refers to: an existing id, or an external id not known yet."""

    ids: list[int | None]
    new_external_ids: set[str]
    pending: dict[int, str]  # item position -> external id of a customer still to create

    def key(self, position: int) -> Hashable:
        customer_id = self.ids[position]
        return ("id", customer_id) if customer_id is not None else ("new", self.pending[position])


def _customer_refs(items: Sequence[dict], errors: dict[int, dict]) -> _CustomerRefs:
    """Resolve `customer` (id) or `customer_external_id` of every item with two queries.

    An unknown id is an error; an unknown external id names a customer to create (the CSV rule)."""
    wanted_ids = {item["customer"] for item in items if item.get("customer") is not None}
    wanted_external = {item["customer_external_id"] for item in items if item.get("customer_external_id")}
    known_ids = set(Customer.objects.filter(pk__in=wanted_ids).values_list("pk", flat=True)) if wanted_ids else set()
    by_external = (
        dict(Customer.objects.filter(external_id__in=wanted_external).values_list("external_id", "pk"))
        if wanted_external
        else {}
    )
    ids: list[int | None] = []
    pending: dict[int, str] = {}
    for position, item in enumerate(items):
        customer_id = item.get("customer")
        if customer_id is not None:
            if customer_id not in known_ids:
                errors.setdefault(position, {})["customer"] = [_("There is no customer with this id.")]
            ids.append(customer_id)
            continue
        external_id = item["customer_external_id"]
        ids.append(by_external.get(external_id))
        if external_id not in by_external:
            pending[position] = external_id
    return _CustomerRefs(ids=ids, new_external_ids=set(pending.values()), pending=pending)


def _create_missing_customers(refs: _CustomerRefs) -> None:
    """Create the customers only known by external id, then fill in their ids (two statements)."""
    if not refs.new_external_ids:
        return
    created = customers_create_missing(external_ids=refs.new_external_ids)
    for position, external_id in refs.pending.items():
        refs.ids[position] = created[external_id]


def _insert_new(model, names: Sequence[str], rows: Sequence[Sequence], *, conflict: str, returning: str) -> list:
    """INSERT the rows (in the given order) with ON CONFLICT (conflict) DO NOTHING; the `returning`
    values of the rows it inserted, the ones that did not exist."""
    fields = [model._meta.get_field(name) for name in names]
    placeholder = "(" + ", ".join(["%s::jsonb" if f.get_internal_type() == "JSONField" and connection.vendor == "postgresql" else "%s" for f in fields]) + ")"
    params = [f.get_db_prep_save(value, connection) for row in rows for f, value in zip(fields, row, strict=True)]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({columns})"
        f" VALUES {', '.join([placeholder] * len(rows))} ON CONFLICT ({conflict}) DO NOTHING RETURNING {returning}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _reject_duplicates(keys: Sequence[Hashable], errors: dict[int, dict], *, field_name: str, message: str) -> None:
    first_seen: dict[Hashable, int] = {}
    for position, key in enumerate(keys):
        if key in first_seen:
            errors.setdefault(position, {})[field_name] = [message % {"position": first_seen[key]}]
        else:
            first_seen[key] = position


def _item_errors(items: Sequence[dict], errors: dict[int, dict], check) -> None:
    for position, item in enumerate(items):
        for name, messages in check(item).items():
            errors.setdefault(position, {}).setdefault(name, []).extend(messages)


def order_bulk_upsert(*, items: Sequence[dict], create_only: bool = False) -> UpsertResult:
    """Create or update orders by external id; every created or changed order goes into the order
    feed in the same transaction.

    Each item: external_id, customer (id) or customer_external_id, ordered_at, amount, currency,
    status. `create_only` (the staff form): an order that exists already is an error, not an update."""
    if len(items) > BULK_MAX_ITEMS:
        raise DomainError(_("At most %(max)d items per request.") % {"max": BULK_MAX_ITEMS})
    items = [dict(item) for item in items]
    errors: dict[int, dict] = {}
    refs = _customer_refs(items, errors)
    external_ids = [item["external_id"] for item in items]
    _reject_duplicates(
        external_ids,
        errors,
        field_name="external_id",
        message=_("This external id already appears in item %(position)d of this request."),
    )
    _item_errors(items, errors, order_item_errors)
    if errors:
        raise ItemErrors(errors)

    with transaction.atomic():
        with connection.cursor() as cursor:
            order_feed_writer_lock(cursor)  # first: this transaction writes the order feed
        _create_missing_customers(refs)
        now = timezone.now()
        wanted = {
            item["external_id"]: Order(
                external_id=item["external_id"],
                customer_id=refs.ids[position],
                ordered_at=item["ordered_at"],
                amount=item["amount"],
                currency=item["currency"],
                status=item["status"],
                created_at=now,
                updated_at=now,
            )
            for position, item in enumerate(items)
        }
        in_key_order = [wanted[key] for key in sorted(wanted)]
        names = ["external_id", "customer", "ordered_at", "amount", "currency", "status", "created_at", "updated_at"]
        inserted = _insert_new(
            Order,
            names,
            [[getattr(order, "customer_id" if name == "customer" else name) for name in names] for order in in_key_order],
            conflict="external_id",
            returning="id, external_id",
        )
        created_ids = {external_id: pk for pk, external_id in inserted}
        if create_only and len(created_ids) < len(wanted):
            raise ItemErrors(
                {
                    position: {"external_id": [_("An order with this external id already exists.")]}
                    for position, key in enumerate(external_ids)
                    if key not in created_ids
                }
            )
        changes = [(None, wanted[key]) for key in sorted(created_ids)]
        for key, pk in created_ids.items():
            wanted[key].pk = pk
        changes += _orders_update([order for order in in_key_order if order.external_id not in created_ids], now=now)
        order_changes_record(changes=changes, changed_at=now)
    saved = Order.objects.filter(external_id__in=external_ids).select_related("customer").in_bulk(
        external_ids, field_name="external_id"
    )
    return UpsertResult(
        created=len(created_ids),
        updated=len(external_ids) - len(created_ids),
        objects=[saved[external_id] for external_id in external_ids],
    )


def _orders_update(orders: list[Order], *, now) -> list[tuple[Order, Order]]:
    """Update the existing orders that differ from `orders` (key order); (old, new) of each changed one.

    Locked first, in key order, so the old values are the ones replaced and two writers queue."""
    if not orders:
        return []
    fields = ["customer_id", "ordered_at", "amount", "currency", "status"]
    current = {
        old.external_id: old
        for old in Order.objects.select_for_update()
        .filter(external_id__in=[order.external_id for order in orders])
        .order_by("external_id")
        .only("id", "external_id", *fields)
    }
    changes = []
    for order in orders:
        old = current[order.external_id]
        order.pk = old.pk
        if any(getattr(old, name) != getattr(order, name) for name in fields):
            changes.append((old, order))
    if changes:
        Order.objects.bulk_update(
            [order for _old, order in changes],
            ["customer", "ordered_at", "amount", "currency", "status", "updated_at"],
        )
    return changes


def _event_key(customer_id: int, name: str, occurred_at: dt.datetime) -> tuple:
    # Aware datetimes compare equal across offsets, but normalise so the key also prints the same.
    return customer_id, name, occurred_at.astimezone(dt.UTC)


def event_bulk_upsert(*, items: Sequence[dict]) -> UpsertResult:
    """Record activity events; an event is identified by (customer, name, occurred_at), so sending
    it again updates its properties instead of storing it twice.

    Each item: customer (id) or customer_external_id, name, occurred_at, properties (a JSON object)."""
    if len(items) > BULK_MAX_ITEMS:
        raise DomainError(_("At most %(max)d items per request.") % {"max": BULK_MAX_ITEMS})
    items = [dict(item) for item in items]
    errors: dict[int, dict] = {}
    refs = _customer_refs(items, errors)
    _item_errors(items, errors, event_item_errors)
    if errors:
        raise ItemErrors(errors)
    _reject_duplicates(
        [(refs.key(p), item["name"], item["occurred_at"].astimezone(dt.UTC)) for p, item in enumerate(items)],
        errors,
        field_name="occurred_at",
        message=_("The same event (customer, name, time) already appears in item %(position)d of this request."),
    )
    if errors:
        raise ItemErrors(errors)

    with transaction.atomic():
        _create_missing_customers(refs)
        keys = [_event_key(refs.ids[p], item["name"], item["occurred_at"]) for p, item in enumerate(items)]
        # In key order, as for orders: overlapping requests insert and lock the events in the same order.
        in_key_order = sorted(zip(keys, items, strict=True), key=lambda pair: pair[0])
        now = timezone.now()
        inserted = _insert_new(
            ActivityEvent,
            ["customer", "name", "occurred_at", "properties", "created_at"],
            [[*k, item.get("properties", {}), now] for k, item in in_key_order],
            conflict="customer_id, name, occurred_at",
            returning="id",
        )
        created_ids = {pk for (pk,) in inserted}
        if len(created_ids) < len(keys):
            # The rest existed (or were just committed by another request): only their properties
            # change. (The upsert rewrites this request's new events too, with the same values.)
            ActivityEvent.objects.bulk_create(
                [
                    ActivityEvent(customer_id=k[0], name=k[1], occurred_at=k[2], properties=item.get("properties", {}))
                    for k, item in in_key_order
                ],
                update_conflicts=True,
                unique_fields=["customer", "name", "occurred_at"],
                update_fields=EVENT_UPDATE_FIELDS,
            )
    candidates = ActivityEvent.objects.filter(
        customer_id__in={k[0] for k in keys}, name__in={k[1] for k in keys}, occurred_at__in={k[2] for k in keys}
    )
    # A superset of the batch's events (every customer x name x time combination), narrowed here.
    saved = {_event_key(e.customer_id, e.name, e.occurred_at): e for e in candidates.select_related("customer")}
    return UpsertResult(
        created=len(created_ids),
        updated=len(keys) - len(created_ids),
        objects=[saved[k] for k in keys],
    )


def order_save(*, order: Order) -> Order:
    """Save one order edited as a whole (the admin site), adding its change to the order feed when
    anything changed. The old row is locked first, so the feed's old values are the ones replaced."""
    fields = ["customer_id", "ordered_at", "amount", "currency", "status"]
    with transaction.atomic():
        with connection.cursor() as cursor:
            order_feed_writer_lock(cursor)
        old = Order.objects.select_for_update().filter(pk=order.pk).first() if order.pk else None
        changed = old is None or any(getattr(old, name) != getattr(order, name) for name in fields)
        order.save()
        if changed:
            order_changes_record(changes=[(old, order)], changed_at=order.updated_at)
    return order
