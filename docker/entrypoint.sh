#!/bin/sh
# Container entry point. `migrate` is the one-off release step: apply migrations and, when
# SEED_DEMO_CUSTOMERS is set above 0, load demo data into an empty database (never over real data).
# Anything else (gunicorn, celery, manage.py ...) runs as given.
set -eu

if [ "${1:-}" = "migrate" ]; then
    python manage.py migrate --no-input
    if [ "${SEED_DEMO_CUSTOMERS:-0}" -gt 0 ]; then
        python manage.py seed_demo --customers "$SEED_DEMO_CUSTOMERS" --seed "${SEED_DEMO_SEED:-42}" \
            --if-empty --no-progress
    fi
    exit 0
fi

exec "$@"
