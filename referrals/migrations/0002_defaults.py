"""The default group bonus steps (3 approved referrals -> 30% of the base, 5 -> 50%) and one row per
fraud signal with the defaults from our domain. Admins change them in the admin site."""

from decimal import Decimal

from django.db import migrations

# code: (action, weight, threshold, window_minutes)
FRAUD_RULES = {
    "self_referral": ("reject", 100, None, None),
    "same_email": ("reject", 100, None, None),
    "existing_customer": ("reject", 100, None, None),
    "already_referred": ("reject", 100, None, None),
    "circular": ("reject", 100, None, None),
    "similar_name": ("flag", 20, 85, None),  # similarity in percent
    "similar_email": ("flag", 20, 85, None),
    "same_device": ("flag", 40, None, None),
    "ip_burst": ("flag", 25, 5, 60),  # 5 sign-ups from one IP within an hour
    "same_phone": ("flag", 40, None, None),
    "same_payment": ("flag", 50, None, None),
    "same_address": ("flag", 30, None, None),
    "disposable_email": ("flag", 30, None, None),
    "velocity_hour": ("flag", 25, 5, 60),
    "velocity_day": ("flag", 25, 20, 1440),
    "fast_order": ("flag", 20, 5, None),  # minutes from sign-up to the first order
}


def add_defaults(apps, schema_editor):
    FraudRule = apps.get_model("referrals", "FraudRule")
    GroupRewardStep = apps.get_model("referrals", "GroupRewardStep")
    for code, (action, weight, threshold, window) in FRAUD_RULES.items():
        FraudRule.objects.get_or_create(
            code=code, defaults={"action": action, "weight": weight, "threshold": threshold, "window_minutes": window}
        )
    for referrals, percent in ((3, Decimal("30.00")), (5, Decimal("50.00"))):
        GroupRewardStep.objects.get_or_create(referrals=referrals, defaults={"percent": percent})


class Migration(migrations.Migration):
    dependencies = [("referrals", "0001_initial")]

    operations = [migrations.RunPython(add_defaults, migrations.RunPython.noop)]
