"""Domain refusals: what the service says no with, by kind, with a stable code.

A flow, a read or an identity check raises one of these; none of them knows HTTP. The one
table that turns a refusal's kind (and the ledger's errors) into an HTTP status is
``api/errors.py``. ``code`` is stable and machine-readable; ``details`` name what matters (for
a duplicate claim, the first claim's reference).
"""

from __future__ import annotations

from typing import Any


class Refused(Exception):
    """The root of every refusal the service gives."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def __reduce__(self) -> tuple[Any, ...]:  # crosses from a worker process
        return (type(self), (self.code, self.message), {"details": self.details})


class NotFound(Refused):
    """What was asked for does not exist (or is not the caller's to see)."""


class Conflict(Refused):
    """The request is well formed but the state forbids it (a duplicate, a lock, a void)."""


class Invalid(Refused):
    """The request is well formed but its content is refused (a bad signature, a bad field)."""


class TooLarge(Refused):
    """The request is bigger than the service takes (an image, a batch)."""


class Unauthenticated(Refused):
    """The caller did not say who they are, or said it wrongly."""


class Forbidden(Refused):
    """The caller is known but may not do this."""


class TooMany(Refused):
    """The caller asked too often; ``retry_after_seconds`` says when to try again."""

    def __init__(self, code: str, message: str, wait: float, **details: Any) -> None:
        super().__init__(code, message, retry_after_seconds=round(wait, 1), **details)

    def __reduce__(self) -> tuple[Any, ...]:
        wait = self.details["retry_after_seconds"]
        rest = {k: v for k, v in self.details.items() if k != "retry_after_seconds"}
        return (
            type(self),
            (self.code, self.message, wait),
            {"details": {**rest, "retry_after_seconds": wait}},
        )
