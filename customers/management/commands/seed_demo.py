import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from tqdm import tqdm

from core.demo import demo_data_loading
from core.registry import demo_steps
from customers.models import Customer
from customers.services.demo import demo_reset, demo_seed


class Command(BaseCommand):
    help = _(
        "Fill the database with reproducible demo data: staff accounts, acquisition channels with monthly "
        "spend, customers acquired over the last months, their orders (a buy-till-you-die process), activity "
        "events, notes and tasks, then each app's own demo step (e.g. loyalty's rules and the demo's points)."
        " The same --seed gives the same data."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=2000, help=_("Number of customers (default 2000)."))
        parser.add_argument("--seed", type=int, default=42, help=_("Random seed (default 42)."))
        parser.add_argument(
            "--months", type=int, default=24, help=_("Length of the history, ending now, in months (default 24).")
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--if-empty", action="store_true", help=_("Do nothing when the database already has customers.")
        )
        mode.add_argument(
            "--reset",
            action="store_true",
            help=_("Delete the previous demo customers (and their orders, events, notes, tasks) first."),
        )
        progress = parser.add_mutually_exclusive_group()
        progress.add_argument(
            "--progress", dest="progress", action="store_true", default=None, help=_("Always show the progress bar.")
        )
        progress.add_argument(
            "--no-progress", dest="progress", action="store_false", help=_("Never show the progress bar.")
        )

    def handle(self, *args, customers, seed, months, if_empty, reset, progress, **options):
        if customers < 0 or seed < 0 or months < 1:
            raise CommandError(_("--customers and --seed must not be negative and --months must be at least 1."))
        if reset:
            deleted = demo_reset()
            self.stdout.write(_("Deleted %(count)d demo customers.") % {"count": deleted})
        existing = Customer.objects.count()
        if existing and if_empty:
            self.stdout.write(
                _("The database already has %(count)d customers: no demo data loaded.") % {"count": existing}
            )
            return
        if existing and not reset:
            raise CommandError(
                _(
                    "The database already has %(count)d customers. Use --if-empty to skip loading, or --reset "
                    "to replace the demo data."
                )
                % {"count": existing}
            )

        bar = tqdm(
            total=customers, unit=_("customers"), desc=_("demo data"), file=sys.stderr,
            disable=None if progress is None else not progress,
        )
        # The demo's e-mails (e.g. its referral rewards') are recorded in the outbox, never sent.
        with demo_data_loading():
            try:
                result = demo_seed(customers=customers, seed=seed, months=months, on_progress=bar.update)
            finally:
                bar.close()

        counts = result.counts
        self.stdout.write(
            _(
                "Demo data (seed %(seed)d): %(customers)d customers, %(orders)d orders, %(events)d activity events, "
                "%(notes)d notes, %(tasks)d tasks, %(spend)d channel-months of spend in %(seconds).1f s."
            )
            % {
                "seed": seed,
                "customers": counts["customers"],
                "orders": counts["orders"],
                "events": counts["events"],
                "notes": counts["notes"],
                "tasks": counts["tasks"],
                "spend": counts["channel_spend"],
                "seconds": result.seconds,
            }
        )
        # Each app's demo step (core.registry.register_demo_step): its settings and the state it derives.
        with demo_data_loading():
            for step in demo_steps():
                self.stdout.write(step.run(seed=seed))
        for login in result.staff:
            if login.created:
                line = _("Demo staff login: %(username)s / %(password)s (%(role)s)")
            else:
                line = _("Demo staff login: %(username)s (%(role)s; the account existed, its password is unchanged)")
            self.stdout.write(
                self.style.SUCCESS(line % {"username": login.username, "password": login.password, "role": login.role.label})
            )
