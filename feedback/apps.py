from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = _("Feedback and surveys")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from feedback import ui
        from feedback.email_templates import register_survey_templates

        ui.register()
        register_survey_templates()
