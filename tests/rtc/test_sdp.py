"""Offer limits before parsing, candidates, and short-lived TURN credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from django.test import override_settings

from apps.rtc.avatar_link import candidates_of
from apps.rtc.ice import ice_servers, ice_servers_json, turn_credentials
from apps.rtc.sdp import SdpRefused, candidate_check, offer_check

OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=fingerprint:sha-256 AB:CD",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=mid:0",
        "a=candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host",
        "a=end-of-candidates",
        "a=ice-ufrag:late",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=mid:1",
        "a=candidate:2 1 udp 2130706431 192.0.2.1 5002 typ host",
        "",
    ]
)


def test_a_plain_offer_passes() -> None:
    offer_check(OFFER)


@pytest.mark.parametrize(
    ("sdp", "code"),
    [
        ("hello", "invalid_offer"),
        ("v=0\r\nm=video 9 UDP 96\r\n", "invalid_offer"),
        ("v=0\r\n\x00m=audio 9 UDP 111\r\n", "invalid_offer"),
        (OFFER + "a=x:" + "y" * 70_000 + "\r\n", "offer_too_large"),
        (OFFER + "a=candidate:9 1 udp 1 192.0.2.1 1 typ host\r\n" * 70, "too_many_candidates"),
        # Found by tests/rtc/test_fuzz.py: aiortc takes these, then fails later (no DTLS
        # fingerprint: a peer that never connects; a BUNDLE tag without its section: a 500).
        (OFFER.replace("a=fingerprint:sha-256 AB:CD\r\n", ""), "invalid_offer"),
        (OFFER.replace("a=mid:0", "a=mid:x"), "invalid_offer"),
    ],
)
def test_bad_offers_are_refused_before_parsing(sdp: str, code: str) -> None:
    with pytest.raises(SdpRefused) as refused:
        offer_check(sdp)
    assert refused.value.code == code


def test_limits_follow_settings() -> None:
    with override_settings(RTC_MAX_CANDIDATES=1), pytest.raises(SdpRefused):
        offer_check(OFFER)


@pytest.mark.parametrize(
    "line", ["", "foo", "candidate:1\r\na=x", "a=" + "candidate:" + "1" * 2000]
)
def test_bad_candidates_are_refused(line: str) -> None:
    with pytest.raises(SdpRefused):
        candidate_check(line)


def test_candidates_are_read_from_a_description_per_media_section() -> None:
    found = candidates_of(OFFER)
    assert [(c["sdpMid"], c["sdpMLineIndex"]) for c in found] == [("0", 0), ("1", 1)]
    assert found[0]["candidate"].startswith("candidate:1 ")
    # aiortc writes the ufrag after the candidates: it is still found.
    assert found[0]["usernameFragment"] == "late"


def test_no_ice_servers_by_default() -> None:
    assert ice_servers(user="u") == []


@override_settings(
    RTC_STUN_URLS=["stun:stun.example.org:3478"],
    RTC_TURN_URLS=["turn:turn.example.org:3478?transport=udp"],
    RTC_TURN_SECRET="s3cret",
    RTC_TURN_TTL_S=600,
)
def test_turn_credentials_are_short_lived_and_verifiable() -> None:
    username, credential = turn_credentials(user="alice", now_s=1_000_000)
    assert username == "1000600:alice"
    expected = hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(credential) == expected
    servers = ice_servers_json(user="alice")
    assert servers[0] == {"urls": ["stun:stun.example.org:3478"]}
    assert servers[1]["username"].endswith(":alice") and servers[1]["credential"]
