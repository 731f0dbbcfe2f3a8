"""CSV that is safe to open in a spreadsheet and streams row by row: every export of the CRM writes
through here."""

import csv
import datetime as dt

# A spreadsheet would run "=...", "+...", "-...", "@..." as a formula; a leading quote keeps it text.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


class _Echo:
    """A file-like object whose write() hands the line back, so csv.writer builds lines to stream."""

    def write(self, value):
        return value


def csv_row(cells) -> str:
    """One formula-safe CSV line, for a StreamingHttpResponse's iterator."""
    return _WRITER.writerow([csv_cell(cell) for cell in cells])


_WRITER = csv.writer(_Echo())
