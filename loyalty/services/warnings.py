"""The e-mail warning that points expire soon, through the outbox (messaging), set-based.

Each day, every lot that expires within the programme's warning period and has not been warned
about puts one message per customer and expiry day in the outbox (messages_queue_bulk: one
INSERT ... SELECT), then is marked as warned (one UPDATE). The message key is per customer and
day, so a retried task queues nothing twice; the outbox applies consent and the suppression list.
It is a service message about the customer's own account (transactional), like a statement."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from customers.models import Customer
from loyalty.models import PointLot
from loyalty.services.program import program_get
from messaging.defaults import register_default_template
from messaging.services import messages_queue_bulk

EXPIRY_TEMPLATE = "loyalty_expiry_warning"


def register_templates() -> None:
    register_default_template(
        key=EXPIRY_TEMPLATE,
        name="Loyalty points expire soon",
        purpose="transactional",
        variables="expires_on",
        subject_en="Some of your points expire on {{ expires_on }}",
        text_en=(
            "Hello {{ customer.first_name|default:'there' }},\n\n"
            "Some of your loyalty points expire on {{ expires_on }}. Spend them before then: "
            "your account shows how many and what you can get for them.\n"
        ),
        subject_zh_hans="您的部分积分将于 {{ expires_on }} 到期",
        text_zh_hans=(
            "{{ customer.first_name|default:'您' }}好，\n\n"
            "您的部分会员积分将于 {{ expires_on }} 到期。请在此之前使用：您的账户中显示了到期积分的数量以及可兑换的奖励。\n"
        ),
    )


def _due_lots(*, now: dt.datetime, days: int):
    return PointLot.objects.filter(
        remaining__gt=0, warned_at__isnull=True, expires_at__gt=now, expires_at__lte=now + dt.timedelta(days=days)
    )


def expiry_warnings_queue(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Queue the warnings due now; counts of messages queued and lots marked."""
    now = now or timezone.now()
    program = program_get()
    if not program.expiry_warning_days:
        return {"queued": 0, "lots": 0}
    queued = 0
    with transaction.atomic():
        due = _due_lots(now=now, days=program.expiry_warning_days)
        days = sorted(set(due.annotate(day=TruncDate("expires_at")).values_list("day", flat=True)))
        for day in days:
            start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
            on_day = due.filter(Q(expires_at__gte=start) & Q(expires_at__lt=start + dt.timedelta(days=1)))
            customers = Customer.objects.filter(pk__in=on_day.values("account__customer_id"))
            queued += messages_queue_bulk(
                customers=customers, template=EXPIRY_TEMPLATE, key=f"loyalty-expiry:{day.isoformat()}:{{customer_id}}",
                purpose="transactional", context={"expires_on": day.isoformat()},
            )
        lots = due.update(warned_at=now)
    return {"queued": queued, "lots": lots}
