"""How a service hands work to a Celery task, the one rule for every app.

A task module imports its app's services (tasks are thin wrappers over them), so a service cannot
import its tasks module at the top without an import cycle. Rather than breaking the cycle a
different way in each app (a local import here, a callback passed in by the task there), a
service names the task by its dotted path and enqueue_on_commit() resolves it when called:

    enqueue_on_commit("lifecycle.tasks.clv_recompute", run.pk)

The task is sent once the surrounding transaction commits (at once outside one), so a worker
never starts on rows it cannot see yet, and a rolled-back service sends nothing. enqueue() sends at
once, for a service that has committed what the task reads (the CLV dispatch, after its fit).

When the broker cannot be reached, both raise QueueUnavailable (a DomainError: the page shows its
message) and log why. Inside a transaction the broker is checked before the commit, so the error
rolls back what the caller wrote: no job left "queued" that no worker will ever see."""

import logging
from contextlib import suppress

from django.db import transaction
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError

from .background import tasks_run_in_process
from .exceptions import DomainError

logger = logging.getLogger(__name__)


class QueueUnavailable(DomainError):
    """The task queue (the Celery broker) cannot be reached; nothing was queued."""

    def __init__(self, message: str = ""):
        super().__init__(message or _("The job could not be started now. Please try again in a minute."), code="unavailable")


def enqueue(task_path: str, *args, **kwargs) -> None:
    """Send the Celery task at `task_path` ("app.tasks.name") with these arguments now."""
    _send(import_string(task_path), args, kwargs)


def enqueue_on_commit(task_path: str, *args, **kwargs) -> None:
    """Send the Celery task at `task_path` ("app.tasks.name") with these arguments after commit."""
    task = import_string(task_path)  # resolved now: a wrong path fails in the service, not after commit
    if not transaction.get_connection().in_atomic_block:
        _send(task, args, kwargs)
        return
    _broker_check(task)
    transaction.on_commit(lambda: _send_after_commit(task, args, kwargs))


def _send_after_commit(task, args, kwargs) -> None:
    # The broker answered a moment ago; should it fail between that and the commit, the rows are
    # committed, so the error is logged rather than turned into a server error. Anything else (an
    # eager task's own error) goes on as before.
    with suppress(QueueUnavailable):
        _send(task, args, kwargs)


def _send(task, args, kwargs) -> None:
    try:
        task.delay(*args, **kwargs)  # looked up now, so tests that replace .delay see the call
    except OperationalError as exc:
        raise _unavailable(task, exc) from exc


def _broker_check(task) -> None:
    if tasks_run_in_process():
        return  # no broker: tasks run in this process
    try:
        with task.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0)
    except OperationalError as exc:
        raise _unavailable(task, exc) from exc


def _unavailable(task, exc: Exception) -> QueueUnavailable:
    logger.error("could not queue %s: the broker is unreachable (%s)", task.name, exc)
    return QueueUnavailable()
