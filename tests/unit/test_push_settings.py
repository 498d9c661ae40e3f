"""NOTIFICATION_HUB_* settings: the local outbox by default, the hub with a coherent Send-rights
connection string, and start-up refusals that name the setting (never echo the key)."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.adapters.push_azure import AzurePushHub
from switchboard.adapters.push_local import LocalPushHub
from switchboard.errors import ConfigurationError
from switchboard.runtime import build_push_sender
from switchboard.settings import Settings

KV_REF = "@Microsoft.KeyVault(VaultName=v;SecretName=s)"
KEY = "c2VjcmV0LWtleS12YWx1ZQ=="
CS = (
    "Endpoint=sb://sb-ns.servicebus.windows.net/;SharedAccessKeyName=SwitchboardSend;"
    f"SharedAccessKey={KEY}"
)


async def test_no_connection_string_means_the_local_outbox(tmp_path: Path) -> None:
    settings = Settings.from_environ({"SWITCHBOARD_DATA_DIR": str(tmp_path)})
    assert not settings.uses_notification_hub
    sender = build_push_sender(settings)
    assert isinstance(sender, LocalPushHub)
    await sender.close()


async def test_a_connection_string_and_a_hub_name_mean_notification_hubs() -> None:
    settings = Settings.from_environ(
        {
            "NOTIFICATION_HUB_CONNECTION_STRING": CS,
            "NOTIFICATION_HUB_NAME": "calls",
            "NOTIFICATION_HUB_NAMESPACE": "SB-NS",
        }
    )
    assert settings.uses_notification_hub
    assert KEY not in repr(settings)
    sender = build_push_sender(settings)
    assert isinstance(sender, AzurePushHub)
    assert sender.hub_url == "https://sb-ns.servicebus.windows.net/calls"
    await sender.close()


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"NOTIFICATION_HUB_CONNECTION_STRING": CS}, "NOTIFICATION_HUB_NAME"),
        (
            {
                "NOTIFICATION_HUB_CONNECTION_STRING": "Endpoint=sb://x/",
                "NOTIFICATION_HUB_NAME": "h",
            },
            "NOTIFICATION_HUB_CONNECTION_STRING",
        ),
        (
            {
                "NOTIFICATION_HUB_CONNECTION_STRING": CS,
                "NOTIFICATION_HUB_NAME": "h",
                "NOTIFICATION_HUB_NAMESPACE": "other-ns",
            },
            "NOTIFICATION_HUB_CONNECTION_STRING",
        ),
        (
            {
                "NOTIFICATION_HUB_CONNECTION_STRING": KV_REF,
                "NOTIFICATION_HUB_NAME": "h",
            },
            "Key Vault reference",
        ),
    ],
)
def test_incoherent_push_settings_stop_start_up(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named) as raised:
        Settings.from_environ(environ)
    assert KEY not in str(raised.value)
