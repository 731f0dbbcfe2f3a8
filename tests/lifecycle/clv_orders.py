"""Test data for the CLV job: customers with order histories drawn from a BG/NBD-like process."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import numpy as np
from django.conf import settings

from customers.models import AcquisitionChannel, Customer, Order

AS_OF = dt.date(2026, 6, 30)


def local_noon(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=zoneinfo.ZoneInfo(settings.TIME_ZONE))


def seed_histories(n_customers: int, *, seed: int = 7, as_of: dt.date = AS_OF, prefix: str = "S") -> list[Customer]:
    """Customers acquired over two years before `as_of`, each buying at a Poisson rate and dropping
    out after a purchase with a Beta-distributed probability; amounts gamma-distributed."""
    rng = np.random.default_rng(seed)
    channels = [
        AcquisitionChannel.objects.get_or_create(code=code, defaults={"name": code.title(), "status": status})[0]
        for code, status in (("search", "proven"), ("social", "testing"))
    ]
    first_days = rng.integers(1, 730, n_customers)
    customers = Customer.objects.bulk_create(
        [
            Customer(
                external_id=f"{prefix}{i}",
                email=f"{prefix.lower()}{i}@example.com",
                channel=channels[i % 2],
                signed_up_at=local_noon(as_of - dt.timedelta(days=int(first_days[i]))),
            )
            for i in range(n_customers)
        ]
    )
    orders = []
    rates = rng.gamma(0.8, 1 / 40, n_customers)  # purchases per day
    dropouts = rng.beta(1.0, 4.0, n_customers)
    spend_rates = rng.gamma(3.7, 1 / 15.4, n_customers)  # Gamma-Gamma's nu, as in FHL's CDNOW fit
    for i, customer in enumerate(customers):
        day = as_of - dt.timedelta(days=int(first_days[i]))
        while day <= as_of:
            orders.append(
                Order(
                    external_id=f"{prefix}{i}-{len(orders)}",
                    customer=customer,
                    ordered_at=local_noon(day),
                    amount=Decimal(str(round(float(rng.gamma(6.25, 1 / spend_rates[i])) + 0.01, 2))),
                )
            )
            if rng.random() < dropouts[i]:
                break
            day += dt.timedelta(days=1 + int(rng.exponential(1 / max(rates[i], 1e-4))))
    Order.objects.bulk_create(orders, batch_size=2000)
    return customers
