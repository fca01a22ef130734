#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    from project import embedded

    # The embedded PostgreSQL and Redis, unless DATABASE_URL / CELERY_BROKER_URL say
    # otherwise: started here, at the entry point, never by importing the settings.
    embedded.ensure_services()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
