"""Domain exceptions, each carrying its own HTTP status, title and stable machine-readable code.

Services and adapters raise these; `switchboard.http` turns any of them into an
`application/problem+json` answer from the class attributes alone, so adding an error is adding a
class here. Messages are written for the API's users: they never carry a token, key, connection
string, code or full phone number.

Naming: domain errors have no `Error` suffix (`NotFound`, `Conflict`); the port exceptions in
`switchboard.ports` are named after the storage or provider fact (`DocumentNotFound`), so the two
never share a name.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


class SwitchboardError(Exception):
    """Base of every error with a stable code; `detail` is safe to show to the caller."""

    status = 500
    title = "Internal error"
    code = "error"
    # Further members of the problem answer, beside type/title/status/detail/code/field.
    extra: Mapping[str, str | None] = MappingProxyType({})

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class InvalidInput(SwitchboardError):
    status = 400
    title = "Invalid input"
    code = "invalid_input"


class InvalidJson(InvalidInput):
    title = "Malformed JSON"
    code = "invalid_json"


class InvalidScope(InvalidInput):
    title = "Unknown scope"
    code = "invalid_scope"


class InvalidTeamsToken(InvalidInput):
    title = "Teams token refused"
    code = "invalid_teams_token"


class InvalidJoinUrl(InvalidInput):
    title = "Not a Teams meeting link"
    code = "invalid_join_url"


class UnknownUsers(InvalidInput):
    title = "Unknown users"
    code = "unknown_users"


class InvalidText(InvalidInput):
    """A name or subject with invisible or direction-changing characters (switchboard.text)."""

    title = "Invalid text"
    code = "invalid_text"


class UnsupportedMediaType(SwitchboardError):
    status = 415
    title = "Unsupported media type"
    code = "unsupported_media_type"


class PayloadTooLarge(SwitchboardError):
    status = 413
    title = "Payload too large"
    code = "payload_too_large"


class Unauthenticated(SwitchboardError):
    status = 401
    title = "Authentication required"
    code = "unauthenticated"


class MissingCredentials(Unauthenticated):
    """No credentials at all (as opposed to bad ones): RFC 6750 asks for no error code then."""


class Forbidden(SwitchboardError):
    status = 403
    title = "Forbidden"
    code = "forbidden"


class ScopeNotAllowed(Forbidden):
    title = "Scope not allowed"
    code = "scope_not_allowed"


class NotFound(SwitchboardError):
    status = 404
    title = "Not found"
    code = "not_found"


class TeamsNotConfigured(NotFound):
    title = "Teams token exchange not configured"
    code = "teams_not_configured"


class MeetingsNotConfigured(NotFound):
    title = "Meeting scheduling not configured"
    code = "meetings_not_configured"


class MethodNotAllowed(SwitchboardError):
    """The path exists, but not with this method (the devserver answers it; OpenAPI lists it)."""

    status = 405
    title = "Method not allowed"
    code = "method_not_allowed"


class Conflict(SwitchboardError):
    status = 409
    title = "Conflict"
    code = "conflict"


class NotAMember(Forbidden):
    title = "Members only"
    code = "not_a_member"


class NotClubOwner(Forbidden):
    title = "Owner only"
    code = "not_club_owner"


class NoActiveCall(NotFound):
    title = "No active call"
    code = "no_active_call"


class ClubFull(Conflict):
    title = "Club full"
    code = "club_full"


class CallAlreadyActive(Conflict):
    """A club's call is already registered: the answer carries its `groupCallId`, or in rooms
    mode its `roomId`, to join (the one not in use is null)."""

    title = "Call already active"
    code = "call_active"

    def __init__(self, group_call_id: str | None, room_id: str | None = None) -> None:
        which = "roomId" if room_id is not None else "groupCallId"
        super().__init__(f"This club already has an active call; join it ({which}).")
        self.extra = {"groupCallId": group_call_id, "roomId": room_id}


class PushNotConfigured(NotFound):
    title = "Push not configured"
    code = "push_not_configured"


class DeviceLimitReached(Conflict):
    title = "Device limit reached"
    code = "device_limit"


class TooManyRequests(SwitchboardError):
    status = 429
    title = "Too many requests"
    code = "too_many_requests"

    def __init__(self, detail: str, *, retry_after: int = 60) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class TokenRateLimited(TooManyRequests):
    """The caller used up their token budget (TOKEN_BUDGET); other users are not affected."""

    title = "Token budget used up"
    code = "token_rate_limited"


class DependencyUnavailable(SwitchboardError):
    """A dependency (store, ACS, Graph, SMS) is down or throttling; the caller should retry."""

    status = 503
    title = "Service unavailable"
    code = "dependency_unavailable"

    def __init__(self, dependency: str, *, retry_after: int = 5) -> None:
        super().__init__(f"{dependency} is unavailable right now; try again shortly.")
        self.dependency = dependency
        self.retry_after = max(1, retry_after)


class GraphAccessPolicyMissing(DependencyUnavailable):
    """Graph refused to act for the meetings organizer: an admin must grant the Teams policy."""

    code = "graph_access_policy_missing"

    def __init__(self, *, retry_after: int = 60) -> None:
        super().__init__("graph", retry_after=retry_after)
        self.detail = (
            "Microsoft Graph refused to schedule meetings for the organizer: a Teams administrator "
            "must grant the app a Teams application access policy for MEETINGS_ORGANIZER_ID "
            "(infra/scripts/teams-access-policy.ps1), and the app's identity needs the Graph "
            "application permission OnlineMeetings.ReadWrite.All."
        )


class AcsAccessDenied(DependencyUnavailable):
    """ACS refused Switchboard's own credentials: nothing the caller can fix; an admin grants."""

    code = "acs_access_denied"

    def __init__(self, *, retry_after: int = 60) -> None:
        super().__init__("acs", retry_after=retry_after)
        self.detail = (
            "Azure Communication Services refused this server's own credentials: grant the app's "
            "managed identity (AZURE_CLIENT_ID, or the system-assigned one) the 'Communication "
            "and Email Service Owner' role on the ACS resource, or check ACS_CONNECTION_STRING."
        )


class ConfigurationError(Exception):
    """A setting has a bad value: start-up stops, naming the setting."""


class ErasureInProgress(Conflict):
    """The caller erased their account seconds ago and the purge is still running: nothing is
    created for them until it is done (issue 19 §5). A 409, not a 503: nothing is down, the
    account is in a state that forbids this for a few seconds; `Retry-After` says how long."""

    title = "Erasure in progress"
    code = "erasure_in_progress"

    def __init__(self, *, retry_after: int = 2) -> None:
        super().__init__("Your account is still being erased; sign in again in a few seconds.")
        self.retry_after = retry_after


class FriendLimit(Conflict):
    title = "Too many friends"
    code = "friend_limit"


class InviteLimit(Conflict):
    title = "Too many invite codes"
    code = "invite_limit"


class UserBlocked(Conflict):
    """The caller blocked this user: unblock first (DELETE /api/blocks/{userId})."""

    title = "User blocked"
    code = "user_blocked"


class OwnInvite(InvalidInput):
    title = "Own invite code"
    code = "own_invite"


# --- phone & SMS ------------------------------------------------------------------------------


class InvalidPhoneNumber(InvalidInput):
    title = "Invalid phone number"
    code = "invalid_phone_number"


class PhoneNumberNotAllowed(InvalidInput):
    """A valid number this server does not send SMS to: a premium-rate, shared-cost, personal
    or non-geographic (satellite, international network) number, or one outside
    SMS_ALLOWED_COUNTRIES."""

    title = "Phone number not allowed"
    code = "phone_number_not_allowed"


class InvalidCode(InvalidInput):
    title = "Wrong or expired code"
    code = "invalid_code"


class PhoneInUse(Conflict):
    title = "Phone number in use"
    code = "phone_in_use"


class RecipientOptedOut(Conflict):
    title = "Recipient opted out"
    code = "recipient_opted_out"


class SmsNotConfigured(NotFound):
    title = "SMS not configured"
    code = "sms_not_configured"
