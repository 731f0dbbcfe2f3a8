"""Bounds of the ids the API accepts: primary keys are BIGINTs, and SQLite raises OverflowError
(a 500) on larger integers instead of finding nothing."""

MAX_BIGINT = 2**63 - 1
# Up to 18 digits always fits a BIGINT; used in URL patterns, so a longer "id" is a plain 404.
ID_REGEX = "[0-9]{1,18}"
