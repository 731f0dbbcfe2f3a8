from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def ensure_staff_roles(sender, using="default", **kwargs):
    """Keep the role groups present and give the Admin role every permission, models added later too.

    Permissions only exist after post_migrate creates them, hence a signal, not only a migration;
    and a database flush (transactional tests) emits post_migrate too, so the roles come back."""
    from django.contrib.auth.models import Group, Permission

    from .roles import Role

    for role in Role:
        Group.objects.using(using).get_or_create(name=role.value)
    Group.objects.using(using).get(name=Role.ADMIN).permissions.set(Permission.objects.using(using).all())


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = _("Core")

    def ready(self):
        post_migrate.connect(ensure_staff_roles, dispatch_uid="core.ensure_staff_roles")
        from .registry import register_nav_item
        from .roles import Role

        register_nav_item(
            key="home", label=_("Dashboard"), url_name="home", role=Role.AGENT, order=10, current_url_names=("home",)
        )
