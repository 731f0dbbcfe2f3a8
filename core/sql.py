"""SQL fragments shared by the set-based paths (loyalty's earning, referrals' reading of the order
feed)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

# Up to this many runs of consecutive ids are matched as ranges.
MAX_ID_RANGES = 32


def ids_clause(column: str, ids: Sequence[int]) -> tuple[str, list]:
    """A condition matching exactly `ids` (in any order) in `column`, and its parameters.

    An import writes its orders with consecutive ids, so a batch is usually one run or a few: those
    are matched as ranges, one index range scan each and a few parameters, where a list of 25,000 ids
    was sent and parsed with each statement and looked up id by id (about a fifth of an earning
    batch's time). Scattered ids are matched as a list."""
    if not ids:
        return "1 = 0", []
    runs = []
    for value in ids:
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
            if len(runs) > MAX_ID_RANGES:
                break
    if len(runs) <= MAX_ID_RANGES:
        return "(" + " OR ".join([f"{column} BETWEEN %s AND %s"] * len(runs)) + ")", [v for run in runs for v in run]
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(ids)]
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", list(ids)
