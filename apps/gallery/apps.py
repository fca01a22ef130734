from django.apps import AppConfig


class GalleryConfig(AppConfig):
    name = "apps.gallery"
    label = "gallery"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from apps.gallery.search import configure_connection

        connection_created.connect(configure_connection)
