from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = _("Feedback and surveys")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from feedback import ui
        from feedback.email_templates import ensure_survey_templates

        ui.register()
        post_migrate.connect(ensure_survey_templates, sender=self, dispatch_uid="feedback.ensure_survey_templates")
