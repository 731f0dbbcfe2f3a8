import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from customers.models import AcquisitionChannel, ActivityEvent, ChannelSpend, Customer, Note, Order, Tag, Task


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct-horse-battery")


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AcquisitionChannel
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"channel-{n}")
    name = factory.LazyAttribute(lambda c: c.code.replace("-", " ").title())


class ChannelSpendFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChannelSpend

    channel = factory.SubFactory(ChannelFactory)
    month = dt.date(2025, 1, 1)
    amount = Decimal("1000.00")


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"tag{n}")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"C{n:06d}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    country = "DE"
    signed_up_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=365))
    channel = factory.SubFactory(ChannelFactory)


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    external_id = factory.Sequence(lambda n: f"O{n:08d}")
    customer = factory.SubFactory(CustomerFactory)
    ordered_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=30))
    amount = Decimal("49.90")
    currency = "USD"
    status = Order.Status.PAID


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ActivityEvent

    customer = factory.SubFactory(CustomerFactory)
    name = "login"
    occurred_at = factory.Sequence(lambda n: timezone.now() - dt.timedelta(hours=n + 1))
    properties = factory.LazyFunction(dict)


class NoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Note

    customer = factory.SubFactory(CustomerFactory)
    author = factory.SubFactory(UserFactory)
    body = "Called about the renewal."


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    customer = factory.SubFactory(CustomerFactory)
    assignee = factory.SubFactory(UserFactory)
    title = "Call back"
