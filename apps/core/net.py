"""The client's network address, believing ``X-Forwarded-For`` only from trusted proxies.

``TRUSTED_PROXIES`` (IPs or CIDRs, default empty) names the reverse proxies in front of the
server. A request whose peer is one of them is attributed to the address that proxy saw,
found by walking ``X-Forwarded-For`` from the right past further trusted hops: every entry
right of the first untrusted one was written by a proxy we trust, while entries left of it
may be anything the client typed, so they are never read. With the setting empty the peer
address is the client, whatever headers say.

Why not ``daphne --proxy-headers``: Daphne then replaces the peer with the *leftmost*
``X-Forwarded-For`` entry, from any peer, which is the one entry a client fully controls;
a client could pick a fresh address per request and never be throttled.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

FORWARDED_FOR = "x-forwarded-for"
UNKNOWN = "unknown"
# More hops than any real proxy chain: bounds the work a huge header can cause (entries
# beyond it are not read; the address found so far stands).
MAX_FORWARDED_HOPS = 32


def parse_address(value: str | None) -> IPAddress | None:
    """Parse one address as proxies write it; None for anything that is not an IP address.

    Accepts ``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1`` and ``[2001:db8::1]:443`` (some
    proxies append the port), and maps IPv4-mapped IPv6 (``::ffff:1.2.3.4``, what a dual-stack
    listener reports) to plain IPv4 so one client has one spelling.
    """
    if not value:
        return None
    text = value.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        # IPv4 with a port; IPv6 has at least two colons.
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    networks: list[IPNetwork] = []
    for entry in entries:
        text = entry.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"TRUSTED_PROXIES entry {text!r} is not an IP address or CIDR network "
                "(e.g. 10.0.0.5 or 10.0.0.0/8)."
            ) from None
    return tuple(networks)


def trusted_proxies() -> tuple[IPNetwork, ...]:
    """The parsed ``TRUSTED_PROXIES`` setting.

    Raises:
        ImproperlyConfigured: An entry is neither an address nor a network.
    """
    configured: Iterable[str] | str = getattr(settings, "TRUSTED_PROXIES", [])
    if isinstance(configured, str):
        configured = configured.split(",")
    return _networks(tuple(configured))


def _is_trusted(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def _header(headers: Mapping[str, str], name: str) -> str:
    # HTTP request.headers is case-insensitive; the WebSocket scope's dict is lower-cased by
    # the consumer; a plain mapping may use any case. Try the cheap lookups first.
    for candidate in (name, name.title()):
        value = headers.get(candidate)
        if value is not None:
            return value
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def client_address(remote_addr: str | None, headers: Mapping[str, str]) -> str:
    """The address to attribute a request to (for throttling and logs).

    Args:
        remote_addr: The TCP peer's address (``REMOTE_ADDR``, or the ASGI scope's ``client``
            host). Daphne must run *without* ``--proxy-headers`` for this to be the peer.
        headers: The request headers; only ``X-Forwarded-For`` is read, and only when the
            peer is in ``TRUSTED_PROXIES``. Several header lines joined with commas (as
            Django does) read as one list.

    Returns:
        The first untrusted address in ``X-Forwarded-For`` read from the right when the peer
        is a trusted proxy (the leftmost entry when every hop is trusted); the peer address
        otherwise, or when a trusted hop wrote something that is not an IP address.
        ``"unknown"`` when there is no peer address at all.
    """
    peer = parse_address(remote_addr)
    if peer is None:
        return str(remote_addr).strip() if remote_addr else UNKNOWN
    networks = trusted_proxies()
    if not networks or not _is_trusted(peer, networks):
        return str(peer)
    forwarded = _header(headers, FORWARDED_FOR)
    if not forwarded:
        return str(peer)
    found = peer
    for hop, raw in enumerate(reversed(forwarded.split(","))):
        if hop >= MAX_FORWARDED_HOPS:
            break
        address = parse_address(raw)
        if address is None:
            # A trusted proxy wrote this entry, so it is not the client's doing; the proxy
            # itself is the best we can say.
            return str(peer)
        found = address
        if not _is_trusted(address, networks):
            break
    return str(found)
