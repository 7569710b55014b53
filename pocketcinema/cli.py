"""``pocketcinema``: the command line. It sits above every package and wires them together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from pocketcinema import studio_commands

app = typer.Typer(
    name="pocketcinema",
    help="Pocket Cinema: pay-per-view streaming backend.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

QUEUES = "default,transcode,package"


def fail(message: str, hint: str | None = None) -> typer.Exit:
    typer.secho(f"pocketcinema: error: {message}", fg="red", err=True)
    if hint:
        typer.echo(f"  hint: {hint}", err=True)
    return typer.Exit(2)


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn configuration and connection problems into one line and exit 2, not a traceback."""
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            name = (
                "POCKETCINEMA_" + "_".join(str(p) for p in err["loc"]).upper()
                if err["loc"]
                else "settings"
            )
            parts.append(f"{name}: {err['msg']}")
        raise fail("; ".join(parts), "see docs/configuration.md") from None
    except OperationalError as exc:
        raise fail(
            f"cannot reach the database ({str(exc.orig).strip().splitlines()[0]})",
            "check POCKETCINEMA_DATABASE_URL",
        ) from None


def _advertise(host: str, port: int) -> None:
    """Make the address this process listens on the base URL it hands out (upload targets,
    playlist and key URLs), unless one is configured. Set in the environment so the worker
    pool started by ``serve`` hands out the same one."""
    if os.environ.get("POCKETCINEMA_BASE_URL"):
        return
    # A wildcard bind is reachable at loopback on this machine; any other host is used as is.
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, host)  # noqa: S104
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    os.environ["POCKETCINEMA_BASE_URL"] = f"http://{shown}:{port}"


def load_settings() -> object:
    from core.settings import get_settings, reset_settings_cache

    reset_settings_cache()
    with clear_errors():
        settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


def _prepare(seed: bool) -> None:
    from core.logs import configure_logging
    from core.settings import Mode, get_settings
    from pocketcinema import migrate as migrations

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    with clear_errors():
        migrations.upgrade()
        if seed and settings.mode is Mode.development:
            from pocketcinema.seed import seed_demo

            seed_demo()


def _check_broker() -> None:
    from core.queue import check_broker
    from core.settings import get_settings

    try:
        check_broker(timeout=5)
    except Exception as exc:
        raise fail(
            f"cannot reach the job broker ({type(exc).__name__}: {exc})",
            f"check POCKETCINEMA_BROKER_URL (now {get_settings().broker_url.split('@')[-1]})",
        ) from None


def _worker_argv(concurrency: int, beat: bool, queues: str) -> list[str]:
    from core.settings import get_settings

    settings = get_settings()
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "pocketcinema.worker",
        "worker",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        settings.log_level,
        "-Q",
        queues,
        "--hostname",
        f"worker-{os.getpid()}@%h",
    ]
    if beat:
        argv += ["--beat", "--schedule", str(settings.data_dir / "celerybeat-schedule")]
    return argv


def _stop(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    if process.poll() is not None:
        return
    # Celery's main process answers SIGTERM with a warm shutdown of its pool children.
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _die_with_parent() -> None:
    """In the worker child: get SIGTERM if ``serve`` itself is killed (Linux), so a crashed
    or SIGKILLed serve never leaves an orphan pool consuming jobs."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _pool_metrics_env() -> dict[str, str]:
    """Environment of the worker pool ``serve`` starts: its children write job counters to
    a directory the API's /metrics reads, so one scrape covers the whole machine."""
    from api.metrics import include_worker_pool
    from core.metrics import MULTIPROC_ENV, fresh_multiprocess_dir
    from core.settings import get_settings

    directory = fresh_multiprocess_dir(get_settings().data_dir / "metrics" / "pool")
    include_worker_pool(directory)
    return {**os.environ, MULTIPROC_ENV: str(directory)}


def _run_api(host: str, port: int, children: list[subprocess.Popen[bytes]] | None = None) -> None:
    import uvicorn

    from api.app import create_app
    from api.http_server import server_config
    from api.metrics import exposition_registry
    from core.heap import freeze_startup_heap
    from core.metrics import serve_metrics
    from core.settings import get_settings

    settings = get_settings()
    if settings.metrics_port is not None:
        serve_metrics(
            settings.metrics_port,
            exposition_registry(),
            settings.metrics_token.get_secret_value(),
            host=host,
        )

    class Server(uvicorn.Server):
        # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, which would kill us
        # before the worker pool is stopped; we stop the pool, then exit normally.
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = {
                sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)
            }
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    config = server_config(create_app(), host, port)
    freeze_startup_heap()  # after the app is built: core/heap.py says why
    try:
        Server(config).run()
    finally:
        for process in children or []:
            _stop(process)
        typer.echo("pocketcinema: stopped")


Port = Annotated[int, typer.Option(help="TCP port for the API", min=1, max=65535)]
Host = Annotated[str, typer.Option(help="Interface to listen on")]


@app.command()
def serve(
    port: Port = 8000,
    host: Host = "127.0.0.1",
    workers: Annotated[int, typer.Option(help="Worker processes in the pool", min=1, max=64)] = 2,
) -> None:
    """Run the API and the worker pool together (the embedded default: no server needed)."""
    _advertise(host, port)
    load_settings()
    _prepare(seed=True)
    _check_broker()
    worker = subprocess.Popen(
        _worker_argv(workers, beat=True, queues=QUEUES),
        start_new_session=True,  # Ctrl-C reaches us; we stop the pool in order
        preexec_fn=_die_with_parent,
        env=_pool_metrics_env(),
    )
    typer.echo(f"pocketcinema: API on http://{host}:{port}  worker pool: {workers} processes")
    _run_api(host, port, children=[worker])


@app.command()
def api(port: Port = 8000, host: Host = "127.0.0.1") -> None:
    """Run the API only (workers run elsewhere)."""
    _advertise(host, port)
    load_settings()
    _prepare(seed=False)
    _run_api(host, port)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Processes in this pool", min=1, max=64)] = 2,
    queues: Annotated[str, typer.Option(help="Comma-separated queues to consume")] = QUEUES,
    beat: Annotated[
        bool, typer.Option(help="Also run the periodic scheduler (one per cluster)")
    ] = False,
) -> None:
    """Run a worker pool only; it exports its job counters on POCKETCINEMA_WORKER_METRICS_PORT."""
    from core.metrics import EXPORT_PORT_ENV, MULTIPROC_ENV, fresh_multiprocess_dir

    settings = load_settings()
    _check_broker()
    port = int(getattr(settings, "worker_metrics_port"))  # noqa: B009
    if port:
        # Set before Celery starts: prometheus_client chooses multiprocess storage on import.
        directory = Path(getattr(settings, "data_dir")) / "metrics" / f"worker-{port}"  # noqa: B009
        os.environ[MULTIPROC_ENV] = str(fresh_multiprocess_dir(directory))
        os.environ[EXPORT_PORT_ENV] = str(port)
    os.execv(sys.executable, _worker_argv(concurrency, beat=beat, queues=queues))  # noqa: S606


@app.command()
def beat() -> None:
    """Run the periodic scheduler (outbox sweep, roll-ups); exactly one per cluster."""
    settings = load_settings()
    _check_broker()
    schedule = str(Path(getattr(settings, "data_dir")) / "celerybeat-schedule")  # noqa: B009
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "pocketcinema.worker",
        "beat",
        "--schedule",
        schedule,
    ]
    os.execv(sys.executable, argv)  # noqa: S606


@app.command()
def migrate(
    check: Annotated[bool, typer.Option(help="Fail if models and migrations disagree")] = False,
) -> None:
    """Bring the database schema up to date."""
    from pocketcinema import migrate as migrations

    load_settings()
    with clear_errors():
        migrations.upgrade()
        if check:
            drift = migrations.check()
            if drift:
                raise fail(
                    f"models and migrations disagree: {drift}",
                    "run: pocketcinema makemigration 'what changed'",
                )
    typer.echo("pocketcinema: database is up to date")


@app.command("create-kek")
def create_kek(
    file: Annotated[Path, typer.Argument(help="Where to write the new key file (must not exist)")],
) -> None:
    """Make the local key-encryption key file every role mounts (POCKETCINEMA_KEK_FILE)."""
    from drm.envelope import create_key_file

    try:
        create_key_file(file)
    except FileExistsError as exc:
        raise fail(str(exc), "keep it: content keys wrapped with it open only with it") from None
    typer.echo(f"pocketcinema: wrote {file} (mode 0600); mount it at POCKETCINEMA_KEK_FILE")


@app.command()
def makemigration(message: str) -> None:
    """Write a new Alembic revision from the difference between models and database."""
    from pocketcinema import migrate as migrations

    load_settings()
    with clear_errors():
        migrations.upgrade()
        migrations.revision(message)


@app.command("create-studio")
def create_studio(
    name: Annotated[str, typer.Argument(help="The studio's name")],
    webhook_url: Annotated[
        str | None, typer.Option(help="Where release notifications are POSTed")
    ] = None,
) -> None:
    """Create a studio and print its id."""
    from accounts import service as accounts
    from core.db import unit_of_work
    from core.errors import AppError

    load_settings()
    with clear_errors():
        try:
            with unit_of_work() as session:
                studio = accounts.create_studio(session, name, webhook_url)
        except AppError as exc:
            raise fail(f"{exc.detail} ({exc.code})") from None
    typer.echo(studio.id)


@app.command("create-user")
def create_user(
    email: Annotated[str, typer.Argument(help="Sign-in email")],
    role: Annotated[str, typer.Option(help="viewer, studio, finance or admin")] = "viewer",
    studio: Annotated[
        str | None, typer.Option(help="Studio id or name (required for role studio)")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            help="Password (prompted when omitted; read POCKETCINEMA_NEW_PASSWORD if set)",
            envvar="POCKETCINEMA_NEW_PASSWORD",
        ),
    ] = None,
) -> None:
    """Create a user (e.g. the first admin) and print its id."""
    from accounts import repository
    from accounts import service as accounts
    from accounts.models import Role
    from core.db import unit_of_work
    from core.errors import AppError

    load_settings()
    try:
        chosen = Role(role)
    except ValueError:
        raise fail(f"unknown role {role!r}", "one of viewer, studio, finance, admin") from None
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with clear_errors():
        try:
            with unit_of_work() as session:
                studio_id = None
                if studio:
                    found = repository.get_studio(session, studio) or (
                        repository.get_studio_by_name(session, studio)
                    )
                    if found is None:
                        raise fail(f"no studio {studio!r}")
                    studio_id = found.id
                user = accounts.create_user(session, email, password, chosen, studio_id)
        except AppError as exc:
            raise fail(f"{exc.detail} ({exc.code})") from None
    typer.echo(user.id)


def _demo_account(email: str, password: str, role: str, studio_name: str | None = None) -> None:
    """Create (or reset the password of) one of the demo's accounts in the local database:
    the operator's bootstrap step, the one thing the demo does not do over HTTP."""
    from accounts import repository
    from accounts import service as accounts
    from accounts.models import Role
    from core.db import unit_of_work
    from core.security import hash_password
    from pocketcinema import migrate as migrations

    migrations.upgrade()
    with unit_of_work() as session:
        user = repository.get_user_by_email(session, email)
        if user is not None:
            user.password_hash = hash_password(password)
            return
        studio_id = None
        if studio_name is not None:
            studio = repository.get_studio_by_name(session, studio_name)
            studio_id = studio.id if studio else None
        accounts.create_user(session, email, password, Role(role), studio_id)


@app.command()
def demo(
    url: Annotated[
        str | None, typer.Option(help="A running service to use; default: start one for the demo")
    ] = None,
    port: Port = 8765,
    seconds: Annotated[
        int, typer.Option(help="Length of the generated film", min=12, max=600)
    ] = 30,
) -> None:
    """The whole journey through the public API: upload, encode, license, buy, watch, count."""
    from pocketcinema.demo import DemoFailed, run_demo

    load_settings()
    typer.echo("Pocket Cinema demo: a studio releases a film abroad, a viewer buys and watches it.")
    try:
        run_demo(
            url,
            port,
            seconds,
            bootstrap=lambda email, password: _demo_account(email, password, "admin"),
            reset_password=lambda email, password, studio: _demo_account(
                email, password, "studio", studio
            ),
        )
    except DemoFailed as failed:
        typer.secho(f"  ✗ {failed.step}: {failed.reason}", fg="red", err=True)
        typer.echo(f"    fix: {failed.fix}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        "\nDemo finished. Run it again: a new viewer buys another ticket and the numbers grow."
    )


fx_app = typer.Typer(help="FX reference rates for box-office reports.", no_args_is_help=True)
boxoffice_app = typer.Typer(help="Box-office roll-ups and reconciliation.", no_args_is_help=True)
app.add_typer(fx_app, name="fx")
app.add_typer(boxoffice_app, name="boxoffice")
watermark_app = typer.Typer(help="Forensic watermark: trace a leaked copy.", no_args_is_help=True)
app.add_typer(watermark_app, name="watermark")


@watermark_app.command("detect")
def watermark_detect(
    file: Annotated[Path, typer.Argument(help="A captured copy (any container FFmpeg reads)")],
    release: Annotated[
        str | None, typer.Option(help="The release it is a copy of (default: try each)")
    ] = None,
    fpr: Annotated[
        float, typer.Option(help="False-positive rate to name someone at", min=1e-15, max=0.01)
    ] = 1e-6,
) -> None:
    """Name the session, ticket and viewer a copy was captured from, or no one.

    Prints one JSON object; exits 0 when a session is named, 1 when no one is."""
    import json

    from core.db import read_only
    from core.errors import AppError
    from forensics import service as forensics

    load_settings()
    if not file.is_file():
        raise fail(f"no such file: {file}")
    with clear_errors():
        try:
            with read_only() as session:
                found = forensics.detect(session, file, release_id=release, target_fpr=fpr)
        except AppError as exc:
            raise fail(f"{exc.detail} ({exc.code})") from None
    typer.echo(json.dumps(found.as_dict(), default=str))
    if found.session_id is None:
        raise typer.Exit(1)


@fx_app.command("load")
def fx_load(
    file: Annotated[Path, typer.Argument(help="ECB-style CSV: Date,USD,JPY,… (units per EUR)")],
) -> None:
    """Load daily FX rates; days already rolled up are re-converted by the worker pool."""
    from boxoffice import service as boxoffice
    from core.db import unit_of_work
    from core.errors import AppError

    load_settings()
    if not file.is_file():
        raise fail(f"{file} is not a file")
    with clear_errors():
        try:
            with unit_of_work() as session:
                loaded = boxoffice.load_rates(
                    session, file.read_text(encoding="utf-8-sig"), source=f"cli:{file.name}"
                )
        except AppError as exc:
            raise fail(f"{exc.detail} ({exc.code})") from None
    typer.echo(
        f"loaded {loaded.rates} rates for {', '.join(loaded.currencies)} "
        f"from {loaded.first_day} to {loaded.last_day}"
    )


@fx_app.command("fetch")
def fx_fetch() -> None:
    """Fetch the ECB reference rates now (the daily file; the 90-day file when days are
    missing), as the periodic job does. Exits 1 when the fetch fails."""
    from boxoffice import service as boxoffice
    from core.db import unit_of_work

    load_settings()
    with clear_errors(), unit_of_work() as session:
        result = boxoffice.fetch_ecb_rates(session)
    if not result.ok:
        raise fail(f"the ECB fetch failed: {result.error}")
    typer.echo(
        f"fetched {result.rates} rates, latest day {result.latest_day}"
        + (" (gaps filled from the 90-day file)" if result.backfilled else "")
    )


@boxoffice_app.command("rollup")
def boxoffice_rollup(
    day: Annotated[
        str | None, typer.Argument(help="Local day YYYY-MM-DD; omit for every pending day")
    ] = None,
) -> None:
    """Roll up one day now (idempotent), or every day touched since the last roll-up."""
    from datetime import date

    from boxoffice import service as boxoffice
    from core.db import unit_of_work

    load_settings()
    with clear_errors(), unit_of_work() as session:
        if day is None:
            days = boxoffice.rollup_pending(session)
            typer.echo(f"rolled up {len(days)} day(s): {', '.join(map(str, days)) or '-'}")
            return
        try:
            parsed = date.fromisoformat(day)
        except ValueError:
            raise fail(f"{day!r} is not a YYYY-MM-DD date") from None
        rows = boxoffice.rollup_day(session, parsed)
    typer.echo(f"rolled up {parsed}: {rows} rows")


studio_commands.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
