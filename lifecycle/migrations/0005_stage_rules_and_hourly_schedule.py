"""The default stage rules (one row, edited in the admin site) and the hourly lifecycle evaluation
as a django-celery-beat entry, so an admin can move or pause it under Periodic tasks."""

from django.db import migrations

TASK_NAME = "Hourly lifecycle evaluation"


def create(apps, schema_editor):
    apps.get_model("lifecycle", "StageRules").objects.get_or_create(pk=1)
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="15", hour="*", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME, defaults={"task": "lifecycle.tasks.lifecycle_evaluate_hourly", "crontab": crontab, "enabled": True}
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("lifecycle", "0004_stages"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
