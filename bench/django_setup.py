"""Django for the benchmark scripts: settings from the environment, a given database, quiet logs.

DEBUG defaults to on, as for commands run by hand (production settings would demand a SECRET_KEY);
benchmarks never record queries, so it does not change their figures.

BENCH_STATISTICS=stale: the benchmark's own ANALYZE statements are skipped (a VACUUM ANALYZE runs
as a plain VACUUM), so a benchmark seeded on a just-migrated database measures what PostgreSQL's
planner sees there before anything analyzes the new rows (a first import, autovacuum off or not
yet round). The application's own ANALYZE statements still run. Used to compare a path's first run
on a fresh database with the same run after ANALYZE (see the README's figures on stale statistics)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = str(ROOT / "bench")
_ANALYZE = re.compile(r"^\s*(VACUUM\s+(?:\(\s*ANALYZE\s*\)|ANALYZE\b)|ANALYZE\b)", re.IGNORECASE)


def setup_django(database_url: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    if os.environ.get("BENCH_STATISTICS") == "stale":
        from django.db.backends.signals import connection_created

        connection_created.connect(_skip_bench_analyze, weak=False)


def _skip_bench_analyze(sender, connection, **kwargs) -> None:
    connection.execute_wrappers.append(_without_bench_analyze)


def _without_bench_analyze(execute, sql, params, many, context):
    """Drop the ANALYZE of statements a benchmark script issues itself (keep their VACUUM)."""
    if not (isinstance(sql, str) and _ANALYZE.match(sql) and _called_from_bench()):
        return execute(sql, params, many, context)
    for statement in sql.split(";"):
        analyze = _ANALYZE.match(statement)
        if analyze is None:
            if statement.strip():
                execute(statement, params, many, context)
        elif analyze.group(1).upper().startswith("VACUUM"):
            execute("VACUUM" + statement[analyze.end():], params, many, context)
    return None


def _called_from_bench() -> bool:
    """Whether the first frame outside Django and the database driver is a benchmark script's."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if "/django/" not in filename and "/psycopg/" not in filename and filename != __file__:
            return os.path.abspath(filename).startswith(BENCH_DIR)
        frame = frame.f_back
    return False
