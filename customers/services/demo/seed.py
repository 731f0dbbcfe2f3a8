"""The demo-data services: staff accounts, channels with spend, and the customer history."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher, get_hasher, make_password
from django.contrib.auth.models import Group
from django.db import connection, models, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from core.roles import Role
from customers.models import AcquisitionChannel, ActivityEvent, ChannelSpend, Customer, Order, Tag
from customers.order_feed import FEED_COLUMNS, order_feed_table, order_feed_writer_lock

from . import params as P
from .generate import chunks, customer_base
from .write import Lookup, indexes_rebuilt_after, references_suspended, write_chunk

REBUILD_INDEXES_FROM = 20_000


@dataclass(frozen=True)
class StaffLogin:
    username: str
    password: str
    role: Role
    created: bool


@dataclass
class DemoSeedResult:
    customers: int
    seconds: float
    counts: Counter = field(default_factory=Counter)
    staff: list[StaffLogin] = field(default_factory=list)


class _DemoPasswordHasher(PBKDF2PasswordHasher):
    """The demo passwords are public (printed, and in README), so a full-strength hash only costs
    seconds on every `make run`. Django re-hashes with the configured iterations at the first login."""

    iterations = 1_000


def _hash(password: str) -> str:
    if isinstance(get_hasher(), PBKDF2PasswordHasher):
        return make_password(password, hasher=_DemoPasswordHasher())
    return make_password(password)


def demo_staff_ensure() -> list[StaffLogin]:
    """Create the demo staff accounts that do not exist yet; existing accounts are left untouched."""
    User = get_user_model()
    groups = {g.name: g for g in Group.objects.filter(name__in=[s.role for s in P.STAFF])}
    existing = set(User.objects.filter(username__in=[s.username for s in P.STAFF]).values_list("username", flat=True))
    logins = []
    for spec in P.STAFF:
        created = spec.username not in existing
        if created:
            is_admin = spec.role == Role.ADMIN
            user = User.objects.create(
                username=spec.username,
                password=_hash(spec.password),
                email=f"{spec.username}@example.com",
                first_name=spec.first_name,
                last_name=spec.last_name,
                is_staff=is_admin,
                is_superuser=is_admin,
            )
            user.groups.add(groups[spec.role])
        logins.append(StaffLogin(spec.username, spec.password, spec.role, created))
    return logins


def _month_start(seconds: np.ndarray) -> np.ndarray:
    return seconds.astype("datetime64[s]").astype("datetime64[M]")


def demo_channels_ensure(*, base, rng: np.random.Generator) -> tuple[list[int], int]:
    """Channels by code (created or updated) and their monthly spend: CAC x sign-ups, with noise."""
    channel_ids = []
    for spec in P.CHANNELS:
        channel, _created = AcquisitionChannel.objects.update_or_create(
            code=spec.code, defaults={"name": spec.name, "status": spec.status, "is_active": spec.status != "paused"}
        )
        channel_ids.append(channel.pk)

    months = _month_start(base.signup)
    first, last = _month_start(np.array([base.start, base.now]))
    all_months = np.arange(first, last + 1)
    signups = np.zeros((len(P.CHANNELS), len(all_months)), dtype=np.int64)
    np.add.at(signups, (base.channel, (months - first).astype(np.int64)), 1)
    noise = 1 + rng.uniform(-P.SPEND_NOISE, P.SPEND_NOISE, signups.shape)
    cac = np.array([c.cac for c in P.CHANNELS])[:, None]
    cents = np.round(signups * cac * noise * 100).astype(np.int64)
    spend = [
        ChannelSpend(
            channel_id=channel_ids[c],
            month=all_months[m].astype("datetime64[D]").item(),
            amount=Decimal(int(cents[c, m])) / 100,
            currency=settings.DEFAULT_CURRENCY,
        )
        for c, m in zip(*np.nonzero(cents))
    ]
    ChannelSpend.objects.bulk_create(
        spend, update_conflicts=True, unique_fields=["channel", "month"], update_fields=["amount", "currency"]
    )
    return channel_ids, len(spend)


def _reserve_customer_ids(cursor, n: int) -> np.ndarray:
    """n consecutive fresh primary keys, so ids grow with sign-up time. The table lock keeps other
    inserts (and so other calls of the sequence) out until the load commits."""
    table = connection.ops.quote_name(Customer._meta.db_table)
    if connection.vendor == "postgresql":
        if not n:
            return np.zeros(0, dtype=np.int64)
        cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), nextval(pg_get_serial_sequence(%s, 'id')) + %s - 1)",
            [Customer._meta.db_table, Customer._meta.db_table, n],
        )
        last = cursor.fetchone()[0]
        return np.arange(last - n + 1, last + 1, dtype=np.int64)
    # SQLite: the transaction holds the database's write lock, so nobody else takes ids meanwhile.
    cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
    return np.arange(n, dtype=np.int64) + cursor.fetchone()[0] + 1


def demo_seed(
    *,
    customers: int,
    seed: int,
    months: int = 24,
    now: dt.datetime | None = None,
    on_progress: Callable[[int], None] | None = None,
    rebuild_indexes: bool | None = None,
) -> DemoSeedResult:
    """Generate and store the demo data, all in one transaction. The caller decides whether the
    database may receive it (see the seed_demo command).

    rebuild_indexes: on PostgreSQL, drop and recreate the indexes, unique constraints and foreign keys
    of the customer, order and event tables around the load; by default for loads of REBUILD_INDEXES_FROM customers
    and more, where it is several times faster than maintaining them row by row."""
    if customers < 0 or months < 1 or seed < 0:
        raise ValueError("customers >= 0, months >= 1 and seed >= 0 are required")
    started = time.perf_counter()
    now_s = int((now or timezone.now()).timestamp())
    base = customer_base(seed, customers, now_s, months)
    result = DemoSeedResult(customers=customers, seconds=0.0)
    with transaction.atomic():
        with connection.cursor() as cursor:
            order_feed_writer_lock(cursor)  # the demo's orders go into the feed like any others
        result.staff = demo_staff_ensure()
        users = dict(
            get_user_model().objects.filter(username__in=[s.username for s in P.STAFF]).values_list("username", "pk")
        )
        channel_ids, result.counts["channel_spend"] = demo_channels_ensure(
            base=base, rng=np.random.default_rng([seed, 1 << 30])
        )
        Tag.objects.bulk_create([Tag(name=n) for n in P.TAGS], ignore_conflicts=True)
        tags = dict(Tag.objects.filter(name__in=P.TAGS).values_list("name", "pk"))
        refs = {
            "channels": channel_ids,
            "tags": [tags[n] for n in P.TAGS],
            "owners": [users[u] for u in P.OWNER_USERNAMES],
            "manager": users["manager"],
            "currency": settings.DEFAULT_CURRENCY,
        }
        look = Lookup()
        if rebuild_indexes is None:
            rebuild_indexes = customers >= REBUILD_INDEXES_FROM
        with connection.cursor() as cursor:
            ids = _reserve_customer_ids(cursor, customers)
            with indexes_rebuilt_after(cursor, [Customer, Order, ActivityEvent], rebuild_indexes):
                for chunk in chunks(seed, base):
                    counts = write_chunk(cursor, base, chunk, ids, refs, look, result.counts["orders"])
                    result.counts.update(counts)
                    if on_progress:
                        on_progress(chunk.hi - chunk.lo)
            if len(ids):
                result.counts["order_changes"] = _demo_orders_to_feed(cursor, int(ids[0]), int(ids[-1]))
    result.seconds = time.perf_counter() - started
    return result


def _demo_orders_to_feed(cursor, first_id: int, last_id: int) -> int:
    """One feed row per demo order (as new, at its order time), so the apps that react to orders
    (loyalty's points, referrals) hear of the demo's orders as they hear of an import's."""
    orders = connection.ops.quote_name(Order._meta.db_table)
    cursor.execute(
        f"INSERT INTO {order_feed_table()} ({FEED_COLUMNS})"
        f" SELECT id, customer_id, NULL, status, NULL, amount, currency, ordered_at FROM {orders}"
        " WHERE customer_id BETWEEN %s AND %s ORDER BY id",
        [first_id, last_id],
    )
    return cursor.rowcount


def _purge(queryset) -> int:
    """Delete the rows of `queryset` and, first, what depends on them, set-based: one DELETE (or
    UPDATE for SET_NULL) per related table with the parent rows as a subquery. Django's own delete()
    would load every object to collect it, which takes minutes for a hundred thousand customers.
    Follows each relation's on_delete like the ORM does, so other apps' tables are handled too."""
    model = queryset.model
    for m2m in model._meta.local_many_to_many:
        through = m2m.remote_field.through
        through._base_manager.filter(**{f"{m2m.m2m_field_name()}__in": queryset})._raw_delete(queryset.db)
    for relation in model._meta.related_objects:
        if relation.many_to_many:
            through = relation.through
            name = relation.field.m2m_reverse_field_name()
            through._base_manager.filter(**{f"{name}__in": queryset})._raw_delete(queryset.db)
            continue
        related = relation.related_model._base_manager.filter(**{f"{relation.field.name}__in": queryset})
        if relation.related_model is model and relation.field.null:
            # A row pointing at its own table (a reversal at the entry it reverses): unlink, so the
            # recursion ends; the rows themselves go with the rest of `queryset`'s kind.
            related.update(**{relation.field.name: None})
        elif relation.on_delete in (models.CASCADE, models.PROTECT):
            # PROTECT guards history a person could delete by mistake (a loyalty ledger); the demo's
            # reset removes the demo customers' history whole, so it goes too.
            _purge(related)
        elif relation.on_delete is models.SET_NULL:
            related.update(**{relation.field.name: None})
        elif relation.on_delete is not models.DO_NOTHING and related.exists():
            raise ProtectedError(
                f"{relation.related_model._meta.label} rows still refer to the demo data", set(related[:10])
            )
    return queryset._raw_delete(queryset.db)


def demo_reset(*, suspend_references: bool | None = None) -> int:
    """Delete the demo customers with their orders, events, notes and tasks (and whatever other apps
    keep per customer or per order), and the demo channels' spend. Staff accounts, tags and channels
    stay. Returns the number of customers deleted.

    suspend_references: on PostgreSQL, drop the foreign keys pointing at customers and orders during
    the delete and re-add them after; by default from REBUILD_INDEXES_FROM demo customers on."""
    demo = Customer.objects.filter(external_id__startswith=P.CUSTOMER_PREFIX)
    with transaction.atomic():
        if suspend_references is None:
            suspend_references = demo.count() >= REBUILD_INDEXES_FROM
        with connection.cursor() as cursor, references_suspended(cursor, [Customer, Order], suspend_references):
            deleted = _purge(demo)
        ChannelSpend.objects.filter(channel__code__in=[c.code for c in P.CHANNELS]).delete()
    return deleted
