"""Settings: contract names, defaults, and start-up refusals that name the bad setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from switchboard.errors import ConfigurationError
from switchboard.settings import (
    APP_SETTING_NAMES,
    AcsSettings,
    AuthSettings,
    PlatformSettings,
    Settings,
    StoreSettings,
)

CONTRACT_NAMES = {
    "SWITCHBOARD_STORE",
    "SWITCHBOARD_DATA_DIR",
    "COSMOS_ENDPOINT",
    "COSMOS_KEY",
    "COSMOS_DATABASE",
    "ACS_ENDPOINT",
    "ACS_CONNECTION_STRING",
    "AUTH_MODE",
    "AUTH_ISSUER",
    "AUTH_AUDIENCE",
    "AUTH_JWKS_URL",
    "AUTH_USER_CLAIM",
    "TOKEN_SCOPES",
    "TOKEN_TTL_MINUTES",
    "GRAPH_TENANT_ID",
    "GRAPH_CLIENT_ID",
    "GRAPH_CLIENT_SECRET",
    "MEETINGS_ORGANIZER_ID",
    "MEETINGS_LOBBY_BYPASS",
    "TEAMS_CLIENT_ID",
    "CALL_IDLE_HOURS",
    "PUBLIC_APP_URL",
    "SMS_DAILY_LIMIT",
    "SMS_FROM",
    "PSTN_CALLER_ID",
    "AZURE_CLIENT_ID",
}  # docs/settings.md, copied on purpose: a rename in the code must fail here


def test_every_contract_name_is_read() -> None:
    assert CONTRACT_NAMES <= APP_SETTING_NAMES


def test_embedded_defaults() -> None:
    s = Settings.from_environ({})
    assert s.switchboard_store == "sqlite"
    assert s.auth_mode == "dev"
    assert s.token_scopes == ("chat", "voip")
    assert s.token_ttl_minutes == 60
    assert s.call_idle_hours == 12
    assert s.sms_daily_limit == 20
    assert s.meetings_lobby_bypass == "everyone"
    assert not s.uses_azure_identity


def test_empty_values_count_as_unset() -> None:
    assert Settings.from_environ({"COSMOS_DATABASE": "", "AUTH_MODE": " "}).auth_mode == "dev"


def test_process_environment_does_not_leak_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_MODE", "jwt")
    assert Settings.from_environ({}).auth_mode == "dev"


def test_secrets_do_not_print() -> None:
    s = Settings.from_environ({"COSMOS_KEY": "c2VjcmV0", "ACS_CONNECTION_STRING": "endpoint=x"})
    assert "c2VjcmV0" not in repr(s)
    assert "endpoint=x" not in repr(s)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"TOKEN_SCOPES": "chat,bogus"}, "TOKEN_SCOPES"),
        ({"TOKEN_TTL_MINUTES": "30"}, "TOKEN_TTL_MINUTES"),
        ({"TOKEN_TTL_MINUTES": "sixty"}, "TOKEN_TTL_MINUTES"),
        ({"SWITCHBOARD_STORE": "postgres"}, "SWITCHBOARD_STORE"),
        ({"SWITCHBOARD_STORE": "cosmos"}, "COSMOS_ENDPOINT"),
        ({"AUTH_MODE": "magic"}, "AUTH_MODE"),
        ({"AUTH_MODE": "jwt", "AUTH_AUDIENCE": "api://x"}, "AUTH_ISSUER"),
        ({"AUTH_MODE": "jwt", "AUTH_ISSUER": "https://i.test"}, "AUTH_AUDIENCE"),
        ({"AUTH_MODE": "jwt", "AUTH_ISSUER": "http://i.test", "AUTH_AUDIENCE": "a"}, "AUTH_ISSUER"),
        ({"AUTH_MODE": "easyauth"}, "AUTH_MODE"),
        ({"CALL_IDLE_HOURS": "0"}, "CALL_IDLE_HOURS"),
        ({"SMS_DAILY_LIMIT": "-1"}, "SMS_DAILY_LIMIT"),
    ],
)
def test_bad_values_stop_startup_naming_the_setting(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_environ(environ)


AZURE = {
    "WEBSITE_INSTANCE_ID": "abc123",
    "SWITCHBOARD_STORE": "cosmos",
    "COSMOS_ENDPOINT": "https://x.documents.azure.com:443/",
    "ACS_ENDPOINT": "https://x.communication.azure.com/",
    "AUTH_MODE": "jwt",
    "AUTH_ISSUER": "https://login.microsoftonline.com/t/v2.0",
    "AUTH_AUDIENCE": "api://switchboard",
}


def test_azure_configuration_is_accepted() -> None:
    s = Settings.from_environ(AZURE)
    assert s.running_in_azure
    assert s.uses_azure_identity


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"AUTH_MODE": "dev"}, "AUTH_MODE"),
        ({"SWITCHBOARD_STORE": "sqlite"}, "SWITCHBOARD_STORE"),
        ({"ACS_ENDPOINT": ""}, "ACS_ENDPOINT"),
    ],
)
def test_local_adapters_refuse_to_run_in_azure(override: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_environ({**AZURE, **override})


def test_easyauth_needs_the_platform_to_say_it_is_on() -> None:
    s = Settings.from_environ({**AZURE, "AUTH_MODE": "easyauth", "WEBSITE_AUTH_ENABLED": "True"})
    assert s.auth_mode == "easyauth"


# Each capability's check lives in its own mixin; these prove pydantic runs every one of them
# once the mixins are combined (a same-named validator in two mixins would silently drop one).
@pytest.mark.parametrize(
    ("mixin", "values", "named"),
    [
        (StoreSettings, {"switchboard_store": "cosmos"}, "COSMOS_ENDPOINT"),
        (AuthSettings, {"auth_mode": "jwt", "auth_audience": "a"}, "AUTH_ISSUER"),
        (AcsSettings, {"website_instance_id": "abc"}, "ACS_ENDPOINT"),
    ],
)
def test_each_capability_checks_its_own_settings_alone_and_combined(
    mixin: type[BaseModel], values: dict[str, str], named: str
) -> None:
    with pytest.raises(ValidationError, match=named):
        mixin.model_validate(values)
    environ = {**AZURE, **{k.upper(): v for k, v in values.items()}}
    environ.pop(named, None)
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_environ(environ)


def test_settings_runs_every_mixins_validator() -> None:
    mixins = [c for c in Settings.__mro__ if issubclass(c, PlatformSettings)]
    declared = {name for c in mixins for name in vars(c) if name.endswith("_coherent")}
    assert {"_store_coherent", "_auth_coherent", "_acs_coherent"} <= declared
    assert declared <= set(Settings.__pydantic_decorators__.model_validators)


def test_every_setting_belongs_to_one_capability() -> None:
    mixins = [c for c in Settings.__bases__ if issubclass(c, PlatformSettings)]
    owned = set(PlatformSettings.model_fields).union(*(c.model_fields for c in mixins))
    assert owned == set(Settings.model_fields)
    assert not set(vars(Settings).get("__annotations__", {})), "fields belong in a mixin"


def test_the_data_dir_does_not_depend_on_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from switchboard.settings import PROJECT_ROOT

    monkeypatch.chdir(tmp_path)  # a server started from another folder
    assert Settings.from_environ({}).switchboard_data_dir == PROJECT_ROOT / ".switchboard"
    relative = Settings.from_environ({"SWITCHBOARD_DATA_DIR": "data/one"})
    assert relative.switchboard_data_dir == PROJECT_ROOT / "data" / "one"
    absolute = Settings.from_environ({"SWITCHBOARD_DATA_DIR": str(tmp_path / "x")})
    assert absolute.switchboard_data_dir == tmp_path / "x"
    assert (PROJECT_ROOT / "function_app.py").is_file()
