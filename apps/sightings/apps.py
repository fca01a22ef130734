from django.apps import AppConfig


class SightingsConfig(AppConfig):
    name = "apps.sightings"
    label = "sightings"
