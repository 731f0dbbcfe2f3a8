from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReferralsConfig(AppConfig):
    name = "referrals"
    verbose_name = _("Referrals")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from referrals import advocates, hooks, ui  # noqa: F401 -- hooks connects the import column and the portal login
        from referrals.services.rewards import register_templates

        ui.register()
        register_templates()
        advocates.register()
