"""Which country a request comes from, and whose word we take for it."""

from __future__ import annotations

import pytest

from core.geo import client_address, parse_networks, request_country
from core.settings import Settings

US, CA, FR = "8.8.8.8", "24.48.0.1", "5.39.0.1"
PROXY = "10.0.0.5"


def settings(*trusted: str, fallback: str | None = None) -> Settings:
    return Settings(mode="test", trusted_proxies=list(trusted), geo_fallback_country=fallback)


def test_a_direct_public_peer_is_looked_up_in_the_offline_data() -> None:
    assert request_country(US, {}, settings()) == "US"
    assert request_country(CA, {}, settings()) == "CA"
    assert request_country("2001:4860:4860::8888", {}, settings()) == "US"


def test_an_untrusted_peer_cannot_spoof_forwarded_for_or_cdn_headers() -> None:
    spoof = {"x-forwarded-for": US, "cf-ipcountry": "US", "cloudfront-viewer-country": "US"}
    assert request_country(FR, spoof, settings("10.0.0.0/8")) == "FR"


def test_a_trusted_proxy_speaks_for_the_client() -> None:
    s = settings("10.0.0.0/8")
    assert request_country(PROXY, {"x-forwarded-for": CA}, s) == "CA"
    assert request_country(PROXY, {"cloudfront-viewer-country": "JP"}, s) == "JP"
    assert request_country(PROXY, {"cf-ipcountry": "de"}, s) == "DE"


def test_behind_proxies_the_rightmost_untrusted_hop_is_the_client() -> None:
    trusted = parse_networks(["10.0.0.0/8", "192.168.0.0/16"])
    # The client wrote "8.8.8.8" itself; the first proxy appended the real peer (Canada).
    chain = f"{US}, {CA}, 192.168.1.1"
    assert str(client_address(PROXY, chain, trusted)) == CA
    assert (
        request_country(PROXY, {"x-forwarded-for": chain}, settings("10.0.0.0/8", "192.168.0.0/16"))
        == "CA"
    )


def test_cdn_placeholders_are_not_countries() -> None:
    s = settings("10.0.0.0/8")
    # Cloudflare sends XX when it does not know and T1 for Tor; fall back to the address.
    assert request_country(PROXY, {"cf-ipcountry": "T1", "x-forwarded-for": FR}, s) == "FR"
    assert request_country(PROXY, {"cf-ipcountry": "XX"}, s) is None


@pytest.mark.parametrize(
    "peer", ["127.0.0.1", "10.1.2.3", "::1", "testclient", None, "203.0.113.9"]
)
def test_addresses_without_a_country_are_unknown(peer: str | None) -> None:
    assert request_country(peer, {}, settings()) is None


def test_the_development_fallback_applies_to_local_addresses_only() -> None:
    s = settings(fallback="US")
    assert request_country("127.0.0.1", {}, s) == "US"
    assert request_country(FR, {}, s) == "FR"
    assert Settings(mode="development").geo_fallback_country == "US"
    assert Settings(mode="test").geo_fallback_country is None


def test_garbage_in_forwarded_for_stops_at_the_last_real_hop() -> None:
    s = settings("10.0.0.0/8")
    assert request_country(PROXY, {"x-forwarded-for": f"{US}, not-an-ip"}, s) is None
    assert request_country(PROXY, {"x-forwarded-for": f"[{'2001:4860:4860::8888'}]:443"}, s) == "US"
