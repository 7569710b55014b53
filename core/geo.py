"""Countries: which codes exist, and which country a request comes from.

Trust model: the TCP peer is the only address nobody can forge. Headers that name another
address or a country (``X-Forwarded-For``, ``CloudFront-Viewer-Country``, ``CF-IPCountry``)
are believed only when the peer is one of our ``trusted_proxies`` networks; anyone else can
write them. Behind trusted proxies, the client is the rightmost ``X-Forwarded-For`` hop that
is not itself a trusted proxy (hops to its left were written by the client and prove nothing).
The chosen address is looked up in a MaxMind database when ``maxmind_db`` is set, otherwise
in the offline data shipped by the ``iptocc`` package.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import pycountry

from core.settings import Settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# CDN headers that carry the viewer's country, in the order we believe them.
COUNTRY_HEADERS = ("cloudfront-viewer-country", "cf-ipcountry")


@lru_cache(maxsize=1)
def known_countries() -> frozenset[str]:
    """Every ISO 3166-1 alpha-2 code (from pycountry's ISO tables)."""
    return frozenset(c.alpha_2 for c in pycountry.countries)


def is_country(code: str) -> bool:
    return code in known_countries()


@lru_cache(maxsize=1)
def known_currencies() -> frozenset[str]:
    """Every ISO 4217 alphabetic code (from pycountry)."""
    return frozenset(c.alpha_3 for c in pycountry.currencies)


def is_currency(code: str) -> bool:
    return code in known_currencies()


def parse_networks(cidrs: Sequence[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _address(text: str | None) -> IPAddress | None:
    if not text:
        return None
    text = text.strip()
    # "[2001:db8::1]:443" and "203.0.113.7:1234" both appear in the wild in XFF.
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[IPNetwork]
) -> IPAddress | None:
    """The client's address: the peer, or behind trusted proxies the rightmost untrusted hop."""
    address = _address(peer)
    if address is None or not _trusted(address, trusted) or not forwarded_for:
        return address
    hops = [h for h in (part.strip() for part in forwarded_for.split(",")) if h]
    for hop in reversed(hops):
        hop_address = _address(hop)
        if hop_address is None:
            # Garbage in the chain: stop at the last address we could trust to be real.
            return address
        if not _trusted(hop_address, trusted):
            return hop_address
        address = hop_address
    return address


Lookup = Callable[[str], str | None]


def _iptocc_lookup(ip: str) -> str | None:
    import iptocc

    code = iptocc.country_code(ip)
    return str(code) if code else None


@lru_cache(maxsize=4)
def _maxmind_lookup(path: Path) -> Lookup:
    try:
        import geoip2.database  # type: ignore[import-not-found, unused-ignore]
        import geoip2.errors  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise RuntimeError(
            "POCKETCINEMA_MAXMIND_DB is set but geoip2 is not installed (pip install geoip2)"
        ) from exc
    reader = geoip2.database.Reader(str(path))

    def lookup(ip: str) -> str | None:
        try:
            code = reader.country(ip).country.iso_code
        except (geoip2.errors.AddressNotFoundError, ValueError):
            return None
        return str(code) if code else None

    return lookup


def lookup_country(ip: IPAddress, maxmind_db: Path | None) -> str | None:
    if not ip.is_global:
        return None  # loopback, private, link-local: no country to find
    lookup = _maxmind_lookup(maxmind_db) if maxmind_db else _iptocc_lookup
    code = lookup(str(ip))
    return code.upper() if code and is_country(code.upper()) else None


def request_country(peer: str | None, headers: Mapping[str, str], settings: Settings) -> str | None:
    """The country of a request, or None when it cannot be told. ``headers`` keys are
    lower-case (as in ASGI)."""
    # Every playlist and key request asks, and a player asks from the same address with the
    # same headers for hours: remember the answers (parsing addresses costs ~15 us each).
    # Headers only count behind a trusted proxy, so only then are they part of the key: a
    # stranger sending ever new X-Forwarded-For values cannot grow the memo past its bound,
    # and over-long header values are answered without it.
    proxies = tuple(settings.trusted_proxies)
    if not _peer_trusted(peer, proxies):
        return _request_country(
            peer, (), None, proxies, settings.maxmind_db, settings.geo_fallback_country
        )
    country_headers = tuple(headers.get(name, "") for name in COUNTRY_HEADERS)
    forwarded = headers.get("x-forwarded-for")
    args = (peer, country_headers, forwarded, proxies, settings.maxmind_db)
    if len(forwarded or "") + sum(map(len, country_headers)) > _MEMO_HEADER_LIMIT:
        return _request_country.__wrapped__(*args, settings.geo_fallback_country)
    return _request_country(*args, settings.geo_fallback_country)


_MEMO_HEADER_LIMIT = 512


@lru_cache(maxsize=65_536)
def _peer_trusted(peer: str | None, trusted_proxies: tuple[str, ...]) -> bool:
    address = _address(peer)
    return address is not None and _trusted(address, trusted_networks(trusted_proxies))


@lru_cache(maxsize=65_536)
def _request_country(
    peer: str | None,
    country_headers: tuple[str, ...],
    forwarded_for: str | None,
    trusted_proxies: tuple[str, ...],
    maxmind_db: Path | None,
    fallback_country: str | None,
) -> str | None:
    trusted = trusted_networks(trusted_proxies)
    peer_address = _address(peer)
    behind_proxy = peer_address is not None and _trusted(peer_address, trusted)
    if behind_proxy:
        for header in country_headers:
            value = header.strip().upper()
            # CDNs send XX (unknown) and T1 (Tor) too; only real codes count.
            if value and is_country(value):
                return value
    address = client_address(peer, forwarded_for, trusted)
    country = lookup_country(address, maxmind_db) if address is not None else None
    # Only addresses that can have no country (loopback, private networks: a developer's
    # machine) fall back; a public address we cannot place stays unknown.
    local = address is None or not address.is_global
    if country is None and local and fallback_country:
        return fallback_country
    return country


@lru_cache(maxsize=8)
def trusted_networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return parse_networks(cidrs)
