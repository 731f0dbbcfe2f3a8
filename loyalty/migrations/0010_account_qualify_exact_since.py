"""LoyaltyAccount.qualify_exact_since: while it is within the qualifying window, the member's
qualify_bound is their exact figure, so the tier upgrade moves them without reading their entries.
The accounts that exist get NULL (not known to be exact: their next upgrade computes the figure and
sets it); accounts created later start exact (0 earned, the database default now())."""

import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0009_account_qualify_bound")]

    operations = [
        migrations.AddField(
            model_name="loyaltyaccount",
            name="qualify_exact_since",
            field=models.DateTimeField(
                blank=True, editable=False, null=True, verbose_name="qualifying figure exact since"
            ),
        ),
        migrations.AlterField(
            model_name="loyaltyaccount",
            name="qualify_exact_since",
            field=models.DateTimeField(
                blank=True, db_default=django.db.models.functions.datetime.Now(), editable=False, null=True,
                verbose_name="qualifying figure exact since",
            ),
        ),
    ]
