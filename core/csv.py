"""CSV cells that are safe to open in a spreadsheet: every export of the CRM writes through here."""

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
