"""What the gallery announces to the layers above it, which it must not import."""

from django.dispatch import Signal

# An organization's enrolled faces changed (enrolled, removed, imported, re-embedded):
# sent with organization_id; the frame services' calibration listens (apps/frames/apps.py).
gallery_changed = Signal()
