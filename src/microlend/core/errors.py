"""Domain errors: a small hierarchy, mapped to HTTP once, in the API adapter."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a user can cause; the message is meant for that user."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationError(DomainError):
    """Input is malformed or breaks a business rule about its own content."""

    status_code = 422
    code = "validation_error"


class NotFound(DomainError):
    """The object does not exist, or belongs to another tenant (indistinguishable by design)."""

    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    """The request clashes with the current state (duplicate, wrong status, concurrent change)."""

    status_code = 409
    code = "conflict"


class PermissionDenied(DomainError):
    """The caller is known but its roles do not allow this; `permission` names what was missing when a
    permission (rather than a rule such as four eyes) is the reason."""

    status_code = 403
    code = "forbidden"

    def __init__(self, message: str, *, field: str | None = None, permission: str | None = None) -> None:
        super().__init__(message, field=field)
        self.permission = permission


class AuthenticationFailed(DomainError):
    """The caller is not who it claims, or did not say who it is."""

    status_code = 401
    code = "unauthorized"


class RateLimited(DomainError):
    """Too many attempts in a short time."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, field: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after  # seconds, sent as the Retry-After header
