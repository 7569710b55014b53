"""BCP 47 language tags: canonical spelling, fallback chains and Accept-Language negotiation.

We support the subset apps send: ``language[-Script][-REGION][-variant...]``, e.g. ``en``,
``pt-BR``, ``zh-Hant``, ``zh-Hant-TW``, ``es-419``. Tags are stored in canonical case
(language lower, Script title, REGION upper) so that lookups are plain string equality.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache

import pycountry
from babel.core import get_global

from core.errors import InvalidInput

DEFAULT_LOCALE = "en"
_SUBTAG = re.compile(r"^[A-Za-z0-9]{1,8}$")


@lru_cache(maxsize=1)
def _languages() -> frozenset[str]:
    codes: set[str] = set()
    for lang in pycountry.languages:
        codes.add(lang.alpha_3)
        alpha_2 = getattr(lang, "alpha_2", None)
        if alpha_2:
            codes.add(alpha_2)
    return frozenset(codes)


def canonical_locale(tag: str) -> str:
    """``"zh_hant_tw"`` -> ``"zh-Hant-TW"``; raises ``invalid_locale`` for anything else."""
    parts = [p for p in re.split(r"[-_]", tag.strip())]
    if not parts or not all(_SUBTAG.match(p) for p in parts) or len(tag) > 35:
        raise InvalidInput(f"{tag!r} is not a BCP 47 language tag", code="invalid_locale")
    language = parts[0].lower()
    if not (2 <= len(language) <= 3 and language.isalpha()) or language not in _languages():
        raise InvalidInput(f"{tag!r}: unknown language {parts[0]!r}", code="invalid_locale")
    out = [language]
    rest = parts[1:]
    if rest and len(rest[0]) == 4 and rest[0].isalpha():
        out.append(rest.pop(0).title())
    if rest and (
        (len(rest[0]) == 2 and rest[0].isalpha()) or (len(rest[0]) == 3 and rest[0].isdigit())
    ):
        out.append(rest.pop(0).upper())
    for variant in rest:
        if not (5 <= len(variant) <= 8 or (len(variant) == 4 and variant[0].isdigit())):
            raise InvalidInput(f"{tag!r}: unexpected subtag {variant!r}", code="invalid_locale")
        out.append(variant.lower())
    return "-".join(out)


def try_canonical(tag: str) -> str | None:
    try:
        return canonical_locale(tag)
    except InvalidInput:
        return None


def truncations(tag: str) -> list[str]:
    """RFC 4647 lookup order for one tag: zh-Hant-TW -> zh-Hant -> zh."""
    parts = tag.split("-")
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]


def parse_accept_language(header: str | None) -> list[str]:
    """Tags from an Accept-Language header, best first (stable for equal q); ``*`` and
    malformed entries are skipped, q=0 means "not this one"."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")):
        fields = [f.strip() for f in item.split(";")]
        tag = fields[0]
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if not tag or tag == "*" or not 0 < q <= 1:
            continue
        canonical = try_canonical(tag)
        if canonical:
            weighted.append((-q, index, canonical))
    weighted.sort()
    return list(dict.fromkeys(tag for _, _, tag in weighted))


@lru_cache(maxsize=1)
def _likely_subtags() -> Mapping[str, str]:
    """CLDR's likely subtags (``zh_TW`` -> ``zh_Hant_TW``, ``zh`` -> ``zh_Hans_CN``), from
    Babel's copy of the CLDR data, so script choices follow the standard, not a table of ours."""
    data: Mapping[str, str] = get_global("likely_subtags")
    return data


def _likely(language: str, region: str | None) -> tuple[str | None, str | None]:
    """The script and region CLDR expects for a language (in a region)."""
    table = _likely_subtags()
    found = (region and table.get(f"{language}_{region}")) or table.get(language)
    if not found:
        return None, None
    parts = found.split("_")
    script = next((p for p in parts[1:] if len(p) == 4), None)
    likely_region = next((p for p in parts[1:] if len(p) in (2, 3) and p != script), None)
    return script, likely_region


def _lookup_order(tag: str) -> tuple[list[str], list[str]]:
    """Tags that mean the same script as ``tag``, most specific first, and the ones in another
    script of the same language (a last resort before English).

    CLDR: ``zh-TW`` is written in Traditional characters (likely subtags give ``zh-Hant-TW``),
    and a bare ``zh`` means the language's default script (Simplified), so ``zh-TW`` falls back
    to ``zh-Hant`` and reaches ``zh`` only after every same-script choice; ``pt-BR`` falls
    back to ``pt``."""
    parts = tag.split("-")
    language = parts[0]
    script = next((p for p in parts[1:] if len(p) == 4 and p.isalpha()), None)
    region = next((p for p in parts[1:] if len(p) == 2 or (len(p) == 3 and p.isdigit())), None)
    likely_script, _ = _likely(language, region)
    default_script, _ = _likely(language, None)
    script = script or likely_script
    same = [tag]
    if script:
        if region:
            same += [f"{language}-{script}-{region}", f"{language}-{region}"]
        same.append(f"{language}-{script}")
    else:
        same += truncations(tag)[1:-1]
    other: list[str] = []
    if script is None or script == default_script:
        same.append(language)
    else:
        other.append(language)
        if default_script:
            other.append(f"{language}-{default_script}")
    return same, other


def fallback_chain(preferences: Sequence[str]) -> list[str]:
    """Every tag to try, in order: each preference and the tags that mean the same language
    and script (CLDR likely subtags), then the same languages in another script, then
    English."""
    chain: list[str] = []
    last_resort: list[str] = []
    for tag in preferences:
        same, other = _lookup_order(tag)
        chain.extend(same)
        last_resort.extend(other)
    chain.extend(last_resort)
    chain.append(DEFAULT_LOCALE)
    return list(dict.fromkeys(chain))


def negotiate(preferences: Sequence[str], available: Collection[str]) -> str | None:
    """The first locale of the fallback chain that ``available`` has; None means "use the
    original-language metadata"."""
    for tag in fallback_chain(preferences):
        if tag in available:
            return tag
    return None


# Words in a track's title that name the Chinese script (studios write "Simplified",
# "简体", "Traditional", "繁體" ...); ISO 639-2 has one code for every Chinese.
_SCRIPT_HINTS = (
    ("Hans", ("simplified", "简体", "簡體", "简中", "hans", "chs")),
    ("Hant", ("traditional", "繁体", "繁體", "繁中", "hant", "cht")),
)


@lru_cache(maxsize=1)
def _iso639_2_to_1() -> dict[str, str]:
    """ISO 639-2/T and /B codes -> the shortest BCP 47 language subtag (zho, chi -> zh)."""
    table: dict[str, str] = {}
    for lang in pycountry.languages:
        short = getattr(lang, "alpha_2", None) or lang.alpha_3
        table[lang.alpha_3] = short
        bibliographic = getattr(lang, "bibliographic", None)
        if bibliographic:
            table[bibliographic] = short
    return table


def bcp47_from_media_tag(tag: str | None, *, title: str | None = None) -> str | None:
    """The BCP 47 tag for a media stream's language tag, or None when it has none.

    Containers carry ISO 639-2 (``zho``, ``chi``, ``eng``, ``ger``) and sometimes a BCP 47
    tag already (Matroska's LanguageIETF, e.g. ``zh-Hant``). BCP 47 takes the two-letter
    code where one exists (RFC 5646 section 2.2.1). A Chinese track gets a script subtag
    when its tag or its title says which script (``Simplified Chinese``, ``繁體中文``).
    ``und``, ``mis``, ``mul``, ``zxx`` and unknown codes count as untagged."""
    if not tag or tag.strip().lower() in {"", "und", "mis", "mul", "zxx", "qaa"}:
        return None
    parts = re.split(r"[-_]", tag.strip())
    code = parts[0].lower()
    mapped = _iso639_2_to_1().get(code) if len(code) == 3 else code
    if mapped is None:
        return None
    candidate = try_canonical("-".join([mapped, *parts[1:]]))
    if candidate is None:
        return None
    if candidate.split("-")[0] == "zh" and not re.search(r"-[A-Z][a-z]{3}\b", candidate):
        words = (title or "").lower()
        for script, hints in _SCRIPT_HINTS:
            if any(hint in words for hint in hints):
                rest = candidate.split("-")[1:]
                return "-".join(["zh", script, *rest])
    return candidate


def language_name(tag: str) -> str:
    """An English name for a BCP 47 tag, for default track names: ``zh-Hant`` ->
    ``Chinese (Traditional)``, ``de`` -> ``German``; the tag itself when unknown."""
    parts = tag.split("-")
    code = parts[0]
    lang = pycountry.languages.get(alpha_2=code) if len(code) == 2 else None
    lang = lang or pycountry.languages.get(alpha_3=code)
    name = str(lang.name) if lang is not None else tag
    scripts = {"Hans": "Simplified", "Hant": "Traditional"}
    extra = [scripts.get(p, p) for p in parts[1:]]
    return f"{name} ({', '.join(extra)})" if extra else name
