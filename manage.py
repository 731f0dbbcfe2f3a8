#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Commands run by hand on a developer machine get development settings; deployments set
    # DEBUG=false explicitly (docker-compose.yml does), and the web app (wsgi.py) and Celery
    # workers never pass through here, so they stay on the production default.
    os.environ.setdefault("DEBUG", "true")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
