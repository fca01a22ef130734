from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    name = "apps.organizations"
    label = "organizations"

    def ready(self):
        # The sign-in audit trail's signal receivers.
        from apps.organizations import signin  # noqa: F401
