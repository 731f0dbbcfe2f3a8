"""Drop five indexes that another index already covers (or that nothing queries), so a bulk import
writes fewer index entries per row:

- order customer_id: order_customer_time_idx (customer, ordered_at) leads with it;
- order created_at: nothing reads orders by their creation time;
- customer channel_id: customer_channel_signup_idx (channel, signed_up_at) leads with it;
- customer owner_id: the same column as customer_owner_idx;
- customer created_at: customer_created_id_idx (created_at, id) leads with it.

The database side is plain DROP INDEX: a field's AlterField would also drop and re-add its foreign
key, which validates every row of the table while holding locks. The names are the ones Django gave
these indexes in 0001 (the same on every database)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

DROPPED = [
    # (index, table, column)
    ("customers_order_customer_id_032dd871", "customers_order", "customer_id"),
    ("customers_order_created_at_a8b669cd", "customers_order", "created_at"),
    ("customers_customer_channel_id_adad8e65", "customers_customer", "channel_id"),
    ("customers_customer_owner_id_fbb2798e", "customers_customer", "owner_id"),
    ("customers_customer_created_at_b0f7c38c", "customers_customer", "created_at"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0003_customer_list_keyset_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{index}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{index}" ON "{table}" ("{column}")',
                )
                for index, table, column in DROPPED
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="customer",
                    name="channel",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="customers",
                        to="customers.acquisitionchannel",
                        verbose_name="acquisition channel",
                    ),
                ),
                migrations.AlterField(
                    model_name="customer",
                    name="created_at",
                    field=models.DateTimeField(auto_now_add=True, verbose_name="created"),
                ),
                migrations.AlterField(
                    model_name="customer",
                    name="owner",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="owned_customers",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="account manager",
                    ),
                ),
                migrations.AlterField(
                    model_name="order",
                    name="created_at",
                    field=models.DateTimeField(auto_now_add=True, verbose_name="created"),
                ),
                migrations.AlterField(
                    model_name="order",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="orders",
                        to="customers.customer",
                        verbose_name="customer",
                    ),
                ),
            ],
        ),
    ]
