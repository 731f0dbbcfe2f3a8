"""LoyaltyAccount.tier without its index: no query picks members by tier, and the index made every
tier change (a million members moving up through an import's earning) a non-HOT update with new
entries in every index of the table. Dropping an index is quick whatever the table's size."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0010_account_qualify_exact_since")]

    operations = [
        migrations.AlterField(
            model_name="loyaltyaccount",
            name="tier",
            field=models.ForeignKey(
                blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, to="loyalty.tier",
                verbose_name="tier",
            ),
        ),
    ]
