"""When a referral was approved (the group period it counts in), indexed for the group count; and the
programme's periodic tasks as django-celery-beat entries (editable under Periodic tasks): the order
feed every minute, ended holds and lapsed review deadlines every 15 minutes."""

from django.db import migrations, models

EVERY = {
    "Referrals: order feed": ("referrals.tasks.referrals_feed", 1),
    "Referrals: release ended holds": ("referrals.tasks.referrals_release_holds", 15),
    "Referrals: escalate overdue reviews": ("referrals.tasks.referrals_escalate_reviews", 15),
}


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, (task, minutes) in EVERY.items():
        interval, _ = IntervalSchedule.objects.get_or_create(every=minutes, period="minutes")
        PeriodicTask.objects.update_or_create(name=name, defaults={"task": task, "interval": interval, "enabled": True})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=list(EVERY)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0006_customer_language"),
        ("referrals", "0002_defaults"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="referral",
            name="approved_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="approved"),
        ),
        migrations.AddIndex(
            model_name="referral",
            index=models.Index(
                condition=models.Q(("state__in", ["approved", "rewarded"])), fields=["referrer", "approved_at"],
                name="referral_referrer_approved_idx",
            ),
        ),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
