"""Writes to customers, their notes and tasks. Views and API views call these, nothing else."""

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from customers.models import Customer, Note, Tag, Task
from customers.rules import RuleError, birth_date_clean, country_clean, customer_write_check

CUSTOMER_EDITABLE_FIELDS = (
    "external_id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "country",
    "signed_up_at",
    "birth_date",
    "channel",
    "owner",
    "email_opt_in",
    "language",
)


def _normalise(data: dict) -> dict:
    data = dict(data)
    if "email" in data:
        data["email"] = (data["email"] or "").strip().lower() or None
    if "external_id" in data:
        data["external_id"] = (data["external_id"] or "").strip() or None
    if "country" in data:
        # The one country rule (customers.rules): the API, forms and import all end here or there.
        data["country"] = country_clean(data["country"]) if (data["country"] or "").strip() else ""
    if data.get("birth_date") is not None:
        data["birth_date"] = _by_field("birth_date", birth_date_clean, data["birth_date"])
    return data


def _by_field(name: str, rule, value):
    try:
        return rule(value)
    except RuleError as exc:
        raise DomainError(str(exc), field=name) from None


def _apply_opt_in(customer: Customer, opt_in: bool | None) -> None:
    """Record when consent was given; withdrawing it clears the time."""
    if opt_in is None or opt_in == customer.email_opt_in:
        return
    customer.email_opt_in = opt_in
    customer.email_opt_in_at = timezone.now() if opt_in else None


def _save(customer: Customer) -> Customer:
    try:
        with transaction.atomic():
            customer.save()
    except IntegrityError as exc:
        text = str(exc).lower()
        if "email" in text:
            raise DomainError(_("A customer with this e-mail already exists."), field="email") from exc
        if "external_id" in text:
            raise DomainError(_("A customer with this external id already exists."), field="external_id") from exc
        raise
    return customer


def _normalised(fields: dict) -> dict:
    try:
        return _normalise(fields)
    except RuleError as exc:
        raise DomainError(str(exc), field="country") from None


def customer_create(*, tags=(), tag_names=None, **fields) -> Customer:
    """`tags` are Tag rows or ids; `tag_names` (the API's way) creates tags that do not exist yet."""
    fields = _normalised(fields)
    unknown = set(fields) - set(CUSTOMER_EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"unknown customer fields: {sorted(unknown)}")
    opt_in = fields.pop("email_opt_in", None)
    customer = Customer(**fields)
    _apply_opt_in(customer, opt_in)
    with transaction.atomic():
        _save(customer)
        if tag_names is not None:
            tags = tags_get_or_create(names=tag_names)
        if tags:
            customer.tags.set(tags)
    return customer


def customer_update(*, customer: Customer, tags=None, tag_names=None, **fields) -> Customer:
    """Only the given fields change; `tags` / `tag_names` (see customer_create) replace the tags."""
    fields = _normalised(fields)
    unknown = set(fields) - set(CUSTOMER_EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"unknown customer fields: {sorted(unknown)}")
    opt_in = fields.pop("email_opt_in", None)
    for name, value in fields.items():
        setattr(customer, name, value)
    _apply_opt_in(customer, opt_in)
    with transaction.atomic():
        _save(customer)
        if tag_names is not None:
            tags = tags_get_or_create(names=tag_names)
        if tags is not None:
            customer.tags.set(tags)
    return customer


def note_create(*, customer: Customer, author, body: str) -> Note:
    customer_write_check(user=author, customer=customer)
    body = (body or "").strip()
    if not body:
        raise DomainError(_("A note cannot be empty."), field="body")
    return Note.objects.create(customer=customer, author=author, body=body)


def task_create(*, customer: Customer, created_by, title: str, assignee=None, due_at=None) -> Task:
    customer_write_check(user=created_by, customer=customer)
    title = (title or "").strip()
    if not title:
        raise DomainError(_("A task needs a title."), field="title")
    return Task.objects.create(
        customer=customer, created_by=created_by, assignee=assignee or created_by, title=title, due_at=due_at
    )


def task_complete(*, task: Task, user) -> Task:
    customer_write_check(user=user, customer=task.customer)
    if task.done_at is None:
        Task.objects.filter(pk=task.pk, done_at__isnull=True).update(done_at=timezone.now())
        task.refresh_from_db(fields=["done_at"])
    return task


def tags_get_or_create(*, names) -> list[Tag]:
    """The tags with these names, creating the missing ones: two queries however many names."""
    wanted = sorted({name.strip() for name in names if name and name.strip()})
    if not wanted:
        return []
    Tag.objects.bulk_create([Tag(name=name) for name in wanted], ignore_conflicts=True)
    return list(Tag.objects.filter(name__in=wanted))


def customers_missing_insert_sql(*, source: str, now) -> tuple[str, list]:
    """The INSERT that creates, with just their external id, the customers named by `source` (SQL
    giving a column external_id) in external_id order, so writers needing the same new customers
    wait for each other at most, never in a cycle. Add ON CONFLICT (external_id) DO NOTHING unless
    they are known not to exist. The one definition of "a customer known only by its external id",
    for the API (customers_create_missing) and the import's staging (set-based, from its table)."""
    table = connection.ops.quote_name(Customer._meta.db_table)
    sql = (
        f"INSERT INTO {table} (external_id, first_name, last_name, phone, country, email_opt_in, created_at,"
        f" updated_at)"
        f" SELECT DISTINCT src.external_id, '', '', '', '', %s, %s, %s FROM ({source}) src"
        f" ORDER BY src.external_id"
    )
    return sql, [False, now, now]


def customers_create_missing(*, external_ids) -> dict[str, int]:
    """Create the customers these external ids name that do not exist yet (one INSERT); the id of
    every one of them, old or new (one SELECT). Call it inside the caller's transaction."""
    wanted = sorted(set(external_ids))
    if not wanted:
        return {}
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    source = "SELECT column1 AS external_id FROM (VALUES " + ", ".join(["(%s)"] * len(wanted)) + ") v"
    sql, params = customers_missing_insert_sql(source=source, now=now)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} ON CONFLICT (external_id) DO NOTHING", [*params, *wanted])
    return dict(Customer.objects.filter(external_id__in=wanted).values_list("external_id", "pk"))
