"""Which passwords we accept, after NIST SP 800-63B (section 3.1.1.2).

Length is what counts: at least ``MIN_PASSWORD`` characters, up to ``MAX_PASSWORD`` (any
characters, spaces included; no rules about digits or symbols, which only teach
``Password1!``). Refused: a password of nothing but spaces, one that is on the list of
passwords that attackers try first, and one that is the account's own email or its name
part. The list ships with the package (common_passwords.txt.gz, about 40,000 entries):
the 20,000 most common passwords of breach corpora as compiled by Royce Williams for
Django (BSD licence), merged with the 30,000 of zxcvbn's frequency list (MIT licence),
lower-cased, so ``PASSWORD123`` is as refused as ``password123``.
"""

from __future__ import annotations

import gzip
import unicodedata
from functools import lru_cache
from pathlib import Path

from core.errors import InvalidInput

MIN_PASSWORD = 10
MAX_PASSWORD = 256  # argon2 would happily hash megabytes; we do not offer that DoS lever
_LIST = Path(__file__).resolve().parent / "common_passwords.txt.gz"


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    with gzip.open(_LIST, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


def normalize(password: str) -> str:
    # NFKC, as 800-63B asks: the same password typed on two keyboards is one password.
    return unicodedata.normalize("NFKC", password)


def check_password(password: str, email: str | None = None) -> None:
    """Raise InvalidInput (a stable code per rule) unless the password may be used."""
    password = normalize(password)
    if not password.strip():
        raise InvalidInput("a password cannot be only spaces", code="password_blank")
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"use at least {MIN_PASSWORD} characters", code="password_too_short")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"use at most {MAX_PASSWORD} characters", code="password_too_long")
    folded = password.strip().lower()
    if folded in common_passwords() or len(set(folded)) == 1:
        raise InvalidInput(
            "this password is among those attackers try first; choose another",
            code="password_common",
        )
    if email and folded in {email.lower(), email.lower().split("@", 1)[0]}:
        raise InvalidInput("do not use your email as your password", code="password_common")
