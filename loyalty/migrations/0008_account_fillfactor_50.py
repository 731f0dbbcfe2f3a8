"""More room on each page of loyalty_loyaltyaccount (fillfactor 50, was 80 in 0006) so that a
balance update stays heap-only (HOT) even when one earn batch updates every account on a page: a
batch's new row versions cannot replace the old ones before it commits, so a page needs room for a
new version of each of its rows. At 80 a 25,000-order batch over consecutive customers found room
for about one row in four and wrote new entries into the table's three indexes for the others."""

from django.db import migrations


def fillfactor(value: int):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE loyalty_loyaltyaccount SET (fillfactor = {value})")

    return apply


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0007_ledger_order_earn_key")]

    operations = [migrations.RunPython(fillfactor(50), fillfactor(80))]
