"""The one frozen Settings object, read once from the environment (app settings in Azure).

Field names are the app-setting names of docs/settings.md, lower-cased. A bad value stops start-up
with a
`ConfigurationError` that names the setting; secrets are `SecretStr` so they never print.

A plain frozen pydantic model read from an explicit mapping, not pydantic-settings: we use none
of its sources (no .env, no secrets dir, no nested JSON), and importing it cost 150 ms of every
cold start (measured with `python -X importtime`).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from switchboard.acs import KNOWN_SCOPES, TOKEN_MINUTES_MAX, TOKEN_MINUTES_MIN
from switchboard.errors import ConfigurationError
from switchboard.ids import is_valid_id
from switchboard.notification_hubs import ConnectionString
from switchboard.services.token_budget import DEFAULT_BUDGET, TokenBudget

# Graph's lobbyBypassScope values: who joins a Teams meeting without waiting in its lobby
# (ACS users join as anonymous guests, so only `everyone` admits them straight away).
LOBBY_BYPASS_SCOPES = (
    "everyone",
    "organization",
    "organizationAndFederated",
    "organizationExcludingGuests",
    "organizer",
    "invited",
)


class PlatformSettings(BaseModel):
    """What every capability may read: where the process runs and how it reaches Azure.

    Each capability's settings below are a mixin of this: its fields (named as its app settings)
    and its own `model_validator`, so a new capability adds one class and one base of `Settings`
    instead of growing a shared check. Validators need distinct names: pydantic runs every one it
    finds along the MRO, but a same-named one in a later class would replace an earlier one.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    # Set by the platform, not by us: where the process runs and whether Easy Auth is on.
    website_instance_id: str | None = None
    website_auth_enabled: bool = False
    # The user-assigned managed identity every Azure adapter signs in as (none: system-assigned).
    azure_client_id: str | None = None
    public_app_url: str | None = None

    @property
    def running_in_azure(self) -> bool:
        return bool(self.website_instance_id)


class TelemetrySettings(PlatformSettings):
    """Traces and metrics (switchboard/telemetry.py): off, console, otlp, or azuremonitor."""

    switchboard_telemetry: Literal["off", "console", "otlp", "azuremonitor"] = "off"


# The project folder (where function_app.py is). The embedded data folder is found from here, not
# from the current folder: a server started from elsewhere must not come up on a new, empty store
# (the users would seem gone).
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class StoreSettings(PlatformSettings):
    """The document store: embedded SQLite, or Cosmos DB in Azure."""

    switchboard_store: Literal["sqlite", "cosmos"] = "sqlite"
    switchboard_data_dir: Path = PROJECT_ROOT / ".switchboard"
    cosmos_endpoint: str | None = None
    cosmos_key: SecretStr | None = None
    cosmos_database: str = "switchboard"

    @field_validator("switchboard_data_dir")
    @classmethod
    def _data_dir_from_the_project(cls, value: Path) -> Path:
        return value if value.is_absolute() else PROJECT_ROOT / value

    @model_validator(mode="after")
    def _store_coherent(self) -> Self:
        if self.switchboard_store == "cosmos" and not self.cosmos_endpoint:
            raise _setting_error("COSMOS_ENDPOINT", "is required when SWITCHBOARD_STORE=cosmos")
        # Local adapters are for development only: refuse them in Azure, never fall back.
        if self.running_in_azure and self.switchboard_store == "sqlite":
            raise _setting_error(
                "SWITCHBOARD_STORE", "is sqlite, which is refused when running in Azure"
            )
        return self


class AuthSettings(PlatformSettings):
    """How callers sign in: dev tokens (local only), any OIDC issuer's JWTs, or Easy Auth.

    Refused at start-up, each with the reason: production auth settings (AUTH_ISSUER,
    AUTH_AUDIENCE, AUTH_JWKS_URL, AUTH_REQUIRED_SCOPE) without AUTH_MODE (the default dev mode
    would let anyone mint tokens); a user claim dev tokens cannot carry; easyauth outside Azure
    (only App Service strips client-sent principal headers) unless
    SWITCHBOARD_TRUST_PRINCIPAL_HEADERS says it is a test.
    """

    auth_mode: Literal["dev", "jwt", "easyauth"] = "dev"
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_jwks_url: str | None = None
    # The claim that names a user, in every mode (easyauth reads it under App Service's long
    # name too). Chosen once: another claim makes every user a new, empty one.
    auth_user_claim: str = "sub"
    # Delegated scopes of which a token must carry one (`scp`/`scope`), comma- or space-separated.
    auth_required_scope: tuple[str, ...] = ()
    # Tests only: trust X-MS-CLIENT-PRINCIPAL* headers outside Azure (anyone can send them).
    switchboard_trust_principal_headers: bool = False

    @field_validator("auth_required_scope", mode="before")
    @classmethod
    def _split_required_scopes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part for part in re.split(r"[\s,]+", value) if part)
        return value

    @model_validator(mode="after")
    def _auth_coherent(self) -> Self:
        production = [
            name.upper()
            for name in ("auth_issuer", "auth_audience", "auth_jwks_url", "auth_required_scope")
            if getattr(self, name)
        ]
        if production and "auth_mode" not in self.model_fields_set:
            raise _setting_error(
                "AUTH_MODE",
                f"is not set, but {', '.join(production)} is: without it the server would run "
                "dev sign-in, where anyone mints tokens. Set AUTH_MODE=jwt (or AUTH_MODE=dev to "
                "run dev sign-in on purpose)",
            )
        if self.auth_mode == "jwt":
            for name in ("auth_issuer", "auth_audience"):
                if not getattr(self, name):
                    raise _setting_error(name.upper(), "is required when AUTH_MODE=jwt")
        for name in ("auth_issuer", "auth_jwks_url"):
            url = getattr(self, name)
            if url and self.auth_mode == "jwt" and not _is_secure_url(url):
                raise _setting_error(name.upper(), "must be an https URL (http only on localhost)")
        if self.auth_mode == "dev" and self.auth_user_claim != "sub":
            raise _setting_error(
                "AUTH_USER_CLAIM",
                f"is {self.auth_user_claim}, but dev sign-in's tokens name users in sub only",
            )
        if self.auth_mode == "easyauth":
            if not self.running_in_azure and not self.switchboard_trust_principal_headers:
                raise _setting_error(
                    "AUTH_MODE",
                    "is easyauth outside Azure: only App Service strips the X-MS-CLIENT-PRINCIPAL "
                    "headers clients send, so here anyone could sign in as anyone. For a test, "
                    "set SWITCHBOARD_TRUST_PRINCIPAL_HEADERS=true",
                )
            if self.running_in_azure and not self.website_auth_enabled:
                raise _setting_error(
                    "AUTH_MODE",
                    "is easyauth but the platform does not say Easy Auth is on "
                    "(WEBSITE_AUTH_ENABLED); the principal headers would be forgeable",
                )
        if self.running_in_azure and self.auth_mode == "dev":
            raise _setting_error("AUTH_MODE", "is dev, which is refused when running in Azure")
        return self

    def describe_auth(self) -> str:
        """The auth mode for the start-up line: mode, and issuer or platform (no secrets)."""
        if self.auth_mode == "jwt":
            scope = ",".join(self.auth_required_scope) or "any (app-only tokens refused)"
            return (
                f"jwt (issuer {self.auth_issuer}, audience {self.auth_audience}, user claim "
                f"{self.auth_user_claim}, scope {scope})"
            )
        if self.auth_mode == "easyauth":
            trust = "" if self.running_in_azure else ", principal headers TRUSTED (test only)"
            return f"easyauth (user claim {self.auth_user_claim}{trust})"
        return "dev (anyone can sign in as anyone: development only)"


class AcsSettings(PlatformSettings):
    """Azure Communication Services identities and tokens (the local issuer in development)."""

    acs_endpoint: str | None = None
    acs_connection_string: SecretStr | None = None
    token_scopes: tuple[str, ...] = ("chat", "voip")
    token_ttl_minutes: int = Field(60, ge=TOKEN_MINUTES_MIN, le=TOKEN_MINUTES_MAX)
    teams_client_id: str | None = None
    # Per-user token issues in any window, `<count>/<window>` (services/token_budget.py).
    token_budget: TokenBudget = DEFAULT_BUDGET

    @field_validator("token_budget", mode="before")
    @classmethod
    def _parse_budget(cls, value: Any) -> Any:
        return TokenBudget.parse(value) if isinstance(value, str) else value

    @field_validator("token_scopes", mode="before")
    @classmethod
    def _split_scopes(cls, value: Any) -> Any:
        if value is None:
            return ("chat", "voip")
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("token_scopes")
    @classmethod
    def _known_scopes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s not in KNOWN_SCOPES]
        if unknown:
            raise ValueError(f"unknown scope(s) {unknown}; known: {', '.join(KNOWN_SCOPES)}")
        if not value:
            raise ValueError("at least one scope must be allowed")
        return value

    @model_validator(mode="after")
    def _acs_coherent(self) -> Self:
        if self.running_in_azure and not self.uses_azure_identity:
            raise _setting_error(
                "ACS_ENDPOINT",
                "(or ACS_CONNECTION_STRING) is required when running in Azure; "
                "the local token issuer is for development only",
            )
        return self

    @property
    def uses_azure_identity(self) -> bool:
        return bool(self.acs_endpoint or self.acs_connection_string)

    @property
    def acs_resource_endpoint(self) -> str | None:
        """The ACS endpoint: ACS_ENDPOINT, else the `endpoint=` part of ACS_CONNECTION_STRING
        (never the key); None in embedded mode."""
        if self.acs_endpoint:
            return self.acs_endpoint
        if self.acs_connection_string:
            for part in self.acs_connection_string.get_secret_value().split(";"):
                name, _, value = part.partition("=")
                if name.strip().lower() == "endpoint" and value.strip():
                    return value.strip()
        return None


class MeetingsSettings(PlatformSettings):
    """Teams meetings through Microsoft Graph, and how long an idle call is kept."""

    graph_tenant_id: str | None = None
    graph_client_id: str | None = None
    graph_client_secret: SecretStr | None = None
    meetings_organizer_id: str | None = None
    meetings_lobby_bypass: str = "everyone"
    call_idle_hours: int = Field(12, ge=1, le=24 * 30)
    # group: a club's call is an ACS group call id; rooms: an ACS room whose roster holds only
    # the members who asked to join (a leaked id admits nobody).
    club_calls: Literal["group", "rooms"] = "group"

    @model_validator(mode="after")
    def _meetings_coherent(self) -> Self:
        if self.meetings_lobby_bypass not in LOBBY_BYPASS_SCOPES:
            raise _setting_error(
                "MEETINGS_LOBBY_BYPASS", f"must be one of {', '.join(LOBBY_BYPASS_SCOPES)}"
            )
        if self.graph_client_secret is not None:
            for name in ("graph_tenant_id", "graph_client_id"):
                if not getattr(self, name):
                    raise _setting_error(name.upper(), "is required with GRAPH_CLIENT_SECRET")
        if self.meetings_organizer_id is not None and not is_valid_id(self.meetings_organizer_id):
            raise _setting_error("MEETINGS_ORGANIZER_ID", "is not a user id (an object id)")
        return self

    @property
    def uses_graph(self) -> bool:
        """Meetings are scheduled through Microsoft Graph (else locally, or not at all in Azure)."""
        return bool(self.meetings_organizer_id)


class SmsSettings(PlatformSettings):
    """Phone numbers and SMS: the sender, the caller id and the per-user daily limit."""

    sms_daily_limit: int = Field(20, ge=0, le=10_000)
    sms_from: str | None = None
    pstn_caller_id: str | None = None

    @field_validator("sms_from")
    @classmethod
    def _sms_sender_shape(cls, value: str | None) -> str | None:
        # What ACS sends from: an E.164 number, a short code, or an alphanumeric sender id.
        if value is not None and not _SMS_SENDER.fullmatch(value):
            raise ValueError(
                "must be an E.164 number (+14255550123), a short code or an alphanumeric sender id"
            )
        return value

    @model_validator(mode="after")
    def _sms_coherent(self) -> Self:
        if self.sms_from and not (
            getattr(self, "acs_endpoint", None) or getattr(self, "acs_connection_string", None)
        ):
            raise _setting_error(
                "SMS_FROM", "is set, so ACS_ENDPOINT or ACS_CONNECTION_STRING is required"
            )
        if self.public_app_url and not _is_secure_url(self.public_app_url):
            raise _setting_error("PUBLIC_APP_URL", "must be an https URL (http only on localhost)")
        return self

    @property
    def uses_azure_sms(self) -> bool:
        """SMS through ACS (SMS_FROM set); else the local outbox, or none at all in Azure."""
        return bool(self.sms_from)


class PushSettings(PlatformSettings):
    """The Notification Hub the controller's pushes go through (the local outbox when unset).

    `NOTIFICATION_HUB_CONNECTION_STRING` is a Send-rights connection string of the hub's namespace
    (the hub's data plane accepts SAS only); in Azure it is a Key Vault reference, resolved by the
    platform, so the app setting itself holds no key.
    """

    notification_hub_namespace: str | None = None
    notification_hub_name: str | None = None
    notification_hub_connection_string: SecretStr | None = None

    @model_validator(mode="after")
    def _push_coherent(self) -> Self:
        secret = self.notification_hub_connection_string
        if secret is None:
            # In Azure the local outbox is never used: pushes are then off (PushService says so).
            return self
        if not self.notification_hub_name:
            raise _setting_error(
                "NOTIFICATION_HUB_NAME", "is required with NOTIFICATION_HUB_CONNECTION_STRING"
            )
        if secret.get_secret_value().lstrip().startswith("@Microsoft.KeyVault("):
            # The platform leaves a reference it could not resolve as it is.
            raise _setting_error(
                "NOTIFICATION_HUB_CONNECTION_STRING",
                "is a Key Vault reference the platform could not resolve: check the secret "
                "exists and the app's identity has Key Vault Secrets User on that vault",
            )
        try:
            parsed = ConnectionString.parse(secret.get_secret_value())
        except ValueError as exc:
            raise _setting_error("NOTIFICATION_HUB_CONNECTION_STRING", str(exc)) from None
        namespace = self.notification_hub_namespace
        if namespace and parsed.namespace.lower() != namespace.lower():
            raise _setting_error(
                "NOTIFICATION_HUB_CONNECTION_STRING",
                "belongs to another namespace than NOTIFICATION_HUB_NAMESPACE",
            )
        return self

    @property
    def uses_notification_hub(self) -> bool:
        return self.notification_hub_connection_string is not None


class Settings(
    StoreSettings,
    AuthSettings,
    AcsSettings,
    MeetingsSettings,
    SmsSettings,
    PushSettings,
    TelemetrySettings,
):
    """Every setting the app reads. Build it with `load_settings()` (process) or `from_environ`.

    A new capability with settings adds its mixin (above) as one more base here.
    """

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Settings from exactly this mapping (tests, tools); raises ConfigurationError."""
        # App settings cannot be "absent" in every tool (Bicep, azd): an empty one means unset.
        values = {
            k.lower(): v for k, v in environ.items() if k.lower() in cls.model_fields and v.strip()
        }
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise _configuration_error(exc) from None


_SMS_SENDER = re.compile(r"\+[1-9][0-9]{6,14}|[0-9]{5,6}|(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")


def _is_secure_url(url: str) -> bool:
    parsed = urlparse(url)
    local = parsed.hostname in {"localhost", "127.0.0.1", "::1"}
    return parsed.scheme == "https" or (parsed.scheme == "http" and local)


def _setting_error(name: str, message: str) -> ValueError:
    return ValueError(f"{name} {message}")


def _configuration_error(exc: ValidationError) -> ConfigurationError:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(part) for part in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{loc}: {message}" if loc else message)
    return ConfigurationError("bad setting: " + "; ".join(problems))


PLATFORM_SETTING_NAMES = frozenset({"WEBSITE_INSTANCE_ID", "WEBSITE_AUTH_ENABLED"})
APP_SETTING_NAMES = frozenset(
    name.upper() for name in Settings.model_fields if name.upper() not in PLATFORM_SETTING_NAMES
)
"""Every app setting the code reads (docs/settings.md); infra/ sets exactly these, less two."""
SECRET_SETTING_NAMES = frozenset({"COSMOS_KEY", "ACS_CONNECTION_STRING", "GRAPH_CLIENT_SECRET"})
"""Key-based alternatives to managed identity: never set by infra/."""
EMBEDDED_ONLY_SETTING_NAMES = frozenset(
    {"SWITCHBOARD_DATA_DIR", "SWITCHBOARD_TRUST_PRINCIPAL_HEADERS"}
)
"""Meaningful only for the embedded adapters, which refuse to run in Azure."""


@functools.cache
def load_settings() -> Settings:
    """The process's settings, built once from the environment."""
    return Settings.from_environ(os.environ)
