"""Files go with their rows: deleting a row (directly or by cascade, a person's
erasure or an organization's deletion) deletes its stored files once the
transaction commits."""

from django.db import models, transaction
from django.db.models.signals import post_delete


def _delete_files(sender, instance, **kwargs) -> None:
    files = [
        getattr(instance, field.name)
        for field in sender._meta.fields
        if isinstance(field, models.FileField) and getattr(instance, field.name)
    ]
    for file in files:
        storage, name = file.storage, file.name
        transaction.on_commit(lambda storage=storage, name=name: storage.delete(name))


def _connect() -> None:
    from django.apps import apps

    for model in apps.get_models():
        if any(isinstance(field, models.FileField) for field in model._meta.fields):
            post_delete.connect(_delete_files, sender=model, dispatch_uid=f"delete-files-{model._meta.label}")


_connect()
