"""The studio's commands: ``login``, ``logout``, ``upload`` and ``releases watch``. They talk
to a Pocket Cinema API over HTTP like any other client (pocketcinema.studio_api), so they
run on a studio's own machine, next to its masters."""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from pocketcinema.master_upload import upload_master
from pocketcinema.release_watch import watch_release
from pocketcinema.studio_api import (
    API_URL_ENV,
    ApiProblem,
    CredentialStore,
    StudioApi,
    api_url,
)

PARALLEL_ENV = "POCKETCINEMA_UPLOAD_PARALLEL"
INTERRUPTED = 130  # the shell's code for a run ended by Ctrl-C

ApiOption = Annotated[
    str | None,
    typer.Option("--api", help=f"The API's base URL (default: ${API_URL_ENV} or local)"),
]
releases_app = typer.Typer(help="Your releases: follow transcoding.", no_args_is_help=True)


def _refused(exc: ApiProblem | httpx.TransportError) -> typer.Exit:
    if isinstance(exc, ApiProblem):
        typer.secho(f"pocketcinema: refused: {exc.detail} ({exc.code})", fg="red", err=True)
        if exc.code == "not_signed_in" or exc.status == 401:
            typer.echo("  hint: run `pocketcinema login` (or set POCKETCINEMA_TOKEN)", err=True)
    else:
        typer.secho(f"pocketcinema: cannot reach the API ({exc})", fg="red", err=True)
    return typer.Exit(2)


@contextmanager
def _api(base_url: str | None) -> Iterator[StudioApi]:
    try:
        with StudioApi.from_environment(base_url) as api:
            yield api
    except (ApiProblem, httpx.TransportError) as exc:
        raise _refused(exc) from None


def login(
    email: Annotated[str, typer.Option(prompt=True, help="Your studio account's email")],
    api: ApiOption = None,
) -> None:
    """Sign in and keep the tokens (owner-readable file in your config directory)."""
    password = os.environ.get("POCKETCINEMA_PASSWORD") or getpass.getpass("Password: ")
    url = api_url(api)
    device = f"cli-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    try:
        credentials = StudioApi.login(url, email, password, device)
    except (ApiProblem, httpx.TransportError) as exc:
        raise _refused(exc) from None
    CredentialStore(url).save(credentials)
    typer.echo(f"signed in to {url} as {email}")


def logout(api: ApiOption = None) -> None:
    """Forget the stored sign-in for this API."""
    CredentialStore(api_url(api)).clear()
    typer.echo("signed out")


def upload(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The master")
    ],
    release: Annotated[str, typer.Option("--release", help="The release it is the master of")],
    parallel: Annotated[
        int,
        typer.Option(min=1, max=32, envvar=PARALLEL_ENV, help="Parts sent at the same time"),
    ] = 4,
    api: ApiOption = None,
) -> None:
    """Upload a master in parallel parts, each checked by SHA-256.

    Interrupted (Ctrl-C, a dropped connection), the same command resumes and sends only
    the missing parts."""
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with _api(api) as client, Progress(*columns, console=console) as progress:
        task = progress.add_task(file.name, total=None)

        def started(total: int, already: int) -> None:
            progress.update(task, total=total, completed=already)

        try:
            report = upload_master(
                client,
                file,
                release,
                parallel=parallel,
                on_start=started,
                on_bytes=lambda n: progress.advance(task, n),
            )
        except KeyboardInterrupt:
            progress.stop()
            console.print("interrupted: run the same command again to resume")
            raise typer.Exit(INTERRUPTED) from None
        except (ApiProblem, httpx.TransportError) as exc:
            progress.stop()
            console.print("the parts sent so far are kept: run the same command to resume")
            raise _refused(exc) from None
    note = " (resumed)" if report.resumed else ""
    typer.echo(
        f"uploaded {file.name}{note}: {len(report.sent_parts)} of {report.part_count} parts "
        f"sent now; asset {report.asset.get('id')} is {report.asset.get('status')}"
    )


@releases_app.command("watch")
def watch(
    release_id: Annotated[str, typer.Argument(help="The release's id")],
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between polls")] = 2.0,
    api: ApiOption = None,
) -> None:
    """Follow transcoding until the release is ready (exit 0) or failed (exit 1).

    A failure prints its reason and code: what to fix before a retry."""
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[eta]}"),
    )
    with _api(api) as client, Progress(*columns, console=console) as progress:
        task = progress.add_task("waiting", total=100.0, eta="")

        def show(release: dict[str, Any]) -> None:
            eta = release.get("eta_seconds")
            progress.update(
                task,
                description=str(release["status"]),
                completed=float(release.get("progress_percent") or 0),
                eta=f"about {eta} s left" if eta else "",
            )

        try:
            final = watch_release(client, release_id, interval=interval, on_update=show)
        except KeyboardInterrupt:
            raise typer.Exit(INTERRUPTED) from None
        except ApiProblem as exc:
            progress.stop()
            raise _refused(exc) from None
    if final["status"] == "ready":
        typer.echo(f"release {release_id} is ready")
        for warning in final.get("warnings") or []:
            typer.echo(f"  warning: {warning['detail']} ({warning['code']})")
        return
    typer.secho(
        f"release {release_id} failed: {final.get('failure_reason')} ({final.get('failure_code')})",
        fg="red",
        err=True,
    )
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(logout)
    app.command()(upload)
    app.add_typer(releases_app, name="releases")
