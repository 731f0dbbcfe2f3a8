"""Work on a thread's own database connection.

Django gives every thread its own connection, opened on first use and never closed by the request
cycle for threads we start ourselves: a worker thread that does not close it leaks a PostgreSQL
backend (and its temporary tables) until the process exits. Every thread pool of ours (the CLV
aggregate and scoring, the publish's index builds, the import's writers, the race tests) goes
through these two functions."""

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")


def close_thread_connections() -> None:
    """Close the calling thread's database connections (each thread has its own)."""
    connections.close_all()


def on_own_connection(function: Callable[P, R]) -> Callable[P, R]:
    """`function` for a worker thread: the thread's own database connection is closed after each call.

    Not for a thread whose connection carries state from one call to the next (a temporary table):
    such a thread calls close_thread_connections() once at its end."""

    @wraps(function)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            close_thread_connections()

    return wrapped
