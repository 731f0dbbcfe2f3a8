"""The loyalty programme's periodic tasks as django-celery-beat entries, so an admin can move or
pause them: the order feed every minute, expiry, expiry warnings and tier downgrades daily, the balance check nightly."""

from django.conf import settings
from django.db import migrations

DAILY = {
    "Loyalty: expire points": ("loyalty.tasks.loyalty_expire", "5", "1"),
    "Loyalty: expiry warnings": ("loyalty.tasks.loyalty_expiry_warnings", "15", "9"),
    "Loyalty: tier downgrades": ("loyalty.tasks.loyalty_tier_downgrades", "20", "1"),
    "Loyalty: balance check": ("loyalty.tasks.loyalty_balance_check", "40", "3"),
}
FEED_TASK_NAME = "Loyalty: order feed"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, (task, minute, hour) in DAILY.items():
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone=settings.TIME_ZONE
        )
        PeriodicTask.objects.update_or_create(name=name, defaults={"task": task, "crontab": crontab, "enabled": True})
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.update_or_create(
        name=FEED_TASK_NAME,
        defaults={"task": "loyalty.tasks.loyalty_feed", "interval": every_minute, "enabled": True},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=[*DAILY, FEED_TASK_NAME]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
