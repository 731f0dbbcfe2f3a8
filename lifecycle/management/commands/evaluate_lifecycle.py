"""python manage.py evaluate_lifecycle [--as-of YYYY-MM-DD]: every customer's stage, here, with a progress bar."""

import datetime as dt
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from tqdm import tqdm

from core.exceptions import DomainError
from lifecycle.services.stages import lifecycle_evaluate


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(_("--as-of must be a date, YYYY-MM-DD.")) from exc


class Command(BaseCommand):
    help = "Evaluate every customer's lifecycle stage (set-based) and log the transitions."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=_date, default=None, help="Count orders and events up to the end of this day (default: now).")

    def handle(self, *args, as_of=None, **options):
        with tqdm(total=0, unit=" customers", file=sys.stderr, disable=options.get("verbosity", 1) == 0) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            try:
                run = lifecycle_evaluate(as_of=as_of, progress=progress)
            except DomainError as exc:
                raise CommandError(exc.message) from exc
        self.stdout.write(
            _("Lifecycle run #%(id)s: %(n)s customers, %(t)s transitions.") % {"id": run.pk, "n": run.n_customers, "t": run.n_transitions}
        )
        for rule, count in sorted(run.counts.items()):
            self.stdout.write(f"  {rule}: {count}")
