"""The local push hub: installations and an outbox that persist under the data dir, refusing
what Notification Hubs refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.adapters.push_local import LocalPushHub
from switchboard.ports import PushInstallation, PushInstallationNotFound, PushMessage

MESSAGE = PushMessage("Alice started a call", "in Chess", {"kind": "clubCall", "clubId": "c1"})


async def test_sends_reach_the_installations_of_the_tags_and_persist(tmp_path: Path) -> None:
    hub = LocalPushHub(tmp_path)
    await hub.put_installation(PushInstallation("i-bob-1", "apns", "tok-1", "u:bob"))
    await hub.put_installation(PushInstallation("i-bob-2", "fcmv1", "tok-2", "u:bob"))
    await hub.put_installation(PushInstallation("i-carol", "apns", "tok-3", "u:carol"))
    await hub.send(MESSAGE, ["u:bob", "u:nobody"])
    await hub.close()

    reopened = LocalPushHub(tmp_path)
    [sent] = await reopened.sent()
    assert sent["tags"] == ["u:bob", "u:nobody"]
    assert sent["data"] == {"kind": "clubCall", "clubId": "c1"}
    assert sent["deliveredTo"] == [
        {"installationId": "i-bob-1", "platform": "apns"},
        {"installationId": "i-bob-2", "platform": "fcmv1"},
    ]
    assert "tok-1" not in str(sent)  # push channels are never shown
    await reopened.close()


async def test_overwrite_patch_and_delete(tmp_path: Path) -> None:
    hub = LocalPushHub(tmp_path)
    await hub.put_installation(PushInstallation("i1", "apns", "tok-1", "u:bob"))
    await hub.put_installation(PushInstallation("i1", "fcmv1", "tok-2", "u:bob"))
    assert hub.installation("i1") == {"platform": "fcmv1", "pushChannel": "tok-2", "tag": "u:bob"}
    await hub.update_push_channel("i1", "tok-3")
    assert (hub.installation("i1") or {})["pushChannel"] == "tok-3"
    await hub.delete_installation("i1")
    await hub.delete_installation("i1")  # gone already: fine
    assert hub.installation("i1") is None
    with pytest.raises(PushInstallationNotFound):
        await hub.update_push_channel("i1", "tok-4")
    await hub.send(MESSAGE, ["u:bob"])
    [sent] = await hub.sent()
    assert sent["deliveredTo"] == []
    await hub.close()


@pytest.mark.parametrize("tags", [[], [f"u:{i}" for i in range(21)]])
async def test_refuses_what_the_hub_refuses(tmp_path: Path, tags: list[str]) -> None:
    hub = LocalPushHub(tmp_path)
    with pytest.raises(ValueError, match="1 to 20"):
        await hub.send(MESSAGE, tags)
    with pytest.raises(ValueError, match="platform"):
        await hub.put_installation(PushInstallation("i1", "wns", "tok", "u:bob"))
    with pytest.raises(ValueError, match="templates"):
        await hub.send(PushMessage("t", "b", {"secret": "x"}), ["u:bob"])
    assert await hub.sent() == []
    await hub.close()
