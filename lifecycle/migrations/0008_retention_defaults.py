"""The default retention interventions (one per churn-risk level) and the daily run as a
django-celery-beat entry, editable in the admin site."""

from django.db import migrations

TASK_NAME = "Daily retention interventions"


def create(apps, schema_editor):
    from lifecycle.models_retention import interventions_ensure

    interventions_ensure(model=apps.get_model("lifecycle", "RetentionIntervention"))
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="9", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME, defaults={"task": "lifecycle.tasks.retention_daily", "crontab": crontab, "enabled": True}
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("lifecycle", "0007_retention"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
