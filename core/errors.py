"""Domain errors with a stable ``code`` that the apps branch on.

The API turns every :class:`AppError` into RFC 9457 problem+json; the code never changes
once published, the human ``detail`` may.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code  # type: ignore[misc]  # per-instance refinement of the class code
        self.extra = extra


class InvalidInput(AppError):
    status = 422
    code = "invalid_input"
    title = "Invalid input"


class NotAuthenticated(AppError):
    status = 401
    code = "not_authenticated"
    title = "Not authenticated"


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Gone(AppError):
    status = 410
    code = "gone"
    title = "Gone"


class TooManyRequests(AppError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"


class ServiceUnavailable(AppError):
    status = 503
    code = "unavailable"
    title = "Service unavailable"


class RetryableError(Exception):
    """A failure that another try may not repeat (a storage hiccup, a killed process).

    The job runner retries it like any exception; ``code`` and ``detail`` are what gets
    recorded if every try fails, so the domain can still name the step that broke."""

    def __init__(self, detail: str, *, code: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
