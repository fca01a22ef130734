import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core import audit
from apps.core.errors import Conflict
from apps.organizations.models import ApiKey, Camera, Organization
from apps.recognition.pipeline import catalog

# What a key may be given; a new key has every scope but the kiosk's by default.
ALL_SCOPES = [scope.value for scope in ApiKey.Scope]
DEFAULT_SCOPES = [scope for scope in ALL_SCOPES if scope != ApiKey.Scope.KIOSK]


def _hash_secret(secret: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough; a slow one would only
    # make every API request slower.
    return hashlib.sha256(secret.encode()).hexdigest()


def recognition_defaults() -> tuple[str, str]:
    """The model and detector a new organization gets: the configured defaults where
    their weights are ready, else the first ready one in the catalog's order (so a
    machine that could not provision FaceNet still gets a working organization)."""
    home = settings.DEEPFACE_HOME

    def first_ready(preferred: str, names, ready) -> str:
        return next((name for name in (preferred, *names) if ready(name)), preferred)

    model = first_ready(settings.RECOGNITION_DEFAULT_MODEL, catalog.MODELS, lambda n: catalog.model_ready(n, home))
    detector = first_ready(
        settings.RECOGNITION_DEFAULT_DETECTOR, catalog.DETECTORS, lambda n: catalog.detector_ready(n, home)
    )
    return model, detector


def recognition_missing(organization: Organization) -> str:
    """'' when the organization's model and detector have their weights, else what is
    missing and the command that provisions it."""
    missing = catalog.missing_files(organization.recognition_model, organization.detector, settings.DEEPFACE_HOME)
    if not missing:
        return ""
    return (
        f"model {organization.recognition_model} with detector {organization.detector} has no weights "
        f"(missing: {', '.join(missing)}): frames and enrollments will answer 503 model_unavailable until "
        f"`python manage.py provision_models --model {organization.recognition_model}` has run"
    )


def organization_create(*, slug: str, name: str = "", recognition_model: str = "", detector: str = "") -> Organization:
    """Unnamed model or detector: recognition_defaults(). A named one is used even
    without weights (recognition_missing says what to run)."""
    default_model, default_detector = recognition_defaults()
    model = recognition_model or default_model
    detector = detector or default_detector
    catalog.required_files(model, detector)  # raises ValueError for unknown names
    return Organization.objects.create(slug=slug, name=name or slug, recognition_model=model, detector=detector)


@transaction.atomic
def api_key_create(
    *, organization: Organization, name: str = "", scopes: list[str] | None = None, camera=None, user=None
) -> tuple[ApiKey, str]:
    """Return the row and the full key; the key is shown once and only its hash is kept."""
    scopes = DEFAULT_SCOPES if scopes is None else scopes
    api_key_check(scopes=scopes, camera=camera)
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        organization=organization,
        name=name,
        prefix=prefix,
        hashed_key=_hash_secret(secret),
        scopes=list(scopes),
        camera=camera,
    )
    audit.record(organization_id=organization.pk, action=audit.Action.API_KEY_CREATED, user=user, target=api_key)
    return api_key, f"{prefix}.{secret}"


def api_key_check(*, scopes: list[str], camera) -> None:
    """Raise ValueError for scopes a key cannot have. A kiosk's key stands at a door,
    in reach of anyone: it checks in at its camera and can do nothing else."""
    unknown = set(scopes) - set(ALL_SCOPES)
    if unknown:
        raise ValueError(f"Unknown scopes: {', '.join(sorted(unknown))}")
    if ApiKey.Scope.KIOSK in scopes:
        if len(set(scopes)) > 1:
            raise ValueError("A kiosk key has the kiosk scope alone: it can only check people in.")
        if camera is None:
            raise ValueError("A kiosk key is tied to one camera: choose the kiosk's camera.")


def api_key_revoke(*, api_key: ApiKey, user=None) -> None:
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    audit.record(
        organization_id=api_key.organization_id, action=audit.Action.API_KEY_REVOKED, user=user, target=api_key
    )


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    prefix, _, secret = raw_key.strip().partition(".")
    if not prefix or not secret:
        return None
    api_key = ApiKey.objects.select_related("organization").filter(prefix=prefix, revoked_at__isnull=True).first()
    if api_key is None or not hmac.compare_digest(api_key.hashed_key, _hash_secret(secret)):
        return None
    now = timezone.now()
    # One write a minute at most: last_used is for people, not an audit trail.
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def camera_create(*, organization: Organization, name: str, location: str = "") -> Camera:
    if Camera.objects.filter(organization=organization, name=name).exists():
        raise Conflict(f"A camera named {name!r} already exists.", code="duplicate", field="name")
    return Camera.objects.create(organization=organization, name=name, location=location)


def camera_update(*, camera: Camera, **fields) -> Camera:
    name = fields.get("name", camera.name)
    if Camera.objects.filter(organization_id=camera.organization_id, name=name).exclude(pk=camera.pk).exists():
        raise Conflict(f"A camera named {name!r} already exists.", code="duplicate", field="name")
    for field, value in fields.items():
        setattr(camera, field, value)
    # Only what changed: a concurrent update of another field is not overwritten.
    camera.save(update_fields=list(fields))
    return camera


def camera_delete(*, camera: Camera, user=None, api_key=None) -> None:
    audit.record(
        organization_id=camera.organization_id, action=audit.Action.DELETED, user=user, api_key=api_key, target=camera
    )
    camera.delete()
