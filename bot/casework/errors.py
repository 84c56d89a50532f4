"""What can go wrong in casework, as exceptions the agency API turns into 4xx replies.

Each class carries the HTTP status it maps to (`http_status`) and, for bad input, the
`field` at fault, so every edge reports the same error the same way.
"""

from __future__ import annotations


class CaseworkError(Exception):
    http_status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(CaseworkError):
    """An unknown tracking number, or another agency's request (indistinguishable on purpose)."""

    http_status = 404


class InvalidInput(CaseworkError, ValueError):
    http_status = 422


class UnknownAgency(InvalidInput):
    pass


class UnknownService(InvalidInput):
    pass


class UnknownStatus(InvalidInput):
    pass


class StepOutOfRange(InvalidInput):
    pass


class InvalidDigits(InvalidInput):
    pass


class Conflict(CaseworkError):
    http_status = 409


class RequestClosed(Conflict):
    """Completed, rejected and cancelled requests are final."""


class InvalidTransition(Conflict):
    pass


class NumbersExhausted(Conflict):
    """An agency used all 999,999 numbers of a year."""


def check_text(value: str | None, field: str, limit: int, required: bool = False) -> str | None:
    """`value` stripped, or None when empty (refused if `required`), at most `limit` characters."""
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{field} must be text", field=field)
    text = (value or "").strip()
    if not text:
        if required:
            raise InvalidInput(f"{field} must not be empty", field=field)
        return None
    if len(text) > limit:
        raise InvalidInput(f"{field} must be at most {limit} characters", field=field)
    return text
