"""Sign-in and sign-up under attack: who may try how often (docs/security.md).

Three questions, three kinds of limit, all in the shared store of core/ratelimit.py:

- **One address, many accounts** (password spraying): failed sign-ins per client address,
  whatever the account (``login_ip_limit``). The client address is the TCP peer unless the
  peer is a trusted proxy (core/geo.py), so a forged ``X-Forwarded-For`` changes nothing.
- **One account, many addresses** (a botnet on one victim): failed sign-ins per account,
  whatever the address (``login_account_limit``), and all attempts together
  (``login_global_limit``). These two are *soft*: they refuse only devices that never
  signed in to the account. An attacker who trips them cannot lock the owner out of the
  phone they always use, which a hard per-account lock would let anyone do from outside.
- **One account from one address**: the per (email, address) failure count kept in the
  database (accounts.service.login) stays the fast, hard limit.

Sign-up is limited per address and globally (``signup_*_limit``). Mailed one-time codes
are checked at most ``account_code_ip_limit`` times per client address (on top of the
per-code attempt count in the database), and mails to one e-mail address are limited
(``account_mail_limit``), counted alike whether the address has an account or not so the
limit itself tells nothing.
"""

from __future__ import annotations

from core.ratelimit import Throttle
from core.settings import get_settings


def login_per_ip() -> Throttle:
    return Throttle("login-ip", get_settings().login_ip_limit)


def login_per_account() -> Throttle:
    return Throttle("login-account", get_settings().login_account_limit)


def login_everyone() -> Throttle:
    return Throttle("login-all", get_settings().login_global_limit)


def signup_per_ip() -> Throttle:
    return Throttle("signup-ip", get_settings().signup_ip_limit)


def signup_everyone() -> Throttle:
    return Throttle("signup-all", get_settings().signup_global_limit)


def code_checks_per_ip() -> Throttle:
    return Throttle("code-ip", get_settings().account_code_ip_limit)


def mails_per_address() -> Throttle:
    return Throttle("mail-address", get_settings().account_mail_limit)
