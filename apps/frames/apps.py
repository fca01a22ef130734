from django.apps import AppConfig


class FramesConfig(AppConfig):
    """The frame services: the top of the service layers, above gallery and sightings
    (README, "Layout")."""

    name = "apps.frames"
    label = "frames"

    def ready(self) -> None:
        from apps.frames.services.calibration import calibration_schedule
        from apps.gallery.signals import gallery_changed

        # The gallery sits below calibration, which reads it and the sightings'
        # corrections: it announces a change, and calibration listens.
        gallery_changed.connect(
            lambda sender, organization_id, **kwargs: calibration_schedule(organization_id=organization_id),
            weak=False,
            dispatch_uid="calibration_schedule",
        )
