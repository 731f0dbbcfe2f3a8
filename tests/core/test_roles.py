import pytest
from django.contrib.auth.models import Group, Permission

from core.roles import Role, role_at_least, user_role

pytestmark = pytest.mark.django_db


def test_migration_creates_the_three_role_groups():
    assert set(Group.objects.values_list("name", flat=True)) >= {"Admin", "Manager", "Agent"}


def test_admin_group_holds_every_permission():
    assert Group.objects.get(name="Admin").permissions.count() == Permission.objects.count()


def test_roles_are_ranked(agent, manager, admin_user, no_role_user):
    assert user_role(agent) == Role.AGENT
    assert role_at_least(manager, Role.AGENT) and role_at_least(manager, Role.MANAGER)
    assert not role_at_least(agent, Role.MANAGER)
    assert role_at_least(admin_user, Role.MANAGER)
    assert user_role(no_role_user) is None and not role_at_least(no_role_user, Role.AGENT)


def test_role_lookup_is_cached_per_user(agent, django_assert_num_queries):
    user_role(agent)
    with django_assert_num_queries(0):
        assert role_at_least(agent, Role.AGENT)
