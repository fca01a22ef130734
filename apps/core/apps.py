from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from apps.core import checks, files  # noqa: F401  (registers the pgvector check, file clean-up)
        from apps.core.tenancy import reapply_on_new_connection

        connection_created.connect(reapply_on_new_connection)
