import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from apps.licensing import keys
from apps.licensing.models import License
from apps.licensing.services import AuthenticationFailed, credential_authenticate

pytestmark = pytest.mark.django_db

KEY_RE = re.compile(r"lic_[0-9A-Za-z]{38}")


def _add(admin_client: Client, **fields) -> object:
    data = {
        "name": "From admin",
        "owner": "ops",
        "notes": "",
        "active": "on",
        "expires_at_0": "",
        "expires_at_1": "",
        "max_concurrent_sessions": "2",
        "monthly_audio_minutes_quota": "",
        "allowed_origins": "https://web.example.com\nhttp://localhost:3000",
    }
    data.update(fields)
    return admin_client.post("/admin/licensing/license/add/", data)


def test_create_shows_the_key_once(admin_client: Client) -> None:
    response = _add(admin_client)
    assert response.status_code == 200
    html = response.content.decode()
    found = KEY_RE.findall(html)
    assert len(set(found)) == 1
    key = found[0]
    assert "no-store" in response["Cache-Control"]
    license = License.objects.get()
    assert credential_authenticate(key=key).license == license
    assert license.allowed_origins == ["https://web.example.com", "http://localhost:3000"]
    assert license.key_hash == keys.key_digest(key)
    # Never again: not on the change page, the list, nor in any cookie or stored message.
    for url in (f"/admin/licensing/license/{license.pk}/change/", "/admin/licensing/license/"):
        page = admin_client.get(url)
        assert page.status_code == 200
        assert key not in page.content.decode()
        assert keys.masked(license.key_prefix) in page.content.decode()
    assert all(key not in morsel.value for morsel in admin_client.cookies.values())


def test_create_rejects_bad_origins(admin_client: Client) -> None:
    response = _add(admin_client, allowed_origins="javascript:alert(1)")
    assert response.status_code == 200
    assert "is not an origin" in response.content.decode()
    assert not License.objects.exists()


def test_revoke_action(admin_client: Client, issued) -> None:
    response = admin_client.post(
        "/admin/licensing/license/",
        {"action": "revoke_selected", "_selected_action": [str(issued.license.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Revoked 1 license" in response.content.decode()
    with pytest.raises(AuthenticationFailed, match="revoked"):
        credential_authenticate(key=issued.key)


@pytest.mark.parametrize("status", ["active", "revoked", "disabled", "expired"])
def test_status_filter(admin_client: Client, issued, status) -> None:
    response = admin_client.get("/admin/licensing/license/", {"status": status})
    assert response.status_code == 200
    assert (issued.license.name in response.content.decode()) == (status == "active")


def test_admin_login_locks_out_brute_force(db, settings) -> None:
    User.objects.create_superuser("ops", "ops@example.com", "right-password-123")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/admin/login/", {"username": "ops", "password": "wrong"})
        assert response.status_code == 200  # the ordinary "wrong password" form
    # The failure that reaches the limit is itself answered with the lockout...
    assert client.post("/admin/login/", {"username": "ops", "password": "wrong"}).status_code == 429
    # ...and from then on even the right password is refused.
    locked = client.post("/admin/login/", {"username": "ops", "password": "right-password-123"})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_admin_login_works_with_the_right_password(db) -> None:
    User.objects.create_superuser("ops", "ops@example.com", "right-password-123")
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "ops", "password": "right-password-123"}
    )
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
