"""One-time codes mailed to prove an address: six digits, single use, short-lived.

A code is never stored. It is derived from its row id with a key of its own (an HMAC of
``secret_key``), so the mail job can write it into the mail after commit, and the row keeps
only a keyed hash of it: a copy of the database alone yields no working code.

Checking a code (:func:`redeem`) answers one of three stable refusals: ``code_invalid``
(wrong code, unknown address, or every try used up), ``code_expired`` and ``code_used``.
Every wrong try counts against each live code of that purpose; past
``account_code_max_attempts`` they are all dead (refused as ``code_invalid``, even the right
one), so six digits cannot be walked through.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from sqlalchemy.orm import Session

from accounts import repository
from accounts.models import AccountCode, CodePurpose, User
from core.db import new_id, utcnow
from core.errors import AppError
from core.settings import get_settings

DIGITS = 6


class CodeRefused(AppError):
    """A refused code. Its bookkeeping (the wrong try counted) must commit although the
    request fails: the API returns it as a problem after the transaction commits."""

    status = 422
    code = "code_invalid"
    title = "Code refused"


def _key(label: bytes) -> bytes:
    secret = get_settings().secret_key.get_secret_value().encode()
    return hmac.new(secret, b"pocketcinema account codes " + label, hashlib.sha256).digest()


def code_for(code_id: str) -> str:
    digest = hmac.new(_key(b"derive"), code_id.encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 10**DIGITS:0{DIGITS}d}"


def _hash(code_id: str, code: str) -> str:
    return hmac.new(_key(b"hash"), f"{code_id}:{code}".encode(), hashlib.sha256).hexdigest()


def issue(
    session: Session,
    user: User,
    purpose: CodePurpose,
    *,
    password_hash: str | None = None,
    new_email: str | None = None,
) -> AccountCode:
    now = utcnow()
    code_id = new_id()
    row = AccountCode(
        id=code_id,
        user_id=user.id,
        purpose=purpose,
        code_hash=_hash(code_id, code_for(code_id)),
        password_hash=password_hash,
        new_email=new_email,
        created_at=now,
        expires_at=now + timedelta(minutes=get_settings().account_code_minutes),
        attempts=0,
    )
    session.add(row)
    session.flush()
    return row


def normalize(code: str) -> str:
    # People paste "123 456" or "123-456" from a mail.
    return "".join(ch for ch in code if ch.isdigit())


def unknown(code: str) -> CodeRefused:
    """The refusal for an address with no account (or nothing to confirm): the same answer
    as a wrong code, after the same hashing work."""
    _hash(new_id(), normalize(code))
    return CodeRefused("that code is not right; ask for a new one if needed")


def redeem(session: Session, user: User, purpose: CodePurpose, code: str) -> AccountCode:
    """The code row ``code`` opens, now spent with every other code of its purpose; or a
    :class:`CodeRefused`."""
    now = utcnow()
    code = normalize(code)
    # Codes older than a day are never looked at again: "expired" is reported for recent ones.
    rows = repository.codes_for(session, user.id, purpose, now - timedelta(days=1))
    if not rows:
        raise unknown(code)
    matched = next(
        (row for row in rows if hmac.compare_digest(row.code_hash, _hash(row.id, code))), None
    )
    limit = get_settings().account_code_max_attempts
    # A code stays open while unused, unexpired, and fewer than `limit` wrong tries were
    # made since it was mailed; past that it is dead, and says so only as "invalid".
    live = [
        row for row in rows if row.used_at is None and row.expires_at > now and row.attempts < limit
    ]
    if matched is not None and matched in live:
        repository.spend_codes(session, user.id, purpose, now)
        matched.used_at = now
        return matched
    if matched is not None and matched.used_at is not None:
        raise CodeRefused("this code was already used; ask for a new one", code="code_used")
    if matched is not None and matched.expires_at <= now:
        raise CodeRefused("this code has expired; ask for a new one", code="code_expired")
    for row in live:
        row.attempts += 1
    raise CodeRefused("that code is not right; ask for a new one if needed")
