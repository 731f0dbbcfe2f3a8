"""Message templates and customers for the outbox's tests."""

import factory
from django.utils import timezone

from messaging.models import MessageTemplate, Purpose
from tests.factories import CustomerFactory


class MessageTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessageTemplate
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"template-{n}")
    name = factory.LazyAttribute(lambda t: f"Template {t.key}")
    purpose = Purpose.MARKETING
    variables = "offer"
    subject_en = "Hello {{ customer.first_name }}"
    text_en = "Dear {{ customer.full_name }}, {{ offer }}. Unsubscribe: {{ unsubscribe_url }}"
    html_en = "<p>Dear {{ customer.full_name }}, {{ offer }}</p>"
    subject_zh_hans = "你好 {{ customer.first_name }}"
    text_zh_hans = "亲爱的 {{ customer.full_name }}，{{ offer }}"
    html_zh_hans = "<p>亲爱的 {{ customer.full_name }}，{{ offer }}</p>"


def opted_in_customer(**kwargs):
    return CustomerFactory(email_opt_in=True, email_opt_in_at=timezone.now(), **kwargs)
