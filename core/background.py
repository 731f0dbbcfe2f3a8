"""Running background work without a Celery broker, and ending every job whatever happens.

With a broker (REDIS_URL or CELERY_BROKER_URL) tasks go to Celery workers. Without one (the default
of `make run`), settings.TASK_RUNNER is "thread": a task enqueued by a request runs in a small pool
of threads of the server process, once the request's transaction has committed (tasks are enqueued
on commit), each on its own database connection, closed after. The request answers at once and the
job page shows live progress, as it does with workers. Tests use "eager": a task runs at once in
the caller, which keeps them deterministic.

BackgroundTask is the Celery app's task class (config/celery.py), so `task.delay()` and
`task.delay_on_commit()` pick the runner without the caller knowing which one it is."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

from celery.contrib.django.task import DjangoTask
from django.conf import settings
from django.db import connections
from django.utils import translation
from django.utils.translation import gettext as _

from .exceptions import DomainError
from .services import job_fail

logger = logging.getLogger(__name__)

_local = threading.local()
_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_pending: set[Future] = set()


def tasks_run_in_process() -> bool:
    """Whether enqueued tasks run in this process (a thread or at once), not in Celery workers."""
    return settings.TASK_RUNNER != "celery"


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            # Bounded: more jobs wait as "queued" instead of starving the pages of database and CPU.
            _executor = ThreadPoolExecutor(max_workers=settings.BACKGROUND_THREADS, thread_name_prefix="background-job")
        return _executor


def background_submit(function: Callable, /, *args, **kwargs) -> Future:
    """Run function(*args, **kwargs) in a background thread of this process, in the caller's language,
    on a database connection of its own that is closed when it returns. An exception is logged (a job
    records its own failure: job_guard)."""
    language = translation.get_language()

    def run() -> None:
        _local.inside = True
        try:
            with translation.override(language):
                function(*args, **kwargs)
        except Exception:
            logger.exception("background work %s failed", getattr(function, "__qualname__", function))
        finally:
            _local.inside = False
            connections.close_all()

    future = _pool().submit(run)
    with _lock:
        _pending.add(future)
    future.add_done_callback(_forget)
    return future


def _forget(future: Future) -> None:
    with _lock:
        _pending.discard(future)


def background_wait(timeout: float = 60.0) -> bool:
    """Wait until every background job submitted so far is done (for tests and management commands);
    True when they all are within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with _lock:
            pending = list(_pending)
        if not pending:
            return True
        try:
            pending[0].result(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return False
        except Exception:  # logged where it happened (background_submit); waiting is all this does
            continue


class BackgroundTask(DjangoTask):
    """A Celery task that honours settings.TASK_RUNNER. With "thread", apply_async hands the task to
    the background threads; a task enqueued from inside one (the CLV run's score ranges) runs right
    there, at once, as in eager mode. With "eager" or "celery", Celery decides as usual. A DjangoTask,
    as Celery's Django fixup would make it, for delay_on_commit()."""

    def apply_async(self, args=None, kwargs=None, task_id=None, producer=None, link=None, link_error=None, shadow=None, **options):
        if settings.TASK_RUNNER == "thread" and not getattr(_local, "inside", False):
            task_id = task_id or str(uuid.uuid4())
            background_submit(self.apply, args=args, kwargs=kwargs, task_id=task_id)
            return self.AsyncResult(task_id)
        return super().apply_async(
            args, kwargs, task_id=task_id, producer=producer, link=link, link_error=link_error, shadow=shadow, **options
        )


@contextmanager
def job_guard(*, job_id: int, unexpected: str = "") -> Iterator[None]:
    """Whatever happens inside, the Job ends as failed when the block does not finish: with the
    message of a DomainError, or for any other exception with `unexpected` (a translated text with an
    %(error)s placeholder) and the traceback in the log. The exception is not raised further: the
    job's row is where its outcome is told."""
    try:
        yield
    except DomainError as exc:
        _fail(job_id, str(exc.message))
    except Exception as exc:
        logger.exception("job %s failed", job_id)
        text = unexpected or _("The job stopped with an unexpected error: %(error)s")
        _fail(job_id, text % {"error": str(exc) or type(exc).__name__})


def _fail(job_id: int, error: str) -> None:
    # PostgreSQL text holds no NUL, and an error message may quote the value that caused it.
    job_fail(job_id=job_id, error=error.replace("\x00", "\u2400"))
