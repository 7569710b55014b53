"""Locale fallback follows CLDR: region tags reach their script, never another script first."""

from __future__ import annotations

import pytest

from catalog.locales import negotiate, parse_accept_language


@pytest.mark.parametrize(
    ("accept", "available", "chosen"),
    [
        # Traditional-character regions get Traditional metadata, not the Simplified default.
        ("zh-TW", {"zh", "zh-Hant", "en"}, "zh-Hant"),
        ("zh-HK", {"zh", "zh-Hant", "en"}, "zh-Hant"),
        ("zh-MO", {"zh", "zh-Hant"}, "zh-Hant"),
        ("zh-CN", {"zh", "zh-Hant"}, "zh"),
        ("zh-SG", {"zh-Hans", "zh-Hant"}, "zh-Hans"),
        # Another script of the same language beats English, but only after the right script.
        ("zh-TW", {"zh", "en"}, "zh"),
        ("zh-Hant", {"zh-Hans", "en"}, "zh-Hans"),
        # A stated second choice in another language wins over a cross-script fallback.
        ("zh-TW, en;q=0.5", {"zh", "en"}, "en"),
        ("pt-BR", {"pt", "es"}, "pt"),
        ("pt-PT", {"pt-PT", "pt"}, "pt-PT"),
        ("es-MX", {"es", "en"}, "es"),
        ("sr-Latn", {"sr", "sr-Latn"}, "sr-Latn"),
        ("fr-CH", {"de"}, None),
    ],
)
def test_negotiation_follows_cldr(accept: str, available: set[str], chosen: str | None) -> None:
    assert negotiate(parse_accept_language(accept), available) == chosen
