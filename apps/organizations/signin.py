"""Sign-in: who must use a second factor, checking and enrolling one, recovery codes,
unlocking a locked-out member, and the audit trail of it all.

Failed attempts and lockouts are django-axes's (counted in PostgreSQL, so every web
process sees them); second factors are django-otp's devices. What is the product's own
is the glue: one code field that takes either an authenticator app's code or a recovery
code (django-otp's form would make the user pick a device first), the requirement per
organization, and the audit events of each organization the user belongs to."""

from axes.signals import user_locked_out
from axes.utils import reset as axes_reset
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import transaction
from django.dispatch import receiver
from django_otp import devices_for_user
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.core import audit
from apps.organizations.models import Membership

RECOVERY_CODES = 10
APP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"


def requires_second_factor(memberships) -> bool:
    """Whether one of the user's organizations requires a second factor. (A user who has
    one is asked for it at every sign-in anyway: SignInForm.)"""
    return any(m.organization.require_second_factor for m in memberships)


def has_second_factor(user) -> bool:
    return any(True for _ in devices_for_user(user, confirmed=True))


def verified_device(user, code: str):
    """The user's device that accepts this code, or None. Six digits are an authenticator
    app's code; anything else a recovery code (each works once). Each device throttles
    its own failures (django-otp), on top of the lockout."""
    code = "".join(code.split()).lower()
    if not code:
        return None
    kind = TOTPDevice if code.isdigit() and len(code) == 6 else StaticDevice
    for device in kind.objects.devices_for_user(user, confirmed=True):
        allowed, _ = device.verify_is_allowed()
        if allowed and device.verify_token(code):
            return device
    return None


def pending_app_device(user) -> TOTPDevice:
    """The authenticator app being set up: one unconfirmed device, kept until confirmed
    so that a reload shows the same QR code."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
    return device or TOTPDevice.objects.create(user=user, name=APP_DEVICE_NAME, confirmed=False)


@transaction.atomic
def confirm_app_device(request, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirms the app by its first code and gives the user new recovery codes (shown
    once); None when the code is wrong."""
    if not device.verify_token("".join(code.split())):
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=device.user, confirmed=False).delete()
    codes = _new_recovery_codes(device.user)
    _record_for_memberships(device.user, audit.Action.SECOND_FACTOR_ADDED, request, actor=device.user)
    return codes


@transaction.atomic
def renew_recovery_codes(request, user) -> list[str]:
    codes = _new_recovery_codes(user)
    _record_for_memberships(user, audit.Action.RECOVERY_CODES_RENEWED, request, actor=user)
    return codes


def _new_recovery_codes(user) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def reset_second_factor(request, membership: Membership) -> None:
    """A member who lost their phone: their devices are deleted; where the organization
    requires a second factor, they set up a new one at their next sign-in."""
    for device in devices_for_user(membership.user, confirmed=None):
        device.delete()
    _record(membership, audit.Action.SECOND_FACTOR_RESET, request, actor=request.user)


def unlock(request, membership: Membership) -> int:
    """Ends a member's lockout now (their username's failed attempts are forgotten)."""
    removed = axes_reset(username=membership.user.get_username())
    _record(membership, audit.Action.SIGN_IN_UNLOCKED, request, actor=request.user, attempts=removed)
    return removed


# --- The audit trail ------------------------------------------------------------------


def client_address(request) -> str:
    return getattr(request, "axes_ip_address", None) or request.META.get("REMOTE_ADDR", "")


def _record(membership, action, request, *, actor, **detail) -> None:
    audit.record(
        organization_id=membership.organization_id,
        action=action,
        user=actor,
        target=membership.user,
        detail={"address": client_address(request), **detail} if request is not None else detail,
    )


def _record_for_memberships(user, action, request, *, actor, **detail) -> None:
    for membership in Membership.objects.filter(user=user):
        _record(membership, action, request, actor=actor, **detail)


def _named_user(username):
    if not username:
        return None
    return get_user_model()._default_manager.filter(**{get_user_model().USERNAME_FIELD: username}).first()


@receiver(user_logged_in)
def _signed_in(sender, request, user, **kwargs):
    _record_for_memberships(user, audit.Action.SIGNED_IN, request, actor=user)


@receiver(user_login_failed)
def _sign_in_failed(sender, credentials, request=None, **kwargs):
    # Only for users who exist: an unknown username has no organization to tell (axes
    # keeps every attempt, in its own log).
    user = _named_user(credentials.get("username"))
    if user is not None and request is not None:
        locked = bool(getattr(request, "axes_locked_out", False))
        _record_for_memberships(user, audit.Action.SIGN_IN_FAILED, request, actor=None, locked_out=locked)


@receiver(user_locked_out)
def _locked_out(sender, request, username, ip_address, **kwargs):
    user = _named_user(username)
    if user is not None and getattr(request, "axes_failures_since_start", None) is not None:
        _record_for_memberships(
            user, audit.Action.SIGN_IN_LOCKED_OUT, request, actor=None, failures=request.axes_failures_since_start
        )
