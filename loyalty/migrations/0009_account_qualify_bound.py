"""LoyaltyAccount.qualify_bound: an upper bound of the member's qualifying figure, so that the tier
upgrade after each earning batch computes the exact figure (a read of the member's window entries)
only for the members whose bound reaches their next threshold. The accounts that exist get NULL
(unknown: their next upgrade computes it); accounts created later start at 0 (the database default,
for the earning's INSERT ... SELECT)."""

from decimal import Decimal

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0008_account_fillfactor_50")]

    operations = [
        migrations.AddField(
            model_name="loyaltyaccount",
            name="qualify_bound",
            field=models.DecimalField(
                blank=True, decimal_places=2, editable=False, max_digits=20, null=True,
                verbose_name="qualifying figure bound",
            ),
        ),
        migrations.AlterField(
            model_name="loyaltyaccount",
            name="qualify_bound",
            field=models.DecimalField(
                blank=True, db_default=Decimal("0"), decimal_places=2, editable=False, max_digits=20, null=True,
                verbose_name="qualifying figure bound",
            ),
        ),
    ]
