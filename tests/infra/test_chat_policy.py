"""The chat policy is what infra/ deploys: TOKEN_SCOPES=chat.join.limited,voip by default, so
clients chat only in the threads the controller put them in (no creating threads, no changing
who is in them). The app's own default stays the contract's `chat,voip` (docs/settings.md)."""

from __future__ import annotations

import json

from switchboard.settings import Settings
from tests.infra.bicep import INFRA, load

POLICY = "chat.join.limited,voip"


def test_infra_deploys_the_limited_chat_scope_by_default() -> None:
    main = load(INFRA / "main.bicep")
    app = load(INFRA / "modules" / "functionapp.bicep")
    assert main.params["tokenScopes"].default == POLICY
    assert app.params["tokenScopes"].default == POLICY
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["tokenScopes"]["value"] == "${TOKEN_SCOPES=" + POLICY + "}"


def test_the_policy_is_a_valid_setting_and_the_app_default_is_the_contracts() -> None:
    assert Settings.from_environ({"TOKEN_SCOPES": POLICY}).token_scopes == (
        "chat.join.limited",
        "voip",
    )
    assert Settings.from_environ({}).token_scopes == ("chat", "voip")
