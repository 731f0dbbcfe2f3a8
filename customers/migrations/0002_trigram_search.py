"""Trigram indexes for name / e-mail search (ILIKE '%...%') on PostgreSQL; nothing on SQLite."""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS customer_email_trgm_idx ON customers_customer USING gin (lower(email) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS customer_fullname_trgm_idx ON customers_customer USING gin "
    "(lower(first_name || ' ' || last_name) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS customer_external_id_trgm_idx ON customers_customer USING gin "
    "(lower(external_id) gin_trgm_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS customer_email_trgm_idx",
    "DROP INDEX IF EXISTS customer_fullname_trgm_idx",
    "DROP INDEX IF EXISTS customer_external_id_trgm_idx",
]


def run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial")]
    operations = [migrations.RunPython(run(FORWARD), run(BACKWARD))]
