"""Signals of the customers app for loose listeners in other apps.

demo_seeded: sent by the seed_demo command after its data is stored (kwargs: seed, now). A feature
app adds its own demo rows (on top of the demo customers and orders) and returns a line that the
command prints.

demo_resetting: sent by demo_reset inside its transaction before the demo customers are deleted
(kwargs: customers, the queryset of demo customers), so an app whose rows protect them
(on_delete=PROTECT) deletes its own rows first."""

from django.dispatch import Signal

demo_seeded = Signal()
demo_resetting = Signal()
