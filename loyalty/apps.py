from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = _("Loyalty")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from lifecycle.health_hooks import register_points_awarder
        from loyalty import demo, receivers, ui
        from loyalty.services.bonus import retention_points_award

        ui.register()
        demo.register()
        receivers.connect()
        # Lifecycle's level-3 retention offer can be bonus points (lifecycle does not import loyalty).
        register_points_awarder(retention_points_award)
