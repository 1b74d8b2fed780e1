"""The talk page's server side: pages, the visitor id, minting secrets, history."""

from __future__ import annotations

import json
import re
from io import StringIO
from typing import Any

import pytest
from django.core import signing
from django.core.management import call_command
from django.test import Client

from apps.conversations.models import Conversation, ConversationItem
from apps.licensing.models import ClientSecret, License
from apps.licensing.services import credential_authenticate, license_create
from apps.web.visitor import COOKIE, SALT
from tests.conftest import assert_openai_error

pytestmark = pytest.mark.django_db

ORIGIN = "http://testserver"


@pytest.fixture
def seeded() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue().split()[-1]


def _visitor(client: Client) -> str:
    """The visitor id the client's cookie holds (after one page visit)."""
    client.get("/")
    signer = signing.get_cookie_signer(salt=signing._cookie_signer_salt(COOKIE, SALT))
    return signer.unsign(client.cookies[COOKIE].value)


def _mint(client: Client, body: Any = None, **headers: str) -> Any:
    return client.post(
        "/talk/secret",
        data=json.dumps({} if body is None else body),
        content_type="application/json",
        headers={"Origin": ORIGIN, **headers},
    )


def _config(response: Any) -> dict[str, Any]:
    html = response.content.decode()
    match = re.search(r'<script id="talk-config" type="application/json">(.*?)</script>', html)
    assert match, html[:500]
    return json.loads(match.group(1))


def test_a_visitor_gets_a_signed_random_id_that_sticks(client, seeded) -> None:
    first = _visitor(client)
    assert re.fullmatch(r"v_[0-9A-Za-z]{22}", first)
    assert _visitor(client) == first
    cookie = client.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    # A cookie the visitor wrote themselves (unsigned, or another's id unsigned) is ignored.
    other = Client()
    other.cookies[COOKIE] = first
    assert _visitor(other) != first


def test_home_offers_characters_voices_and_modes(client, seeded) -> None:
    html = client.get("/").content.decode()
    for slug in ("girl2", "ava", "leo", "wang-laoshi", "qiqi"):
        assert f'value="{slug}"' in html and f"/characters/{slug}/still.png" in html
    assert 'name="voice"' in html and 'value="龙婉"' in html
    assert 'name="transport"' in html and 'name="mode"' in html and 'name="lang"' in html
    assert "no license set up for its talk page" not in html


def test_home_says_when_no_license_serves_the_talk_page(client, seeded) -> None:
    License.objects.update(serves_talk_page=False)
    assert "no license set up for its talk page" in client.get("/").content.decode()


def test_the_start_form_goes_to_the_talk_page(client, seeded) -> None:
    response = client.get("/talk/", {"character": "leo", "voice": "alloy", "mode": "ptt"})
    assert response.status_code == 302
    assert response["Location"] == "/talk/leo/?voice=alloy&mode=ptt"
    assert client.get("/talk/", {"character": "nobody"})["Location"] == "/"


def test_character_stills_are_pngs_and_cacheable(client, seeded) -> None:
    response = client.get("/characters/girl2/still.png", {"size": "200"})
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert "max-age" in response["Cache-Control"]
    assert client.get("/characters/nobody/still.png").status_code == 404


def test_talk_page_config(client, seeded) -> None:
    response = client.get("/talk/wang-laoshi/")
    assert response.status_code == 200
    config = _config(response)
    assert config["character"]["slug"] == "wang-laoshi"
    assert config["voice"] == "龙婉" and config["language"] == "zh"
    assert config["transport"] == "webrtc" and config["mode"] == "vad"
    assert config["hasTalkLicense"] is True
    assert config["userId"] == _visitor(client)
    assert config["urls"]["secret"] == "/talk/secret"
    # The page never carries a license key.
    assert "lic_" not in response.content.decode()
    chosen = _config(
        client.get(
            "/talk/ava/", {"voice": "龙婉", "lang": "en", "transport": "websocket", "mode": "ptt"}
        )
    )
    assert (chosen["voice"], chosen["language"], chosen["transport"], chosen["mode"]) == (
        "龙婉",
        "en",
        "websocket",
        "ptt",
    )
    # Unknown choices fall back to the defaults rather than reaching the page's script.
    odd = _config(client.get("/talk/ava/", {"voice": "<x>", "transport": "carrier-pigeon"}))
    assert odd["voice"] == "marin" and odd["transport"] == "webrtc"
    assert client.get("/talk/nobody/").status_code == 404


def test_minting_a_secret_for_the_visitor(client, seeded) -> None:
    visitor = _visitor(client)
    response = _mint(client, {"character": "wang-laoshi", "voice": "龙婉", "language": "zh"})
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["value"].startswith("ek_") and body["user_id"] == visitor
    secret = credential_authenticate(key=body["value"]).client_secret
    assert secret is not None and secret.user_id == visitor
    assert secret.license.name == "Demo"
    assert 55 <= (secret.expires_at - secret.created_at).total_seconds() <= 60
    audio = secret.session_config["audio"]
    assert audio["output"]["voice"] == "龙婉"
    assert audio["input"]["transcription"]["language"] == "zh"
    assert audio["input"]["turn_detection"]["type"] == "server_vad"
    ptt = _mint(client, {"mode": "ptt", "language": "auto"}).json()
    session = ptt["session"]["audio"]["input"]
    assert session["turn_detection"] is None and session["transcription"]["language"] is None


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Origin": "https://evil.example"}, 403, "origin_not_allowed"),
        ({"Origin": ""}, 403, "origin_not_allowed"),
    ],
)
def test_minting_is_for_this_sites_pages_only(client, seeded, headers, status, code) -> None:
    assert_openai_error(_mint(client, {}, **headers), status, code=code)
    assert ClientSecret.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"language": "fr"}, 400, "invalid_value", "language"),
        ({"mode": "shout"}, 400, "invalid_value", "mode"),
        ({"voice": ["alloy"]}, 400, "invalid_value", "voice"),
        ({"character": "x" * 65}, 400, "invalid_value", "character"),
        ({"character": "nobody"}, 404, "character_not_found", "character"),
        ({"voice": "nobody"}, 400, "invalid_value", "session.audio.output.voice"),
        ([], 400, "invalid_request", None),
    ],
)
def test_bad_requests_get_openai_shaped_errors(client, seeded, body, status, code, param) -> None:
    assert_openai_error(_mint(client, body), status, code=code, param=param)
    assert ClientSecret.objects.count() == 0


def test_bad_bodies(client, seeded) -> None:
    headers = {"Origin": ORIGIN}
    bad_json = client.post(
        "/talk/secret", data="{", content_type="application/json", headers=headers
    )
    assert_openai_error(bad_json, 400, code="invalid_json")
    form = client.post("/talk/secret", data={"character": "ava"}, headers=headers)
    assert_openai_error(form, 400, code="invalid_request")
    assert client.get("/talk/secret").status_code == 405


def test_without_a_talk_page_license_the_page_is_told_to_ask_for_a_key(client, seeded) -> None:
    License.objects.update(serves_talk_page=False)
    assert_openai_error(_mint(client), 503, code="talk_page_not_configured")
    assert _config(client.get("/talk/ava/"))["hasTalkLicense"] is False


def test_a_revoked_or_expired_talk_page_license_is_not_used(client, seeded) -> None:
    from django.utils import timezone

    License.objects.update(revoked_at=timezone.now())
    assert_openai_error(_mint(client), 503, code="talk_page_not_configured")
    newer = license_create(name="Kiosk", serves_talk_page=True).license
    assert credential_authenticate(key=_mint(client).json()["value"]).license == newer


def test_minting_is_throttled_per_visitor_and_per_address(client, seeded, settings) -> None:
    settings.WEB_TALK_SECRETS_PER_MINUTE = 3
    settings.WEB_TALK_SECRETS_PER_ADDRESS_PER_MINUTE = 4
    for _ in range(3):
        assert _mint(client).status_code == 200
    assert_openai_error(_mint(client), 429, code="rate_limit_exceeded")
    # A new visitor (no cookie) from the same address gets the address's remainder.
    fresh = Client()
    assert _mint(fresh).status_code == 200
    assert_openai_error(_mint(Client()), 429, code="rate_limit_exceeded")
    assert ClientSecret.objects.count() == 4


def _conversation(license: License, user_id: str, texts: list[tuple[str, str]]) -> Conversation:
    conversation = Conversation.objects.create(license=license, user_id=user_id, transport="webrtc")
    for position, (role, text) in enumerate(texts):
        ConversationItem.objects.create(
            conversation=conversation,
            item_id=f"item_{position}",
            position=position,
            type="message",
            role=role,
            text=text,
            truncated_at_ms=900 if role == "assistant" and text.endswith("-") else None,
        )
    return conversation


def test_history_shows_only_the_visitors_own_conversations(client, seeded) -> None:
    visitor = _visitor(client)
    demo = License.objects.get(name="Demo")
    mine = _conversation(
        demo, visitor, [("user", "What is the capital of France?"), ("assistant", "Paris-")]
    )
    _conversation(demo, visitor, [])  # said nothing: not listed
    theirs = _conversation(demo, "v_someoneelse0000000000", [("user", "my secret plans")])
    other_license = license_create(name="Other").license
    elsewhere = _conversation(other_license, visitor, [("user", "from another license")])
    html = client.get("/history/").content.decode()
    assert "What is the capital of France?" in html
    assert "my secret plans" not in html and "from another license" not in html
    assert html.count("data-conversation=") == 1
    partial = client.get(f"/history/{mine.pk}/", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    text = partial.content.decode()
    assert "<html" not in text and "Paris-" in text and "interrupted" in text
    page = client.get(f"/history/{mine.pk}/").content.decode()
    assert "<html" in page and "Paris-" in page
    # Anyone else's conversation is a 404, exactly like one that does not exist.
    for conversation_id in (theirs.pk, elsewhere.pk, "sess_doesnotexist"):
        assert client.get(f"/history/{conversation_id}/").status_code == 404


def test_history_is_empty_for_a_new_visitor(client, seeded) -> None:
    assert "Nothing here yet" in client.get("/history/").content.decode()


def test_demo_page_config(client, seeded) -> None:
    response = client.get("/demo/")
    assert response.status_code == 200
    html = response.content.decode()
    match = re.search(r'<script id="demo-config" type="application/json">(.*?)</script>', html)
    assert match
    config = json.loads(match.group(1))
    assert config["realtimeUrl"] == "ws://testserver/v1/realtime"
    assert config["secretUrl"] == "/talk/secret" and config["userId"] == _visitor(client)


def test_favicon(client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
