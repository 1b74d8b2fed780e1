"""Checks on an SDP offer before aiortc parses it, and the one way a parse error is told.

aiortc's parser accepts megabyte offers and raises many kinds of exceptions on bad ones.
An offer is refused here first when it is too large, has too many candidates, is not SDP
text at all, or has no audio to talk with; whatever aiortc then raises while applying it
becomes an ``SdpRefused`` too, which the edges answer with a 4xx.
"""

from __future__ import annotations

from django.conf import settings


class SdpRefused(Exception):
    """The offer cannot be used; the message is for the client."""

    def __init__(self, message: str, *, code: str = "invalid_offer") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def describe_error(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 200 characters) for a client's error."""
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def offer_check(sdp: str) -> None:
    """Refuse an offer that is oversized, malformed at a glance, or without audio.

    Raises:
        SdpRefused: With a message naming the limit or what is missing.
    """
    size = len(sdp.encode("utf-8", "surrogatepass"))
    if size > settings.RTC_MAX_SDP_BYTES:
        raise SdpRefused(
            f"The SDP offer is {size} bytes; the limit is {settings.RTC_MAX_SDP_BYTES}.",
            code="offer_too_large",
        )
    if not sdp.lstrip().startswith("v=0"):
        raise SdpRefused("The body is not an SDP offer (it must start with 'v=0').")
    if "\x00" in sdp:
        raise SdpRefused("The SDP offer contains a NUL character.")
    lines = sdp.splitlines()
    candidates = sum(1 for line in lines if line.startswith("a=candidate:"))
    if candidates > settings.RTC_MAX_CANDIDATES:
        raise SdpRefused(
            f"The SDP offer has {candidates} candidates; the limit is "
            f"{settings.RTC_MAX_CANDIDATES}.",
            code="too_many_candidates",
        )
    if not any(line.startswith("m=audio ") for line in lines):
        raise SdpRefused("The SDP offer has no audio media section (m=audio).")
    if not any(line.startswith("a=fingerprint:") for line in lines):
        # aiortc would accept it and then fail the DTLS handshake, leaving a peer that
        # can never connect.
        raise SdpRefused("The SDP offer has no DTLS fingerprint (a=fingerprint).")
    _check_mids(lines)


def _check_mids(lines: list[str]) -> None:
    """Every media section names itself once (a=mid), and BUNDLE names only those.

    aiortc takes offers that break this and then fails half-way through answering, with
    its transports half set up (found by tests/rtc/test_fuzz.py).
    """
    sections: list[list[str]] = []
    bundles: list[list[str]] = []
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        elif sections:
            if line.startswith("a=mid:"):
                sections[-1].append(line[len("a=mid:") :].strip())
        if line.startswith("a=group:BUNDLE"):
            bundles.append(line[len("a=group:BUNDLE") :].split())
    mids = [mid for section in sections for mid in section]
    if any(len(section) != 1 for section in sections) or len(set(mids)) != len(mids):
        raise SdpRefused("Each media section of the SDP offer needs one a=mid of its own.")
    for tags in bundles:
        if not tags or any(tag not in mids for tag in tags):
            raise SdpRefused(
                "The SDP offer's BUNDLE group names a media section that is not there."
            )


def candidate_check(candidate: str) -> None:
    """Refuse a trickled candidate line that is oversized or not a candidate.

    Raises:
        SdpRefused: Not ``candidate:…`` or longer than a candidate can be.
    """
    text = candidate.removeprefix("a=")
    if len(text) > 1024 or not text.startswith("candidate:") or "\n" in text or "\r" in text:
        raise SdpRefused("Not an ICE candidate line.", code="invalid_candidate")
