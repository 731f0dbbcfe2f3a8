"""Joins the order feed (h-orders) and the customer's language (h-outbox), both numbered 0005 on
their branches; made on the loyalty branch, which needs both. The coordinator may renumber instead."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0005_customer_language"),
        ("customers", "0005_order_feed"),
    ]

    operations = []
