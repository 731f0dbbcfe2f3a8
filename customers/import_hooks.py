"""Columns of the customers CSV import that belong to another app (the referrals app's
`referral_code`), registered from that app's AppConfig.ready(): the customers app stages the column
with the rest of the row and calls the hook in the chunk's transaction; it never imports the app.

A hook gets the cursor and the staging table (a `line` column, `external_id`, and its column):
- `reject(cursor, stage)`: before the chunk's customers are written, the rows to refuse, as
  [(line, reason)], e.g. an unknown code (the service removes them from the chunk);
- `merged(cursor, stage, now)`: after they are written, the app's own set-based work for them;
  it returns the rows whose work lost a race to a concurrent writer, as [(line, reason)] (e.g. a
  referee another referrer got through the API meanwhile), and the import rolls the chunk's writes
  back to before its customers, refuses those rows and writes the rest again: a row is imported
  whole or rejected with its line and reason, never half."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CustomerImportHook:
    column: str
    max_length: int
    reject: Callable[..., list[tuple[int, str]]]
    merged: Callable[..., list[tuple[int, str]]]


# The staged column exists whether or not the app is installed (the file's header is checked against
# it); without a hook its values are ignored.
CUSTOMER_IMPORT_COLUMNS = {"referral_code": 32}
_HOOKS: dict[str, CustomerImportHook] = {}


def customer_import_hook_register(hook: CustomerImportHook) -> None:
    if hook.column not in CUSTOMER_IMPORT_COLUMNS:
        raise ValueError(f"the customers import stages no column {hook.column!r}")
    _HOOKS[hook.column] = hook


def customer_import_hooks() -> list[CustomerImportHook]:
    return list(_HOOKS.values())
