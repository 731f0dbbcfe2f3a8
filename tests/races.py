"""Run pieces of work at the same moment, each in a thread with its own database connection: the
tests that prove something is safe under concurrency race real threads (on PostgreSQL)."""

import threading

from celery import _state as celery_state

from core.connections import close_thread_connections


def race(*works, timeout: float = 60) -> tuple[list, list[BaseException]]:
    """Start every callable at once (a barrier) and wait for all; their results, in order (None for
    one that raised), and the exceptions raised."""
    start = threading.Barrier(len(works))
    results: list = [None] * len(works)
    errors: list[BaseException] = []

    def run(position, work):
        try:
            start.wait(timeout=10)
            results[position] = work()
        except BaseException as exc:  # handed to the test
            errors.append(exc)
        finally:
            close_thread_connections()

    # Celery's eager apply() sets a process-wide "joining a result would block" flag for the task's
    # run and puts back the value it found: tasks overlapping in threads can leave it set, and a
    # later test's result.get() then raised "Never call result.get() within a task!".
    join_will_block = celery_state.task_join_will_block()
    threads = [threading.Thread(target=run, args=(position, work)) for position, work in enumerate(works)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    celery_state._set_task_join_will_block(join_will_block)
    assert not any(thread.is_alive() for thread in threads), "a racing thread did not finish"
    return results, errors
