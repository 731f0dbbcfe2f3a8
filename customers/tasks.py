"""Background tasks of the customers app: thin wrappers that load ids and call a service."""

from celery import shared_task

from customers.services.imports import import_job_run


@shared_task(ignore_result=True)
def import_file(job_id: int) -> None:
    """Run the CSV import of a Job created by customers.services.imports.import_job_start.

    acks_late and reject_on_worker_lost come from settings; a re-delivery is harmless (see import_job_run)."""
    import_job_run(job_id=job_id)
