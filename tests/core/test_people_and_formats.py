"""What a new user saw wrong across pages (issue 9, defects 7 and 8): people named three ways,
overdue tasks that looked like future ones, a filtered list titled "All customers", Chinese numbers
without grouping, and each 403 logged twice."""

import datetime as dt
import logging
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.log import configure_logging

from core.people import display_name
from core.templatetags.crm import format_money
from tests.factories import ChannelFactory, CustomerFactory, TaskFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_one_rule_names_a_person_full_name_else_username():
    assert display_name(UserFactory(username="maya", first_name="Maya", last_name="Manager")) == "Maya Manager"
    assert display_name(UserFactory(username="agent1", first_name="", last_name="")) == "agent1"
    assert display_name(None) == ""
    rendered = Template("{% load crm %}[{{ u|person }}][{{ none|person }}]").render(Context({"u": UserFactory(username="x", first_name="Alex", last_name="Agent"), "none": None}))
    assert rendered == "[Alex Agent][—]"


def test_pages_and_filter_choices_name_people_by_the_one_rule(client, agent):
    maya = UserFactory(username="manager", first_name="Maya", last_name="Manager")
    maya.groups.add(*agent.groups.all())
    customer = CustomerFactory(owner=maya)
    TaskFactory(customer=customer, assignee=maya, title="Call back")
    client.force_login(agent)
    listing = client.get(reverse("customers:list")).content.decode()
    assert '<td class="hide-lg">Maya Manager</td>' in listing
    assert f'<option value="{maya.pk}">Maya Manager</option>' in listing  # the owner filter
    detail = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert "Maya Manager" in detail and "· manager<" not in detail


def test_overdue_tasks_say_so_in_words(client, agent):
    customer = CustomerFactory()
    TaskFactory(customer=customer, assignee=agent, title="Late one", due_at=timezone.now() - dt.timedelta(days=2))
    TaskFactory(customer=customer, assignee=agent, title="Future one", due_at=timezone.now() + dt.timedelta(days=2))
    client.force_login(agent)
    for url in (reverse("home"), reverse("customers:detail", args=[customer.pk])):
        html = client.get(url).content.decode()
        late, future = html.index("Late one"), html.index("Future one")
        assert html.count(">Overdue</span>") == 1
        overdue = html.index(">Overdue</span>")
        # The mark belongs to the late task's entry, not the future one's.
        assert abs(overdue - late) < abs(overdue - future)


def test_a_filtered_list_does_not_say_all_customers(client, agent):
    channel = ChannelFactory(name="Partners")
    CustomerFactory(channel=channel)
    client.force_login(agent)
    assert "All customers" in client.get(reverse("customers:list")).content.decode()
    filtered = client.get(reverse("customers:list"), {"channel": channel.pk}).content.decode()
    assert "All customers" not in filtered and "Customers matching the filters" in filtered


def test_chinese_groups_thousands():
    with translation.override("zh-hans"):
        assert Template("{% load humanize %}{{ n|intcomma }}").render(Context({"n": 2003})) == "2,003"
        assert format_money(Decimal("19083.46"), "USD").endswith("19,083.46")
    with translation.override("en"):
        assert format_money(Decimal("19083.46"), "USD").endswith("19,083.46")


def test_a_403_is_logged_once(client, no_role_user, capsys, settings):
    settings.DEBUG = True  # Django's own console handler only logs in debug
    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)  # handlers that write to the captured stderr
    try:
        client.force_login(no_role_user)
        assert client.get(reverse("customers:list")).status_code == 403
        err = capsys.readouterr().err
        assert err.count("Forbidden") == 1
    finally:
        logging.getLogger("django").handlers.clear()
        configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
