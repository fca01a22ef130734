"""Sign-in behind a locked door, for real: the lockout counted in PostgreSQL and seen by
every web process (two gunicorn servers of two processes each), unlocked by an admin
or by time; a second factor required per organization, set up with a real TOTP code,
recovery codes that work once; sessions ended by a password change or by idleness."""

import re
import time
from datetime import timedelta

import pytest
import requests
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.core.models import AuditEvent
from apps.organizations.models import Membership
from apps.organizations.services import organization_create
from tests.test_production import production_server

PASSWORD = "correct horse battery"


@pytest.fixture
def members(db):
    organization = organization_create(slug="door", name="Door", recognition_model="Dlib", detector="dlib")
    people = {}
    for role in ("owner", "admin"):
        user = User.objects.create_user(f"door-{role}", password=PASSWORD, is_staff=True)
        Membership.objects.create(organization=organization, user=user, role=role)
        people[role] = user
    return organization, people["owner"], people["admin"]


def web_sign_in(session: requests.Session, url: str, username: str, password: str) -> requests.Response:
    form = session.get(f"{url}/accounts/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    return session.post(
        f"{url}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token, "next": "/admin/"},
        headers={"Referer": f"{url}/accounts/login/"},
        allow_redirects=False,
        timeout=30,
    )


def sign_in(client: Client, username: str, password: str = PASSWORD, code: str = "", **extra):
    return client.post(
        "/accounts/login/", {"username": username, "password": password, "code": code, "next": "/admin/"}, **extra
    )


def events(action: str, user) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, target_id=str(user.pk)).order_by("at"))


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_sixth_wrong_password_locks_out_on_every_web_process_until_an_admin_unlocks(members, tmp_path):
    organization, owner, admin = members
    with production_server(tmp_path) as first, production_server(tmp_path) as second:
        servers = [first, second]
        for attempt in range(5):
            answer = web_sign_in(requests.Session(), servers[attempt % 2], admin.username, "wrong password")
            assert answer.status_code == 200 and "correct username and password" in answer.text, (
                attempt,
                answer.status_code,
            )
        sixth = web_sign_in(requests.Session(), second, admin.username, "wrong password")
        assert sixth.status_code == 429 and "Sign-in locked" in sixth.text
        # The right password is refused too, on the other server.
        assert web_sign_in(requests.Session(), first, admin.username, PASSWORD).status_code == 429

        failed = events(AuditEvent.Action.SIGN_IN_FAILED, admin)
        assert len(failed) == 7 and all(e.organization_id == organization.pk for e in failed)
        assert [e.detail["locked_out"] for e in failed] == [False] * 5 + [True, True]
        assert failed[0].detail["address"] == "127.0.0.1"
        assert len(events(AuditEvent.Action.SIGN_IN_LOCKED_OUT, admin)) == 1

        owners_client = Client()
        owners_client.force_login(owner)
        membership = Membership.objects.get(user=admin)
        unlocked = owners_client.post(
            "/admin/organizations/membership/",
            {"action": "unlock_sign_in", "_selected_action": [membership.pk]},
            follow=True,
        )
        assert "unlocked" in unlocked.content.decode()
        (unlock,) = events(AuditEvent.Action.SIGN_IN_UNLOCKED, admin)
        assert unlock.user == owner

        signed_in = web_sign_in(requests.Session(), second, admin.username, PASSWORD)
        assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/admin/"
        assert len(events(AuditEvent.Action.SIGNED_IN, admin)) == 1


def test_a_lockout_ends_on_its_own_and_an_address_is_locked_out_across_usernames(members):
    _, owner, admin = members
    for _ in range(6):
        sign_in(Client(), admin.username, "wrong password")
    assert sign_in(Client(), admin.username).status_code == 429
    # The clock: the last failure 16 minutes ago, past SIGNIN_LOCKOUT_MINUTES.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert sign_in(Client(), admin.username).status_code == 302

    # Six failures from one address, each for another name, lock the address out.
    for attempt in range(6):
        sign_in(Client(), f"guess-{attempt}", "wrong password", REMOTE_ADDR="10.0.0.7")
    assert sign_in(Client(), owner.username, REMOTE_ADDR="10.0.0.7").status_code == 429
    assert sign_in(Client(), owner.username, REMOTE_ADDR="10.0.0.8").status_code == 302


def totp_code(device: TOTPDevice, steps_ahead: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def wait_out_throttling():
    """django-otp refuses any code for a second after a wrong one (doubling with each)."""
    time.sleep(1.1)


def test_an_organization_that_requires_a_second_factor_lets_no_member_in_without_one(members):
    organization, owner, admin = members
    organization.require_second_factor = True
    organization.save()

    client = Client()
    assert sign_in(client, admin.username).status_code == 302
    for page in ["/admin/", "/reports/", "/capture/", "/admin/gallery/person/"]:
        answer = client.get(page)
        assert answer.status_code == 302 and answer["Location"].startswith("/accounts/second-factor/"), page
    api = client.get("/api/v1/sightings/")
    assert api.status_code == 403 and api.json()["error"]["code"] == "second_factor_required"

    setup = client.get("/accounts/second-factor/?next=/admin/")
    assert setup.status_code == 200 and b"<svg" in setup.content
    device = TOTPDevice.objects.get(user=admin, confirmed=False)
    assert re.search(r'id="totp-key">([A-Z2-7]+)<', setup.content.decode())
    assert b"not right" in client.post("/accounts/second-factor/", {"code": "000000", "next": "/admin/"}).content
    wait_out_throttling()
    confirmed = client.post("/accounts/second-factor/", {"code": totp_code(device), "next": "/admin/"})
    recovery_codes = re.findall(r"<li><code>([a-z0-9]+)</code></li>", confirmed.content.decode())
    assert len(recovery_codes) == 10
    assert client.get("/admin/").status_code == 200
    assert client.get("/api/v1/sightings/").status_code == 200
    assert len(events(AuditEvent.Action.SECOND_FACTOR_ADDED, admin)) == 1

    # From now on the code is asked for at sign-in; a wrong one is a failed sign-in.
    fresh = Client()
    assert b"Enter the code" in sign_in(fresh, admin.username).content
    assert b"not right" in sign_in(fresh, admin.username, code="123456").content
    assert events(AuditEvent.Action.SIGN_IN_FAILED, admin)[-1].detail["locked_out"] is False
    wait_out_throttling()
    device.refresh_from_db()
    assert sign_in(fresh, admin.username, code=totp_code(device, steps_ahead=1)).status_code == 302
    assert fresh.get("/admin/").status_code == 200

    # A recovery code works once.
    assert sign_in(Client(), admin.username, code=recovery_codes[0]).status_code == 302
    assert b"not right" in sign_in(Client(), admin.username, code=recovery_codes[0]).content

    # A lost phone: the owner resets it; the member sets up a new one before anything else.
    owners_client = Client()
    owners_client.force_login(owner)
    assert owners_client.get("/admin/").status_code == 302  # the owner has none yet either
    membership = Membership.objects.get(user=admin)
    organization.require_second_factor = False
    organization.save()
    owners_client.post(
        "/admin/organizations/membership/", {"action": "reset_second_factor", "_selected_action": [membership.pk]}
    )
    assert not TOTPDevice.objects.filter(user=admin).exists()
    assert len(events(AuditEvent.Action.SECOND_FACTOR_RESET, admin)) == 1
    # Without the requirement and without a device, the password is enough again.
    after_reset = Client()
    assert sign_in(after_reset, admin.username).status_code == 302
    assert after_reset.get("/admin/").status_code == 200


def test_a_password_change_ends_the_other_sessions_and_weak_passwords_are_refused(members):
    _, owner, _ = members
    here, elsewhere = Client(), Client()
    for client in (here, elsewhere):
        assert sign_in(client, owner.username).status_code == 302
    weak = here.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": "12345678", "new_password2": "12345678"},
    )
    assert weak.status_code == 200 and b"too common" in weak.content
    changed = here.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": "a much longer pass", "new_password2": "a much longer pass"},
    )
    assert changed.status_code == 302
    assert here.get("/admin/").status_code == 200
    away = elsewhere.get("/reports/")
    assert away.status_code == 302 and away["Location"].startswith("/accounts/login/")


def test_a_session_ends_after_an_hour_without_a_request(members):
    _, owner, _ = members
    client = Client()
    sign_in(client, owner.username)
    session = Session.objects.get()
    assert timedelta(minutes=59) < session.expire_date - timezone.now() <= timedelta(minutes=60)
    # The clock: the last request an hour and a minute ago.
    Session.objects.update(expire_date=timezone.now() - timedelta(minutes=1))
    answer = client.get("/reports/")
    assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/")
