"""How a service hands work to a Celery task, the one rule for every app.

A task module imports its app's services (tasks are thin wrappers over them), so a service cannot
import its tasks module at the top without an import cycle. Rather than breaking the cycle a
different way in each app (a local import here, a callback passed in by the task there), a
service names the task by its dotted path and enqueue_on_commit() resolves it when called:

    enqueue_on_commit("lifecycle.tasks.clv_recompute", run.pk)

The task is sent once the surrounding transaction commits (at once outside one), so a worker
never starts on rows it cannot see yet, and a rolled-back service sends nothing. enqueue() sends at
once, for a service that has committed what the task reads (the CLV dispatch, after its fit)."""


from django.db import transaction
from django.utils.module_loading import import_string


def enqueue(task_path: str, *args, **kwargs) -> None:
    """Send the Celery task at `task_path` ("app.tasks.name") with these arguments now."""
    import_string(task_path).delay(*args, **kwargs)


def enqueue_on_commit(task_path: str, *args, **kwargs) -> None:
    """Send the Celery task at `task_path` ("app.tasks.name") with these arguments after commit."""
    task = import_string(task_path)  # resolved now: a wrong path fails in the service, not after commit
    # Looked up on the task at commit time, so tests that replace .delay see the call.
    transaction.on_commit(lambda: task.delay(*args, **kwargs))
