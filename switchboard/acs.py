"""Facts about Azure Communication Services that the rules rely on (kept import-light)."""

# The scope names ACS knows (CommunicationTokenScope); TOKEN_SCOPES picks the allowed ones.
KNOWN_SCOPES: tuple[str, ...] = ("chat", "voip", "chat.join", "chat.join.limited", "voip.join")
# The lifetime range ACS accepts for a user access token, in minutes.
TOKEN_MINUTES_MIN = 60
TOKEN_MINUTES_MAX = 1440
# The audience of the Teams users' Entra tokens that ACS exchanges (Teams.ManageCalls/Chats).
TEAMS_TOKEN_AUDIENCE = "https://auth.msft.communication.azure.com"  # noqa: S105 (a URL)
# The delegated permissions a Teams user's Entra token must carry for the exchange (`scp`).
TEAMS_TOKEN_SCOPES: tuple[str, ...] = ("Teams.ManageCalls", "Teams.ManageChats")
