"""Domain exceptions, each with the stable machine-readable `code` clients see.

Services and adapters raise these; `switchboard.http` holds the one table that turns them into
`application/problem+json` answers. Messages are written for the API's users: they never carry
a token, key, connection string, code or full phone number.
"""

from __future__ import annotations


class SwitchboardError(Exception):
    """Base of every error with a stable code; `detail` is safe to show to the caller."""

    code = "error"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class InvalidInput(SwitchboardError):
    code = "invalid_input"


class InvalidJson(InvalidInput):
    code = "invalid_json"


class InvalidScope(InvalidInput):
    code = "invalid_scope"


class InvalidTeamsToken(InvalidInput):
    code = "invalid_teams_token"


class UnsupportedMediaType(SwitchboardError):
    code = "unsupported_media_type"


class PayloadTooLarge(SwitchboardError):
    code = "payload_too_large"


class Unauthenticated(SwitchboardError):
    code = "unauthenticated"


class MissingCredentials(Unauthenticated):
    """No credentials at all (as opposed to bad ones): RFC 6750 asks for no error code then."""


class Forbidden(SwitchboardError):
    code = "forbidden"


class ScopeNotAllowed(Forbidden):
    code = "scope_not_allowed"


class NotFoundError(SwitchboardError):
    code = "not_found"


class TeamsNotConfigured(NotFoundError):
    code = "teams_not_configured"


class ConflictError(SwitchboardError):
    code = "conflict"


class TooManyRequests(SwitchboardError):
    code = "too_many_requests"

    def __init__(self, detail: str, *, retry_after: int = 60) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class DependencyUnavailable(SwitchboardError):
    """A dependency (store, ACS, Graph, SMS) is down or throttling; the caller should retry."""

    code = "dependency_unavailable"

    def __init__(self, dependency: str, *, retry_after: int = 5) -> None:
        super().__init__(f"{dependency} is unavailable right now; try again shortly.")
        self.dependency = dependency
        self.retry_after = max(1, retry_after)


class ConfigurationError(Exception):
    """A setting has a bad value: start-up stops, naming the setting."""
