"""A language one test switches to never reaches the next: tests/conftest.py puts the default
language back around every test. The two tests run in file order; the second fails without it."""

import pytest
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy


@pytest.mark.django_db
def test_a_page_viewed_in_chinese_leaves_chinese_active_in_the_thread(client):
    html = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="zh-CN").text
    assert '<html lang="zh-hans">' in html
    # LocaleMiddleware does not switch back after the response: this is what would leak.
    assert translation.get_language() == "zh-hans"


def test_the_next_test_starts_in_the_default_language(settings):
    assert translation.get_language() == settings.LANGUAGE_CODE
    assert str(gettext_lazy("Log in")) == "Log in"
