"""The one way out: HTTP requests to any URL a user gave us (studio webhooks, and any future one).

A URL typed by a studio must never make our worker talk to ourselves or our neighbours: the
cloud metadata service (``169.254.169.254``), Redis on ``localhost:6379``, an admin panel on a
private network. Checking the text of the URL is not enough: ``2130706433``, ``0x7f000001``,
``0177.0.0.1`` and ``127.1`` are all 127.0.0.1 to the resolver, ``[::ffff:127.0.0.1]`` is too,
and a hostname can answer with a private address, or with a public one when we check and a
private one when we connect (DNS rebinding). So:

- :func:`check_url` (save time and send time): http or https (https only in production), a
  host, no user or password, no IP literal or ``localhost`` name outside the allowed networks.
- :func:`send` resolves the host once, refuses if *any* answer is blocked, then connects to the
  checked address itself (the URL is rewritten to the IP; ``Host`` and TLS SNI keep the name,
  so virtual hosts and certificate checks work as before). Redirects are never followed,
  every phase has a timeout, and at most ``outbound_max_response_bytes`` of the answer is read.

``outbound_allowed_networks`` lists networks that are allowed anyway: on-premises receivers
(and tests that need a loopback receiver).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

import httpx

from core.errors import AppError, InvalidInput
from core.settings import Mode, Settings, get_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses it resolves to (a seam for tests: DNS that answers private).
Resolver = Callable[[str, int], Sequence[str]]


class UnsafeUrl(InvalidInput):
    """A URL we will not send requests to; ``detail`` says which rule it broke."""

    code = "unsafe_url"


class OutboundRefused(AppError):
    """Send time: the target resolved to a blocked address, or answered with a redirect."""

    status = 502
    code = "outbound_refused"
    title = "Outbound request refused"


# RFC 6761 names that always mean this machine, whatever DNS says.
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lower-case name or canonical IP text, without brackets
    port: int
    path: str  # path and query, as sent


def check_url(url: str, settings: Settings | None = None) -> Target:
    """Refuse a URL we would never send to, without touching the network."""
    settings = settings or get_settings()
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UnsafeUrl("that is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeUrl("use an http or https URL")
    if scheme != "https" and settings.mode is Mode.production:
        raise UnsafeUrl("use an https URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeUrl("a URL must not carry a user name or password")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsafeUrl("the URL has no host")
    literal = ip_literal(host)
    if literal is not None:
        refuse_address(literal, settings)
        host = str(literal)
    elif (host in _LOCAL_NAMES or host.endswith(".localhost")) and not _allowed(
        ipaddress.ip_address("127.0.0.1"), settings
    ):
        raise UnsafeUrl(f"{host} is this machine")
    path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def ip_literal(host: str) -> IPAddress | None:
    """The address a host *text* denotes, in every spelling resolvers accept: dotted, decimal
    (``2130706433``), hex (``0x7f000001``), octal (``0177.0.0.1``), short (``127.1``), IPv6."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        # inet_aton is the C resolver's own parser: it accepts exactly the legacy forms above.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def blocked_reason(address: IPAddress) -> str | None:
    """Why an address is no place for our requests, or None when it is a public host."""
    if isinstance(address, ipaddress.IPv6Address):
        # Addresses that carry an IPv4 address inside: judge the one they lead to.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return blocked_reason(embedded)
    for reason, flag in (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if flag:
            return reason
    if not address.is_global:
        return "not public"  # shared address space (100.64/10) and the like
    return None


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def refuse_address(address: IPAddress, settings: Settings) -> None:
    reason = blocked_reason(address)
    if reason is not None and not _allowed(address, settings):
        raise UnsafeUrl(f"the URL points to a {reason} address; use a public host")


def _allowed(address: IPAddress, settings: Settings) -> bool:
    return any(
        address.version == net.version and address in net
        for net in _networks(tuple(settings.outbound_allowed_networks))
    )


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


class ResolutionFailed(OSError):
    """DNS did not answer: may be temporary, so callers retry it like a network error."""


def system_resolver(host: str, port: int) -> Sequence[str]:
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ResolutionFailed(f"cannot resolve {host}: {exc.strerror}") from None
    return [str(info[4][0]) for info in answers]


def resolve_checked(target: Target, settings: Settings, resolve: Resolver) -> IPAddress:
    """Resolve once and check every answer; the first one is where we connect."""
    literal = ip_literal(target.host)
    if literal is not None:
        answers: list[IPAddress] = [literal]
    else:
        answers = [
            ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(target.host, target.port)
        ]
    if not answers:
        raise OutboundRefused(f"{target.host} has no address")
    for address in answers:
        try:
            refuse_address(address, settings)
        except UnsafeUrl as exc:
            # Refuse even when only one answer is bad: a resolver that mixes a private
            # answer in is hostile, and the client library might pick that one on retry.
            raise OutboundRefused(f"{target.host} resolves to {address}: {exc.detail}") from None
    return answers[0]


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes  # at most outbound_max_response_bytes
    truncated: bool = False  # the answer was longer than what was read


def send(
    method: str,
    url: str,
    *,
    content: bytes = b"",
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    resolve: Resolver = system_resolver,
    settings: Settings | None = None,
    verify: ssl.SSLContext | bool = True,
    max_bytes: int | None = None,
) -> Reply:
    """One guarded request. Raises :class:`UnsafeUrl` or :class:`OutboundRefused` when the
    target is not allowed, :class:`httpx.HTTPError` when the network fails. ``verify``: the
    TLS trust (the system's CAs by default; a context of its own for private CAs).
    ``max_bytes``: read at most this much of the answer (``outbound_max_response_bytes``
    by default); a caller that needs the whole answer checks ``Reply.truncated``."""
    settings = settings or get_settings()
    target = check_url(url, settings)
    address = resolve_checked(target, settings, resolve)
    ip_host = f"[{address}]" if address.version == 6 else str(address)
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    if ":" in target.host:  # an IPv6 literal keeps its brackets in Host
        host_header = f"[{target.host}]" + (
            "" if target.port == default_port else f":{target.port}"
        )
    pinned = f"{target.scheme}://{ip_host}:{target.port}{target.path}"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    limit = max_bytes if max_bytes is not None else settings.outbound_max_response_bytes
    seconds = timeout if timeout is not None else settings.outbound_timeout_seconds
    with httpx.Client(
        timeout=httpx.Timeout(seconds),
        follow_redirects=False,
        verify=verify,
        trust_env=False,  # no proxy from the environment: we connect to the checked address
    ) as client:
        request = client.build_request(
            method,
            pinned,
            content=content,
            headers={**(headers or {}), "Host": host_header},
            extensions=extensions,
        )
        response = client.send(request, stream=True)
        try:
            if response.is_redirect:
                raise OutboundRefused(
                    f"the receiver answered {response.status_code} (a redirect); "
                    "redirects are not followed"
                )
            body = bytearray()
            truncated = False
            for chunk in response.iter_bytes():
                if len(body) + len(chunk) > limit:
                    body += chunk[: limit - len(body)]
                    truncated = True
                    break  # the rest is never read; closing the stream drops it
                body += chunk
            return Reply(response.status_code, dict(response.headers), bytes(body), truncated)
        finally:
            response.close()
