"""The outbox's delivery task: thin, safe to run twice at once (each run claims its own batches
with SKIP LOCKED). Kicked after every commit that queues mail, and by beat every minute."""

from celery import shared_task

from messaging.services.delivery import messages_deliver_due, next_due_in

# Within this many seconds, a run schedules the next one itself (retries with a short backoff);
# anything later is beat's job (every minute).
SELF_SCHEDULE_WITHIN = 60.0


@shared_task(ignore_result=True)
def messages_deliver() -> dict:
    totals = messages_deliver_due()
    if messages_deliver.app.conf.task_always_eager:
        return totals  # in-process (no broker): a countdown would not wait, beat covers retries
    wait = next_due_in()
    if wait is not None and wait < SELF_SCHEDULE_WITHIN:
        messages_deliver.apply_async(countdown=wait + 0.5)
    return totals
