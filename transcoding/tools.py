"""Running the media binaries (ffmpeg, ffprobe, Shaka Packager) safely.

Every run is an argv list (never a shell), has a wall-time limit, and keeps stderr so a
failure can say what went wrong. Binary paths always come from settings so production can
point at its own builds without a code change.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.settings import get_settings

# Only the local file protocol: an accepted master must never make FFmpeg open a URL or
# anything but the files we name. `crypto` / `http` are deliberately absent.
PROTOCOL_WHITELIST = "file"

ProgressCallback = Callable[[float], None]


class ToolFailed(RuntimeError):
    """A media binary exited non-zero or ran past its wall-time limit."""

    def __init__(
        self, tool: str, reason: str, stderr_tail: str = "", returncode: int | None = None
    ) -> None:
        super().__init__(f"{tool}: {reason}" + (f"\n{stderr_tail}" if stderr_tail else ""))
        self.tool = tool
        self.reason = reason
        self.stderr_tail = stderr_tail
        self.returncode = returncode

    @property
    def killed(self) -> bool:
        """Ended by a signal (out-of-memory killer, an operator): not the input's fault."""
        return self.returncode is not None and self.returncode < 0


class ToolTimeout(ToolFailed):
    """The wall-time limit was reached; the process was killed."""


@dataclass(frozen=True)
class ToolResult:
    stdout: str
    stderr: str
    wall_seconds: float


def ffmpeg_path() -> str:
    return get_settings().ffmpeg_path


def ffprobe_path() -> str:
    return get_settings().ffprobe_path


def packager_path() -> str:
    return get_settings().packager_path


def _die_with_parent() -> None:
    """Runs in the child before exec: ask Linux to SIGKILL it when its parent dies.

    A Celery hard time limit or an OOM kill takes the worker down with SIGKILL, which gives
    us no chance to kill FFmpeg; without this the encode would run on as an orphan, holding
    CPU and the chunk's files while the retry starts elsewhere.
    """
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


_PREEXEC = _die_with_parent if sys.platform == "linux" else None


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_tool(
    argv: Sequence[str],
    *,
    timeout: float,
    stdin_bytes: bytes | None = None,
    cwd: Path | None = None,
) -> ToolResult:
    """Run ``argv`` to completion within ``timeout`` seconds; raise :class:`ToolFailed` on error."""
    tool = Path(argv[0]).name
    started = time.monotonic()
    try:
        proc = subprocess.run(
            list(argv),
            input=stdin_bytes,
            stdin=None if stdin_bytes is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            cwd=cwd,
            check=False,
            preexec_fn=_PREEXEC,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else ""
        raise ToolTimeout(
            tool, f"wall-time limit of {timeout:.0f}s reached", _tail(stderr)
        ) from exc
    stdout = proc.stdout.decode("utf-8", "replace")
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise ToolFailed(tool, f"exit status {proc.returncode}", _tail(stderr), proc.returncode)
    return ToolResult(stdout=stdout, stderr=stderr, wall_seconds=time.monotonic() - started)


def run_ffmpeg_with_progress(
    argv: Sequence[str],
    *,
    timeout: float,
    on_progress: ProgressCallback | None = None,
    cwd: Path | None = None,
) -> ToolResult:
    """Run an ffmpeg command that carries ``-progress pipe:1`` and report seconds encoded.

    stderr goes to a temporary file rather than a pipe: an encoder that logs a lot would
    otherwise fill the pipe buffer and stall while we only read stdout.
    """
    tool = Path(argv[0]).name
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=cwd,
            preexec_fn=_PREEXEC,
        )
        timed_out = threading.Event()

        def _kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout, _kill)
        timer.daemon = True
        timer.start()
        try:
            for raw in proc.stdout or ():
                key, _, value = raw.decode("ascii", "replace").strip().partition("=")
                # out_time_us is microseconds of output written; "N/A" before the first frame.
                if key == "out_time_us" and on_progress is not None and value.lstrip("-").isdigit():
                    on_progress(max(0.0, int(value) / 1_000_000))
            returncode = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    if timed_out.is_set():
        raise ToolTimeout(tool, f"wall-time limit of {timeout:.0f}s reached", _tail(stderr))
    if returncode != 0:
        raise ToolFailed(tool, f"exit status {returncode}", _tail(stderr), returncode)
    return ToolResult(stdout="", stderr=stderr, wall_seconds=time.monotonic() - started)
