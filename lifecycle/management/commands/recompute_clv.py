"""python manage.py recompute_clv [--as-of YYYY-MM-DD] [--sync]"""

import datetime as dt
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from tqdm import tqdm

from core.exceptions import DomainError
from lifecycle.models import ClvRun
from lifecycle.services.clv_runs import clv_run_create, clv_run_execute, clv_run_start


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(_("--as-of must be a date, YYYY-MM-DD.")) from exc


class Command(BaseCommand):
    help = "Recompute every customer's value (formula, historic, BG/NBD + Gamma-Gamma, RFM)."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=_date, default=None, help="Count paid orders up to the end of this day (default: today).")
        parser.add_argument("--sync", action="store_true", help="Compute here, with a progress bar, instead of enqueueing.")

    def handle(self, *args, as_of=None, sync=False, **options):
        try:
            start = clv_run_create if sync else clv_run_start
            run = start(as_of=as_of, trigger=ClvRun.Trigger.COMMAND)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        if not sync:
            self.stdout.write(_("Queued CLV run #%(id)s as of %(day)s.") % {"id": run.pk, "day": run.as_of})
            return
        # The bar opens at the first report that knows the total: opened before, tqdm printed a
        # stray "0 customers [00:00, ?]" line.
        bars: list[tqdm] = []

        def progress(done: int, total: int) -> None:
            if not total or options.get("verbosity", 1) == 0:
                return
            if not bars:
                bars.append(tqdm(total=total, unit=" customers", file=sys.stderr))
            bars[0].total = total
            bars[0].update(done - bars[0].n)

        try:
            run = clv_run_execute(run_id=run.pk, progress=progress)
        finally:
            for bar in bars:
                bar.close()
        self.stdout.write(
            _("CLV run #%(id)s as of %(day)s: %(status)s, %(n)s customers.")
            % {"id": run.pk, "day": run.as_of, "status": run.get_status_display(), "n": run.n_customers}
        )
        if run.message:
            self.stdout.write(run.message)
