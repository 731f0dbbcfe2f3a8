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
    return ids_clauses(ids, column)[0]


def ids_clauses(ids: Sequence[int], *columns: str) -> list[tuple[str, list]]:
    """ids_clause of the same ids for each of `columns`, the runs found once."""
    if not ids:
        return [("1 = 0", []) for _column in columns]
    runs = []
    for value in ids:
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
            if len(runs) > MAX_ID_RANGES:
                break
    if len(runs) <= MAX_ID_RANGES:
        bounds = [value for run in runs for value in run]
        return [("(" + " OR ".join([f"{column} BETWEEN %s AND %s"] * len(runs)) + ")", bounds) for column in columns]
    if connection.vendor == "postgresql":
        return [(f"{column} = ANY(%s)", [list(ids)]) for column in columns]
    return [(f"{column} IN ({', '.join(['%s'] * len(ids))})", list(ids)) for column in columns]
