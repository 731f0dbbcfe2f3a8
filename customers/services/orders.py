"""Set-based upserts of orders and activity events, as the API receives them (one or up to
BULK_MAX_ITEMS at a time).

Every item is checked before anything is written: one bad item rejects the whole batch. The writes
are a handful of statements whatever the batch size (INSERT ... ON CONFLICT DO UPDATE through
`bulk_create(update_conflicts=True)`), never one query per item."""

import datetime as dt
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import DomainError, ItemErrors
from customers.models import ActivityEvent, Customer, Order

BULK_MAX_ITEMS = 1000

ORDER_UPDATE_FIELDS = ["customer", "ordered_at", "amount", "currency", "status", "updated_at"]
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
    Customer.objects.bulk_create(
        [Customer(external_id=external_id) for external_id in sorted(refs.new_external_ids)], ignore_conflicts=True
    )
    created = dict(Customer.objects.filter(external_id__in=refs.new_external_ids).values_list("external_id", "pk"))
    for position, external_id in refs.pending.items():
        refs.ids[position] = created[external_id]


def _reject_duplicates(keys: Sequence[Hashable], errors: dict[int, dict], *, field_name: str, message: str) -> None:
    first_seen: dict[Hashable, int] = {}
    for position, key in enumerate(keys):
        if key in first_seen:
            errors.setdefault(position, {})[field_name] = [message % {"position": first_seen[key]}]
        else:
            first_seen[key] = position


def _require_aware(item: dict, name: str, position: int, errors: dict[int, dict]) -> None:
    if timezone.is_naive(item[name]):
        errors.setdefault(position, {})[name] = [_("The time needs a UTC offset.")]


def order_bulk_upsert(*, items: Sequence[dict]) -> UpsertResult:
    """Create or update orders by external id.

    Each item: external_id, customer (id) or customer_external_id, ordered_at, amount, currency, status."""
    if len(items) > BULK_MAX_ITEMS:
        raise DomainError(_("At most %(max)d items per request.") % {"max": BULK_MAX_ITEMS})
    errors: dict[int, dict] = {}
    refs = _customer_refs(items, errors)
    external_ids = [item["external_id"] for item in items]
    _reject_duplicates(
        external_ids,
        errors,
        field_name="external_id",
        message=_("This external id already appears in item %(position)d of this request."),
    )
    for position, item in enumerate(items):
        if item["amount"] < Decimal("0"):
            errors.setdefault(position, {})["amount"] = [_("The amount cannot be negative.")]
        _require_aware(item, "ordered_at", position, errors)
    if errors:
        raise ItemErrors(errors)

    with transaction.atomic():
        existing = set(Order.objects.filter(external_id__in=external_ids).values_list("external_id", flat=True))
        _create_missing_customers(refs)
        orders = [
            Order(
                external_id=item["external_id"],
                customer_id=refs.ids[position],
                ordered_at=item["ordered_at"],
                amount=item["amount"],
                currency=item["currency"],
                status=item["status"],
            )
            for position, item in enumerate(items)
        ]
        Order.objects.bulk_create(
            # In key order: two requests upserting the same orders then lock them in the same order
            # and one waits for the other, instead of each holding what the other needs (a deadlock).
            sorted(orders, key=lambda order: order.external_id),
            update_conflicts=True,
            unique_fields=["external_id"],
            update_fields=ORDER_UPDATE_FIELDS,
        )
    saved = Order.objects.filter(external_id__in=external_ids).select_related("customer").in_bulk(
        external_ids, field_name="external_id"
    )
    return UpsertResult(
        created=len(set(external_ids) - existing),
        updated=len(existing),
        objects=[saved[external_id] for external_id in external_ids],
    )


def _event_key(customer_id: int, name: str, occurred_at: dt.datetime) -> tuple:
    # Aware datetimes compare equal across offsets, but normalise so the key also prints the same.
    return customer_id, name, occurred_at.astimezone(dt.UTC)


def event_bulk_upsert(*, items: Sequence[dict]) -> UpsertResult:
    """Record activity events; an event is identified by (customer, name, occurred_at), so sending
    it again updates its properties instead of storing it twice.

    Each item: customer (id) or customer_external_id, name, occurred_at, properties (a JSON object)."""
    if len(items) > BULK_MAX_ITEMS:
        raise DomainError(_("At most %(max)d items per request.") % {"max": BULK_MAX_ITEMS})
    errors: dict[int, dict] = {}
    refs = _customer_refs(items, errors)
    for position, item in enumerate(items):
        if not isinstance(item.get("properties", {}), dict):
            errors.setdefault(position, {})["properties"] = [_("Properties must be a JSON object.")]
        _require_aware(item, "occurred_at", position, errors)
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
        # A superset of the batch's events (every customer x name x time combination), narrowed in Python.
        candidates = ActivityEvent.objects.filter(
            customer_id__in={k[0] for k in keys}, name__in={k[1] for k in keys}, occurred_at__in={k[2] for k in keys}
        )
        existing = {
            _event_key(e.customer_id, e.name, e.occurred_at)
            for e in candidates.only("customer_id", "name", "occurred_at")
        }
        ActivityEvent.objects.bulk_create(
            # In key order, as for orders: overlapping requests lock the events in the same order.
            [
                ActivityEvent(customer_id=k[0], name=k[1], occurred_at=k[2], properties=item.get("properties", {}))
                for k, item in sorted(zip(keys, items, strict=True), key=lambda pair: pair[0])
            ],
            update_conflicts=True,
            unique_fields=["customer", "name", "occurred_at"],
            update_fields=EVENT_UPDATE_FIELDS,
        )
    saved = {_event_key(e.customer_id, e.name, e.occurred_at): e for e in candidates.select_related("customer")}
    wanted = set(keys)
    return UpsertResult(
        created=len(wanted - existing),
        updated=len(wanted & existing),
        objects=[saved[k] for k in keys],
    )
