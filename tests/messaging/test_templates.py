"""Templates: placeholders checked at save time, the sandbox, escaping, languages, the admin site."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from messaging.models import MessageTemplate
from messaging.rendering import SAMPLE_CUSTOMER, render_parts
from tests.messaging.factories import MessageTemplateFactory

pytestmark = pytest.mark.django_db


def _template(**fields):
    base = {
        "key": "t",
        "name": "T",
        "purpose": "marketing",
        "variables": "offer",
        "subject_en": "Hi",
        "text_en": "Body",
    }
    return MessageTemplate(**{**base, **fields})


@pytest.mark.parametrize(
    ("field", "source", "unknown"),
    [
        ("text_en", "Hello {{ custmer.first_name }}", "custmer.first_name"),
        ("subject_zh_hans", "你好 {{ customer.password }}", "customer.password"),
        ("html_en", "{% if discount %}<b>{{ offer }}</b>{% endif %}", "discount"),
        ("text_zh_hans", "{% for x in items %}{{ x }}{% endfor %}", "items"),
        ("text_en", "{{ customer.email.upper }}", "customer.email.upper"),
        ("text_en", "{{ offer|default:fallback }}", "fallback"),
    ],
)
def test_an_unknown_placeholder_is_an_error_at_save_time(field, source, unknown):
    template = _template(**{field: source})
    with pytest.raises(ValidationError) as error:
        template.full_clean()
    assert field in error.value.message_dict and unknown in str(error.value.message_dict[field])


def test_known_placeholders_pass():
    _template(
        text_en="{{ customer.first_name }} {{ offer }} {{ site_url }} {{ unsubscribe_url }}"
        "{% for letter in offer %}{{ letter }}{{ forloop.counter }}{% endfor %}",
        html_en="{% if customer.first_name and offer %}{{ offer|upper }}{% endif %}",
    ).full_clean()


@pytest.mark.parametrize(
    "source",
    [
        "{% load static %}{% static 'x' %}",
        "{% include 'customers/detail.html' %}",
        "{% debug %}",
        "{% if %}x{% endif %}",
    ],
)
def test_tags_that_reach_outside_the_sandbox_are_rejected(source):
    template = _template(text_en=source)
    with pytest.raises(ValidationError):
        template.full_clean()


def test_html_autoescapes_and_chinese_falls_back_to_english_when_blank():
    template = MessageTemplateFactory(subject_zh_hans="", text_zh_hans="")
    subject, text, html = render_parts(
        template, language="zh-hans", customer={**SAMPLE_CUSTOMER, "full_name": "<script>"}, context={"offer": "a & b"}
    )
    assert subject == "Hello Ada"
    assert "<script>" in text and "&lt;script&gt;" in html and "a &amp; b" in html


def test_a_newline_in_a_placeholder_cannot_make_a_second_header():
    template = MessageTemplateFactory(subject_en="Hi {{ offer }}")
    subject, _text, _html = render_parts(
        template, language="en", customer=SAMPLE_CUSTOMER, context={"offer": "x\nBcc: a@b"}
    )
    assert "\n" not in subject


def test_admin_preview_and_test_send(client, mailoutbox):
    from tests.factories import UserFactory

    admin = UserFactory(is_staff=True, is_superuser=True, email="boss@example.com")
    client.force_login(admin)
    template = MessageTemplateFactory(key="news")
    page = client.get(reverse("admin:messaging_messagetemplate_change", args=[template.pk]))
    assert page.status_code == 200 and b"Hello Ada" in page.content and "你好 Ada".encode() in page.content
    response = client.post(
        reverse("admin:messaging_messagetemplate_changelist"),
        {"action": "send_test", "_selected_action": [template.pk]},
    )
    assert response.status_code == 302
    assert [m.to for m in mailoutbox] == [["boss@example.com"], ["boss@example.com"]]
    assert mailoutbox[0].subject == "[TEST] Hello Ada"


def test_admin_rejects_a_bad_placeholder(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    template = MessageTemplateFactory(key="news")
    data = {
        "name": template.name,
        "purpose": "marketing",
        "subject_en": "Hi {{ nope }}",
        "text_en": "x",
        "html_en": "",
        "subject_zh_hans": "",
        "text_zh_hans": "",
        "html_zh_hans": "",
    }
    response = client.post(reverse("admin:messaging_messagetemplate_change", args=[template.pk]), data)
    assert response.status_code == 200 and b"Unknown placeholder" in response.content
    template.refresh_from_db()
    assert template.subject_en == "Hello {{ customer.first_name }}"
