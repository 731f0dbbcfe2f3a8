"""What the three import commands share: options, the progress bar and the report."""

import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from tqdm import tqdm

from customers.services.imports import DEFAULT_CHUNK_SIZE, IMPORT_KINDS, ImportFileError, import_csv

# Exit codes: 1 = some rows were rejected (the others were imported), 2 = the file was refused.
EXIT_REJECTED_ROWS = 1
EXIT_BAD_FILE = 2


class ImportCommand(BaseCommand):
    kind: str

    def create_parser(self, prog_name, subcommand, **kwargs):
        spec = IMPORT_KINDS[self.kind]
        self.help = _(
            "Import %(label)s from a UTF-8 CSV file with a header row. Required columns: %(required)s; "
            "optional: %(optional)s. Re-running a file creates no duplicates. Exits with 1 when rows "
            "were rejected (each printed to stderr with its line), 2 when the file cannot be read."
        ) % {"label": spec["label"], "required": ", ".join(spec["required"]), "optional": ", ".join(spec["optional"])}
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("file", help=_("Path of the CSV file."))
        parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help=_("Rows per transaction."))
        progress = parser.add_mutually_exclusive_group()
        progress.add_argument(
            "--progress", dest="progress", action="store_true", default=None, help=_("Always show the progress bar.")
        )
        progress.add_argument(
            "--no-progress", dest="progress", action="store_false", help=_("Never show the progress bar.")
        )

    def handle(self, *args, file, chunk_size, progress, **options):
        if chunk_size < 1:
            raise CommandError(_("--chunk-size must be at least 1."), returncode=EXIT_BAD_FILE)
        # Default: a bar on a terminal only (tqdm's disable=None), so logs and pipes stay clean.
        bar = tqdm(
            total=0, unit="B", unit_scale=True, unit_divisor=1024, desc=self.kind, file=sys.stderr,
            disable=None if progress is None else not progress,
        )

        def report(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            result = import_csv(kind=self.kind, file=file, progress=report, chunk_size=chunk_size)
        except FileNotFoundError as exc:
            raise CommandError(_("No such file: %(file)s") % {"file": exc.filename}, returncode=EXIT_BAD_FILE) from exc
        except ImportFileError as exc:
            raise CommandError(exc.message, returncode=EXIT_BAD_FILE) from exc
        finally:
            bar.close()

        for row in result.rejected:
            self.stderr.write(_("line %(line)d: %(reason)s") % {"line": row.line, "reason": row.reason})
        summary = result.summary()
        message = _(
            "%(rows)d rows: %(created)d created, %(updated)d updated, %(unchanged)d unchanged, %(rejected)d rejected."
        ) % summary
        if summary["customers_created"]:
            message += " " + _("%(n)d new customers created from customer_id.") % {"n": summary["customers_created"]}
        if summary["channels_created"]:
            message += " " + _("%(n)d new acquisition channels created.") % {"n": summary["channels_created"]}
        self.stdout.write(message)
        if result.rejected:
            raise CommandError(
                _("%(n)d row(s) rejected; the other rows were imported.") % {"n": len(result.rejected)},
                returncode=EXIT_REJECTED_ROWS,
            )
