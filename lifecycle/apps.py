from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LifecycleConfig(AppConfig):
    name = "lifecycle"
    verbose_name = _("Lifecycle and customer value")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from lifecycle import ui, ui_stages

        ui.register()
        ui_stages.register()
