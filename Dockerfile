# Lifecycle CRM: one image for the web app (gunicorn), the Celery worker and beat, and the one-off
# migrate step. See docker-compose.yml and README ("Docker").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MEDIA_ROOT=/app/media

WORKDIR /app

# Dependencies first, so a code change does not reinstall them. Every package ships a wheel for
# linux/amd64 and arm64 (psycopg[binary] brings its own libpq), so no compiler is needed.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Static files are collected (and compressed, with hashed names) into the image; whitenoise serves
# them. The build needs settings to load, hence a throwaway key that never reaches a container.
RUN DEBUG=false SECRET_KEY=build-only-collectstatic-key-not-used-at-run-time ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --no-input -v0

# Run as an unprivileged user; it owns only the media directory (uploaded import files).
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin crm \
    && mkdir -p /app/media \
    && chown crm:crm /app/media \
    && chmod +x docker/entrypoint.sh
USER crm

EXPOSE 8000
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--worker-class", "gthread", "--threads", "4", "--access-logfile", "-"]
