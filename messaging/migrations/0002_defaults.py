"""Ship what the outbox needs from the start: the one-row pause switch, the portal's login-link
template (en + zh-hans; staff may edit it, later migrations never overwrite it), and beat's
every-minute delivery run (django-celery-beat, editable under Periodic tasks)."""

from django.db import migrations

DELIVERY_TASK_NAME = "Outbox delivery"


def create_defaults(apps, schema_editor):
    from messaging.defaults import DEFAULT_TEMPLATES
    from messaging.services.sending import message_template_ensure

    apps.get_model("messaging", "OutboxState").objects.get_or_create(pk=1)
    for fields in DEFAULT_TEMPLATES.values():
        message_template_ensure(**fields, model=apps.get_model("messaging", "MessageTemplate"))
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.update_or_create(
        name=DELIVERY_TASK_NAME,
        defaults={"task": "messaging.tasks.messages_deliver", "interval": every_minute, "enabled": True},
    )


def remove_defaults(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=DELIVERY_TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_defaults, remove_defaults)]
