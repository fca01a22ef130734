from django.apps import AppConfig


class RecognitionConfig(AppConfig):
    name = "apps.recognition"
    label = "recognition"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from apps.recognition.selectors import configure_connection

        connection_created.connect(configure_connection)
