import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
# Import the URLconf (every app's views, and what they import) now, as the worker starts, rather
# than in its first request: that request took 2-3 CPU-seconds, seconds of latency on a busy machine.
_url_patterns = get_resolver().url_patterns
