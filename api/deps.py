"""Request dependencies: the request's transaction, the caller, the caller's country."""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.types import Scope

from accounts.models import Role
from accounts.service import Principal, principal_from_token, studio_scope
from core.db import Outcome, read_only, transact, transact_together, unit_of_work
from core.errors import NotAuthenticated
from core.geo import COUNTRY_HEADERS, request_country
from core.scope import StudioScope
from core.settings import get_settings


def get_db() -> Iterator[Session]:
    """The request's one transaction: commit after the endpoint returns, before the response
    is sent (scope="function"), so a failed commit is a 500 and never a 200 already sent."""
    with unit_of_work() as session:
        yield session


DbSession = Annotated[Session, Depends(get_db, scope="function")]

T = TypeVar("T")


async def in_transaction(work: Callable[[Session], T]) -> T:
    """The request's one transaction in *one* threadpool call: begin, ``work``, commit (or
    roll back), close. For the busiest routes (playback decisions) instead of
    :data:`DbSession`, whose dependency opens the session in one threadpool hop and commits
    in another: a request waiting for a thread between those hops holds its connection,
    and with more requests in flight than connections and threads, every thread can end
    up waiting for a connection that only a request waiting for a thread can give back.
    Here a connection is never held while waiting for anything but the database. A
    connection found dead before the commit is replaced and the transaction run once more
    (:func:`core.db.transact`)."""
    return await run_in_threadpool(transact, work)


Work = Callable[[Session], Any]


class GroupCommit:
    """Heartbeats decided together: group commit for the busiest decision.

    A request's work waits here only while ``playback_heartbeat_batches_in_flight`` groups
    are already being decided; then everything that arrived meanwhile (up to
    ``playback_heartbeat_batch_max``) goes to the threadpool as one group, decided in one
    transaction (:func:`core.db.transact_together`): one thread hop, one connection, one
    BEGIN and one COMMIT for the group instead of per request. Requests that arrive in the
    same turn of the event loop go together too. No timer: a lone request goes at the end
    of its turn, alone; under load the groups grow by themselves. Each work still gets its
    own decision from the database, and its own answer or error; a work that raises makes
    the group run again one by one, so nothing is counted twice or lost."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Work, asyncio.Future[Any]]] = []
        self._in_flight = 0
        self._launch_scheduled = False

    async def run(self, work: Callable[[Session], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        # The work runs on a decision thread in its own request's context (request id for
        # the logs), as the framework's threadpool would run it.
        context = contextvars.copy_context()

        def in_context(session: Session) -> T:
            return context.run(work, session)

        self._waiting.append((in_context, future))
        # Launched at the end of this turn of the event loop, not at once: the requests
        # whose bytes arrived together (the server reads every ready socket in one turn)
        # then go as one group instead of one thread hop, transaction and commit each.
        # No timer: nothing waits for a later arrival.
        if not self._launch_scheduled:
            self._launch_scheduled = True
            loop.call_soon(self._launch_now)
        return cast(T, await future)

    def _launch_now(self) -> None:
        self._launch_scheduled = False
        self._launch()

    def _launch(self) -> None:
        settings = get_settings()
        while self._waiting and self._in_flight < settings.playback_heartbeat_batches_in_flight:
            group = self._waiting[: settings.playback_heartbeat_batch_max]
            del self._waiting[: len(group)]
            works = [work for work, _ in group]
            try:
                task = asyncio.get_running_loop().run_in_executor(
                    _decision_threads(), transact_together, works
                )
            except Exception as error:  # no thread to run it (shutting down): say so
                for _, future in group:
                    if not future.done():
                        future.set_exception(error)
                continue
            self._in_flight += 1
            task.add_done_callback(partial(self._finished, group))

    def _finished(
        self, group: list[tuple[Work, asyncio.Future[Any]]], task: asyncio.Future[list[Outcome]]
    ) -> None:
        self._in_flight -= 1
        outcomes: list[Outcome]
        if task.cancelled():
            outcomes = [(False, asyncio.CancelledError())] * len(group)
        elif (error := task.exception()) is not None:
            outcomes = [(False, error)] * len(group)
        else:
            outcomes = task.result()
        for (_, future), (ok, value) in zip(group, outcomes, strict=True):
            if future.done():  # the request was cancelled meanwhile (client gone)
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        self._launch()


_executor: ThreadPoolExecutor | None = None


def _decision_threads() -> ThreadPoolExecutor:
    """The decisions' own threads: a plain executor hop costs less CPU than the framework's
    shared threadpool (its capacity limiter and cancel scope; 7 % less of the API's CPU per
    viewer-hour in the audience benchmark), and slow synchronous routes elsewhere can never
    take the threads heartbeats need. Threads start only as groups need them, so there are
    never more than the groups in flight (``playback_heartbeat_batches_in_flight``, at most
    64, the executor's bound)."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="decisions")
    return _executor


# One per event loop (the futures belong to it; tests run several loops).
_groups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupCommit] = (
    weakref.WeakKeyDictionary()
)


async def in_group_transaction(work: Callable[[Session], T]) -> T:
    """:func:`in_transaction`, decided in a group with other requests of the same kind
    arriving meanwhile (:class:`GroupCommit`): for heartbeats and refreshes."""
    loop = asyncio.get_running_loop()
    group = _groups.get(loop)
    if group is None:
        group = _groups[loop] = GroupCommit()
    return await group.run(work)


def get_read_db() -> Iterator[Session]:
    """For routes that only read: no write lock on SQLite, nothing to commit."""
    with read_only() as session:
        yield session


ReadDb = Annotated[Session, Depends(get_read_db, scope="function")]

_bearer = HTTPBearer(
    auto_error=False, scheme_name="AccessToken", description="Access token from /v1/auth/login"
)


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def bearer_token(credentials: HTTPAuthorizationCredentials | None) -> str:
    """The access token sent (no I/O: checked before any transaction begins)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated(
            "send 'Authorization: Bearer <access token>'", code="not_authenticated"
        )
    return credentials.credentials


def principal_of(session: Session, token: str) -> Principal:
    """The signed-in caller (blocking: reads the account)."""
    return principal_from_token(session, token)


def get_principal(session: ReadDb, credentials: BearerCredentials) -> Principal:
    return principal_of(session, bearer_token(credentials))


CurrentUser = Annotated[Principal, Depends(get_principal)]


def require_role(*roles: Role) -> object:
    def check(principal: CurrentUser) -> Principal:
        principal.require(*roles)
        return principal

    return Depends(check)


StudioUser = Annotated[Principal, require_role(Role.studio)]
FinanceUser = Annotated[Principal, require_role(Role.finance)]
AdminUser = Annotated[Principal, require_role(Role.admin)]


def get_studio_scope(principal: CurrentUser) -> StudioScope:
    """Whose studio data the caller may touch (accounts.service.studio_scope decides)."""
    return studio_scope(principal)


# Route parameters: the role check (StudioUser, FinanceUser) says *whether* a caller may use
# a route; this says *which studios' rows* it sees. Every studio and report query takes it.
CallerScope = Annotated[StudioScope, Depends(get_studio_scope)]


class Page:
    """Offset pagination shared by every list endpoint."""

    def __init__(
        self,
        offset: Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip")] = 0,
        limit: Annotated[int, Query(ge=1, le=200, description="Items per page")] = 50,
    ) -> None:
        self.offset = offset
        self.limit = limit


PageParams = Annotated[Page, Depends()]


def get_request_country(request: Request) -> str | None:
    """The caller's ISO country, or None when it cannot be told (see core/geo.py for whose
    word we take: only trusted proxies may speak for the client)."""
    return scope_country(request.scope)


def scope_country(scope: Scope) -> str | None:
    """:func:`get_request_country` on the raw ASGI scope (for callers holding only the scope)."""
    client = scope.get("client")
    headers: dict[str, str] = {}
    forwarded: list[str] = []
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1")
        if name == "x-forwarded-for":
            # Several lines are one list in order (RFC 9110 field combination).
            forwarded.append(raw_value.decode("latin-1"))
        elif name in COUNTRY_HEADERS:
            headers[name] = raw_value.decode("latin-1")
    if forwarded:
        headers["x-forwarded-for"] = ", ".join(forwarded)
    return request_country(client[0] if client else None, headers, get_settings())


RequestCountry = Annotated[str | None, Depends(get_request_country)]


def get_locales(
    request: Request,
    lang: Annotated[
        str | None,
        Query(
            max_length=35,
            description="BCP 47 tag that overrides Accept-Language, e.g. zh-Hant",
            examples=["zh-Hant"],
        ),
    ] = None,
) -> list[str]:
    """The caller's locale preferences, best first: ``lang`` if given, else Accept-Language."""
    from catalog.locales import canonical_locale, parse_accept_language

    if lang:
        return [canonical_locale(lang)]
    return parse_accept_language(request.headers.get("accept-language"))


Locales = Annotated[list[str], Depends(get_locales)]


def get_client_ip(request: Request) -> str:
    """The client's address as core.geo sees it (behind trusted proxies: the forwarded
    client, not the proxy), for per-client limits. "unknown" when there is none."""
    from core.geo import client_address, trusted_networks

    peer = request.client.host if request.client else None
    forwarded = ", ".join(request.headers.getlist("x-forwarded-for")) or None
    trusted = trusted_networks(tuple(get_settings().trusted_proxies))
    address = client_address(peer, forwarded, trusted)
    return str(address) if address is not None else (peer or "unknown")[:45]


ClientIp = Annotated[str, Depends(get_client_ip)]


def get_mail_locale(locales: Locales) -> str:
    """The language of the mails a request causes (sign-up codes, resets): the caller's,
    with the catalog's CLDR fallback (zh-TW -> zh-Hant), among those mails are written in."""
    from accounts.mails import DEFAULT_LOCALE, LOCALES
    from catalog.locales import negotiate

    return negotiate(locales, LOCALES) or DEFAULT_LOCALE


MailLocale = Annotated[str, Depends(get_mail_locale)]

DeviceHeader = Annotated[
    str | None,
    Header(
        alias="X-Device-Id",
        max_length=128,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="The app's device id; travels with the session (claim `dev`)",
    ),
]
