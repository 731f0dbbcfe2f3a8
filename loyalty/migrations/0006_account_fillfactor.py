"""Room on each page of loyalty_loyaltyaccount (PostgreSQL's fillfactor 80) so that the balance
updates every ledger change makes are heap-only (HOT): the new row version stays on its page and
no index gets a new entry. At 100 (the default) a freshly written page is full, so each earn batch's
balance update wrote a new entry into both of the table's indexes for every account."""

from django.db import migrations


def fillfactor(value: int):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE loyalty_loyaltyaccount SET (fillfactor = {value})")

    return apply


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0005_ledger_plain_ids")]

    operations = [migrations.RunPython(fillfactor(80), fillfactor(100))]
