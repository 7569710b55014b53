"""The pipeline's steps and how each one fails: a stable code and a reason a studio can act on.

Every piece of work in :mod:`transcoding.pipeline` runs inside ``with step(Step.x):``. Whatever
goes wrong in it leaves as one of three things, so no failure can leave a release waiting:

* an :class:`~core.errors.AppError` (a refused input, or :class:`StepFailed`): permanent, the
  job fails at once and the release is ``failed`` with the code (``encode_failed``,
  ``package_timeout``, ...). A media tool that exits non-zero on the same input will do so
  again, so it is not retried;
* a :class:`~core.errors.RetryableError` (storage or database trouble, a tool killed by a
  signal, anything unexpected): the job runner retries it; if every try fails the release
  is ``failed`` with ``<step>_failed``;
* :class:`RunSuperseded`: the release moved on while the step ran (failed, stalled, or a
  newer run started); the job ends with nothing to do.

Optional artifacts (poster, sprite, one audio or subtitle track) do not stop a release:
:func:`warning_for` turns their failure into an entry of ``Release.warnings``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum

from celery.exceptions import SoftTimeLimitExceeded

from core.errors import AppError, RetryableError
from transcoding.tools import ToolFailed, ToolTimeout


class Step(Enum):
    probe = "probe"
    plan = "plan"
    analyse = "analyse"
    encode = "encode"
    concat = "concat"
    quality = "quality"
    audio = "audio"
    subtitles = "subtitles"
    images = "images"
    key = "key"
    package = "package"
    publish = "publish"


DOING: dict[Step, str] = {
    Step.probe: "Reading the uploaded files",
    Step.plan: "Planning the ladder",
    Step.analyse: "Measuring how many bits the film needs",
    Step.encode: "Encoding the picture",
    Step.concat: "Joining the encoded chunks",
    Step.quality: "Scoring the renditions against the master",
    Step.audio: "Encoding the audio",
    Step.subtitles: "Converting the subtitles",
    Step.images: "Making the poster and thumbnails",
    Step.key: "Creating the content key",
    Step.package: "Packaging the HLS stream",
    Step.publish: "Publishing the stream to storage",
}

_CHECK_MASTER = (
    "Check that the master plays to the end in a player (a damaged or unusual file is the "
    "usual cause), upload a corrected master if needed, then start the transcode again."
)
_TRY_AGAIN = "This looks temporary: start the transcode again."


class StepFailed(AppError):
    """A step failed in a way that would repeat on the same input."""

    status = 422
    code = "step_failed"
    title = "Transcode step failed"


class RunSuperseded(Exception):
    """The release is no longer in this run's hands (failed, stalled or started again)."""


def cause(exc: BaseException) -> str:
    """One line that says what broke: a tool's last error line, else the exception."""
    if isinstance(exc, ToolFailed):
        lines = [line.strip() for line in exc.stderr_tail.splitlines() if line.strip()]
        detail = f"{exc.tool} {exc.reason}" + (f": {lines[-1]}" if lines else "")
    elif isinstance(exc, AppError | RetryableError):
        detail = exc.detail
    else:
        detail = f"{type(exc).__name__}: {exc}"
    return detail if len(detail) <= 300 else detail[:297] + "..."


def failure_for(name: Step, exc: Exception) -> AppError | RetryableError:
    """The coded error a failure inside step ``name`` becomes."""
    doing = DOING[name]
    # The job's own time limit (Celery's soft limit) is a timeout of the step it hit.
    if isinstance(exc, ToolTimeout | SoftTimeLimitExceeded):
        return StepFailed(
            f"{doing} ran past its time limit ({cause(exc)}). Start the transcode again when "
            "the pool is less busy; if it happens again, the master is unusually slow to "
            "decode (very high bit rate or resolution).",
            code=f"{name.value}_timeout",
        )
    if isinstance(exc, ToolFailed) and not exc.killed:
        return StepFailed(
            f"{doing} failed ({cause(exc)}). {_CHECK_MASTER}", code=f"{name.value}_failed"
        )
    return RetryableError(
        f"{doing} failed ({cause(exc)}). {_TRY_AGAIN}", code=f"{name.value}_failed"
    )


@contextmanager
def step(name: Step) -> Iterator[None]:
    """Run a block as step ``name``: any failure leaves with a code (see the module doc)."""
    try:
        yield
    except (AppError, RetryableError, RunSuperseded):
        raise
    except Exception as exc:
        raise failure_for(name, exc) from exc


def warning_for(name: Step, code: str, what: str, exc: Exception | str) -> dict[str, str]:
    """A release warning for an optional artifact that failed (``what``: "the poster",
    "audio track 'Deutsch' (de)"; ``exc``: the failure or what it said)."""
    why = exc if isinstance(exc, str) else cause(exc)
    return {
        "code": code,
        "detail": f"{DOING[name]} failed for {what} ({why}); the release is playable "
        "without it. Start the transcode again to retry it, or replace the file.",
        "step": name.value,
    }
