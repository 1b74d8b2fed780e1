import hmac
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from apps.licensing import gate, keys
from apps.licensing.models import ClientSecret, License
from apps.licensing.services import (
    AuthenticationFailed,
    client_secret_create,
    client_secret_purge_expired,
    credential_authenticate,
    license_create,
    license_revoke,
)

pytestmark = pytest.mark.django_db


def _all_stored_text() -> str:
    """Every value in the licensing tables, as the database holds them."""
    with connection.cursor() as cursor:
        rows = []
        for table in ("licensing_license", "licensing_clientsecret"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
            rows.extend(cursor.fetchall())
    return repr(rows)


def test_key_is_stored_only_as_prefix_and_hash(issued) -> None:
    stored = License.objects.get(pk=issued.license.pk)
    assert stored.key_hash == keys.key_digest(issued.key)
    assert issued.key.startswith(stored.key_prefix)
    assert issued.key not in _all_stored_text()
    # The random part after the lookup prefix appears nowhere either.
    assert issued.key[len(stored.key_prefix) :] not in _all_stored_text()


def test_valid_key_authenticates_and_records_use(issued) -> None:
    credential = credential_authenticate(key=issued.key)
    assert credential.kind == "license"
    assert credential.license.pk == issued.license.pk
    issued.license.refresh_from_db()
    assert issued.license.last_used_at is not None


def test_last_used_is_written_at_most_once_a_minute(issued, time_machine) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    credential_authenticate(key=issued.key)
    first = License.objects.get(pk=issued.license.pk).last_used_at
    time_machine.shift(timedelta(seconds=30))
    credential_authenticate(key=issued.key)
    assert License.objects.get(pk=issued.license.pk).last_used_at == first
    time_machine.shift(timedelta(seconds=31))
    credential_authenticate(key=issued.key)
    assert License.objects.get(pk=issued.license.pk).last_used_at > first


def _same_prefix_wrong_secret(key: str) -> str:
    prefix = keys.lookup_prefix(key)
    random_rest = ("X" if key[len(prefix)] != "X" else "Y") + key[len(prefix) + 1 : len(key) - 6]
    body = prefix + random_rest
    return body + keys.checksum(body)


@pytest.mark.parametrize("kind", ["wrong secret", "unknown prefix", "bad checksum", "garbage"])
def test_bad_keys_are_refused(issued, kind) -> None:
    other = keys.generate_key(keys.LICENSE_PREFIX).value
    candidate = {
        "wrong secret": _same_prefix_wrong_secret(issued.key),
        "unknown prefix": other,
        "bad checksum": issued.key[:-1] + ("A" if issued.key[-1] != "A" else "B"),
        "garbage": "sk-proj-not-ours",
    }[kind]
    assert keys.key_kind(candidate) in (
        {None} if kind in ("bad checksum", "garbage") else {"license"}
    )
    with pytest.raises(AuthenticationFailed) as info:
        credential_authenticate(key=candidate)
    assert info.value.code == "invalid_api_key"
    assert candidate not in info.value.message


@pytest.mark.parametrize("kind", ["match", "wrong secret", "unknown prefix", "malformed"])
def test_every_path_compares_digests_in_constant_time(issued, monkeypatch, kind) -> None:
    """Each outcome goes through hmac.compare_digest on full digests, never `==`."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys.hmac, "compare_digest", spy)
    candidate = {
        "match": issued.key,
        "wrong secret": _same_prefix_wrong_secret(issued.key),
        "unknown prefix": keys.generate_key(keys.LICENSE_PREFIX).value,
        "malformed": "lic_not-a-key",
    }[kind]
    try:
        credential_authenticate(key=candidate)
    except AuthenticationFailed:
        assert kind != "match"
    digest_calls = [(a, b) for a, b in calls if len(a) == 64]
    assert len(digest_calls) == 1
    assert len(digest_calls[0][1]) == 64


def test_license_expiry_follows_the_clock(db, time_machine) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    issued = license_create(name="expiring", expires_at=timezone.now() + timedelta(days=1))
    assert credential_authenticate(key=issued.key).license.pk == issued.license.pk
    time_machine.shift(timedelta(days=1, seconds=1))
    with pytest.raises(AuthenticationFailed, match="expired"):
        credential_authenticate(key=issued.key)


def test_disabled_license_is_refused(issued) -> None:
    License.objects.filter(pk=issued.license.pk).update(active=False)
    with pytest.raises(AuthenticationFailed, match="disabled"):
        credential_authenticate(key=issued.key)


def test_revoke_stops_key_and_its_secrets(issued) -> None:
    secret = client_secret_create(
        license=issued.license, session_config={"type": "realtime"}, ttl_s=600
    )
    license_revoke(license=issued.license)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        credential_authenticate(key=issued.key)
    with pytest.raises(AuthenticationFailed):
        credential_authenticate(key=secret.value)
    assert issued.license.status() == "revoked"


def test_client_secret_authenticates_until_it_expires(issued, time_machine) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    issued_secret = client_secret_create(
        license=issued.license,
        session_config={"type": "realtime", "instructions": "hi"},
        ttl_s=60,
        user_id="u1",
    )
    assert issued_secret.value.startswith("ek_")
    assert issued_secret.value not in _all_stored_text()
    credential = credential_authenticate(key=issued_secret.value)
    assert credential.kind == "client_secret"
    assert credential.client_secret.session_config["instructions"] == "hi"
    assert credential.client_secret.user_id == "u1"
    # Usable several times until it expires, as OpenAI documents.
    credential_authenticate(key=issued_secret.value)
    time_machine.shift(timedelta(seconds=60))
    with pytest.raises(AuthenticationFailed, match="expired"):
        credential_authenticate(key=issued_secret.value)


def test_client_secret_dies_with_an_expired_license(db, time_machine) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    issued = license_create(name="short", expires_at=timezone.now() + timedelta(seconds=30))
    secret = client_secret_create(license=issued.license, session_config={}, ttl_s=600)
    time_machine.shift(timedelta(seconds=31))
    with pytest.raises(AuthenticationFailed, match="license key has expired"):
        credential_authenticate(key=secret.value)


def test_expired_secrets_are_purged_after_grace(issued, time_machine) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    client_secret_create(license=issued.license, session_config={}, ttl_s=10)
    time_machine.shift(timedelta(minutes=30))
    assert client_secret_purge_expired() == 0
    time_machine.shift(timedelta(minutes=31))
    assert client_secret_purge_expired() == 1
    assert not ClientSecret.objects.exists()


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (["https://App.Example.com/"], ["https://app.example.com"]),
        (["http://localhost:8000", "http://localhost:8000"], ["http://localhost:8000"]),
        ([" ", "https://a.example"], ["https://a.example"]),
    ],
)
def test_origins_are_normalised(db, given, stored) -> None:
    assert license_create(name="o", allowed_origins=given).license.allowed_origins == stored


@pytest.mark.parametrize(
    "bad", ["app.example.com", "ftp://x", "https://a.example/path", "https://"]
)
def test_bad_origins_are_rejected(db, bad) -> None:
    with pytest.raises(ValidationError):
        license_create(name="o", allowed_origins=[bad])


def test_origin_check_is_exact(issued) -> None:
    license = issued.license
    assert license.origin_allowed("https://app.example.com")
    assert license.origin_allowed("HTTPS://APP.EXAMPLE.COM/")
    assert not license.origin_allowed("https://app.example.com.evil.test")
    assert not license.origin_allowed("https://evil.test")
    assert not license.origin_allowed("null")


def test_gate_throttles_failed_attempts_per_ip(issued, settings, time_machine) -> None:
    settings.LICENSING_AUTH_FAILURES_PER_MINUTE = 3
    time_machine.move_to(timezone.now().replace(second=1), tick=False)
    bad = keys.generate_key(keys.LICENSE_PREFIX).value
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            gate.authenticate(key=bad, client_ip="203.0.113.9")
    # Over budget: another bad key from this IP is answered 429...
    with pytest.raises(gate.TooManyFailures):
        gate.authenticate(key=bad, client_ip="203.0.113.9")
    # ...but the right key from the same IP (another user behind the same NAT) still works,
    assert gate.authenticate(key=issued.key, client_ip="203.0.113.9").kind == "license"
    # other clients are unaffected,
    with pytest.raises(AuthenticationFailed):
        gate.authenticate(key=bad, client_ip="203.0.113.10")
    # and a minute later the failing client is heard again.
    time_machine.shift(timedelta(minutes=1, seconds=1))
    with pytest.raises(AuthenticationFailed):
        gate.authenticate(key=bad, client_ip="203.0.113.9")
