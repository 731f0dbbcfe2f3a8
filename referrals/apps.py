from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReferralsConfig(AppConfig):
    name = "referrals"
    verbose_name = _("Referrals")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from referrals import ui
        from referrals.services.rewards import register_templates

        ui.register()
        register_templates()
        from referrals import hooks  # noqa: F401 -- connects the import column and the portal login
