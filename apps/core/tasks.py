"""Thin tasks: each calls the service it is named after, imported inside the function."""

from celery import shared_task


@shared_task
def orphaned_files_sweep_task() -> int:
    from apps.core.files import orphaned_files_sweep

    return orphaned_files_sweep()
