"""Templates apps ship: created in the database by messaging's data migration (for staff to edit in
the admin site), and again on first use if the row is missing (a fresh test database, a flush).

An app adds its own with `register_default_template(key=..., name=..., purpose=..., variables=...,
subject_en=..., text_en=..., ...)` from its AppConfig.ready(); staff edits are never overwritten."""

from __future__ import annotations

DEFAULT_TEMPLATES: dict[str, dict] = {}


def register_default_template(**fields) -> None:
    DEFAULT_TEMPLATES[fields["key"]] = fields
