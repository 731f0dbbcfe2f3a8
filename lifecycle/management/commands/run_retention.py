"""python manage.py run_retention [--as-of YYYY-MM-DD]: give the retention interventions once."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from lifecycle.services.retention import retention_run


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(_("--as-of must be a date, YYYY-MM-DD.")) from exc


class Command(BaseCommand):
    help = "Give each churn-risk level's intervention to the customers due for it (e-mails through the outbox, tasks)."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=_date, default=None, help="The day of the run (default: today).")

    def handle(self, *args, as_of=None, **options):
        counts = retention_run(as_of=as_of)
        for level, count in counts.items():
            self.stdout.write(f"{level}: {count}")
