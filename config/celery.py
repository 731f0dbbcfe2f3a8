import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# The task class honours TASK_RUNNER: without a broker, tasks run in the web process's threads.
app = Celery("lifecycle_crm", task_cls="core.background:BackgroundTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
