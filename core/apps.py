from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def grant_admin_role_all_permissions(sender, using="default", **kwargs):
    """The Admin role may do everything in the admin site, including models added later.

    Permissions only exist after post_migrate creates them, hence a signal, not a migration."""
    from django.contrib.auth.models import Group, Permission

    admin = Group.objects.using(using).filter(name="Admin").first()
    if admin is not None:
        admin.permissions.set(Permission.objects.using(using).all())


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = _("Core")

    def ready(self):
        post_migrate.connect(grant_admin_role_all_permissions, dispatch_uid="core.grant_admin_role_all_permissions")
