"""Test settings: the production settings, only faster. Nothing here changes behaviour."""

import os

os.environ.setdefault("DEBUG", "true")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tasks run at once in the caller: deterministic (tests of the background thread set "thread").
TASK_RUNNER = "eager"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
LANGUAGE_CODE = "en"
# Each test run gets its own cache, so throttles and locks never leak between runs.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
