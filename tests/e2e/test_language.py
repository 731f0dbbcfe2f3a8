"""Switching the interface language in the header."""

import pytest
from playwright.sync_api import expect

from tests.factories import CustomerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_switch_to_simplified_chinese_and_back(page, login, agent, screenshot):
    CustomerFactory(first_name="Ada", last_name="Lovelace")
    login(agent)
    page.goto("/customers/")
    expect(page.locator("h1")).to_have_text("Customers")

    page.get_by_role("button", name="简体中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator("h1")).to_have_text("客户")
    expect(page.locator("#main-nav")).to_contain_text("仪表盘")
    expect(page.locator("#customer-table")).to_contain_text("Ada Lovelace")
    assert page.url.endswith("/customers/"), "the switch returns to the same page"
    screenshot("12-customer-list-zh-hans")

    # The choice sticks for the next pages, the import page included.
    page.goto("/customers/import/")
    expect(page.locator("h1")).to_have_text("导入数据")
    screenshot("13-import-zh-hans")

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Import data")
