"""The push figures of `make bench`: operations per device route (store and hub, counted with
PortSpy), and a club call registration with pushes for clubs of 10, 1,000 and 10,000 members —
the request's own store operations and time beside the fan-out's sends, store operations and
time from the request to its last send (on the local hub, and on a hub that answers at once),
whatever runs the fan-out (today the calls capability's reconciler, streaming member pages
into sends): the figure waits for the sends, not for a particular function.
Printed, never asserted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CLUB_SIZES = (10, 1_000, 10_000)
GID = "5b2c9c3e-0f1a-4d7e-9a44-8e2b51c0d6a1"


class InstantHub:
    """A hub that answers every call at once: what the fan-out itself costs."""

    async def put_installation(self, installation: Any) -> None: ...

    async def update_push_channel(self, installation_id: str, push_channel: str) -> None: ...

    async def delete_installation(self, installation_id: str) -> None: ...

    async def send(self, message: Any, tags: Sequence[str]) -> None: ...

    async def close(self) -> None: ...


class SendClock:
    """Wraps a hub and notes when its last send finished: the fan-out's end, however and
    wherever it runs (in the request's background, or a reconciler fed by durable work)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sends = 0
        self.last_send_at = 0.0

    async def put_installation(self, installation: Any) -> None:
        await self.inner.put_installation(installation)

    async def update_push_channel(self, installation_id: str, push_channel: str) -> None:
        await self.inner.update_push_channel(installation_id, push_channel)

    async def delete_installation(self, installation_id: str) -> None:
        await self.inner.delete_installation(installation_id)

    async def send(self, message: Any, tags: Sequence[str]) -> None:
        await self.inner.send(message, tags)
        self.sends += 1
        self.last_send_at = time.perf_counter()

    async def close(self) -> None:
        await self.inner.close()


async def _settle(rt: Any, clock: SendClock, quiet: float = 0.5, limit: float = 120.0) -> None:
    """Wait until the fan-out is over: whatever drain hooks the runtime has, then no new send
    for `quiet` seconds (the wait itself is not counted: the figure ends at the last send)."""
    for owner in ("reactor", "push"):
        drain = getattr(getattr(rt, owner, None), "drain", None)
        if callable(drain):
            await drain()
    deadline = time.monotonic() + limit
    seen, still_since = clock.sends, time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        if clock.sends != seen:
            seen, still_since = clock.sends, time.monotonic()
        elif time.monotonic() - still_since >= quiet:
            return


def _world(data: Path, hub: Any) -> Any:
    from switchboard.adapters.sqlite_store import SqliteStore
    from switchboard.runtime import Runtime, set_runtime
    from tests.conftest import Client, make_runtime
    from tests.proxies import spy

    base = make_runtime(data, store=spy(SqliteStore(data / "push.sqlite")))
    rt = Runtime(base.settings, dataclasses.replace(base.adapters, push_sender=spy(hub)))
    set_runtime(rt)
    return Client(rt)


def _counts(client: Any) -> dict[str, int]:
    from tests.proxies import spy_of

    store, hub = spy_of(client.runtime.adapters.store), spy_of(client.runtime.push_sender)
    return {
        "store": sum(store.calls.values()),
        "hub": sum(hub.calls.values()),
        **{f"store.{k}": v for k, v in sorted(store.calls.items())},
        **{f"hub.{k}": v for k, v in sorted(hub.calls.items())},
    }


def _clear(client: Any) -> None:
    from tests.proxies import spy_of

    spy_of(client.runtime.adapters.store).calls.clear()
    spy_of(client.runtime.push_sender).calls.clear()


async def device_counts() -> dict[str, dict[str, int]]:
    from switchboard.adapters.push_local import LocalPushHub
    from switchboard.runtime import set_runtime

    with tempfile.TemporaryDirectory() as tmp:
        client = _world(Path(tmp), LocalPushHub(Path(tmp)))
        bob = client.login("bob", "Bob")
        await client.request("GET", "/api/me", headers=bob)  # bob exists: count the route only
        results: dict[str, dict[str, int]] = {}
        steps = [
            ("PUT /api/me/devices/{id} (new)", "PUT", {"platform": "apns", "pushChannel": "a1"}),
            (
                "PUT /api/me/devices/{id} (new token)",
                "PUT",
                {"platform": "apns", "pushChannel": "b2"},
            ),
            (
                "PUT /api/me/devices/{id} (new platform)",
                "PUT",
                {"platform": "fcmv1", "pushChannel": "c3"},
            ),
            ("DELETE /api/me/devices/{id}", "DELETE", None),
        ]
        for label, method, body in steps:
            _clear(client)
            resp = await client.request(
                method, "/api/me/devices/phone", headers=bob, json_body=body
            )
            assert resp.status == 204, (label, resp.status)
            results[label] = _counts(client)
        set_runtime(None)
        await client.runtime.close()
    return results


async def club_call(members: int, hub_kind: str) -> dict[str, Any]:
    from switchboard.adapters.push_local import LocalPushHub
    from switchboard.runtime import set_runtime

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        clock = SendClock(LocalPushHub(data) if hub_kind == "local" else InstantHub())
        client = _world(data, clock)
        rt = client.runtime
        alice = client.login("alice", "Alice")
        created = await client.request(
            "POST", "/api/clubs", headers=alice, json_body={"name": "Bench", "visibility": "open"}
        )
        club_id = created.json()["clubId"]
        from bench.clubs import populate

        await populate(rt, club_id, members - 1)
        bob = client.login("member-00000", "Bob")
        await client.request(
            "PUT",
            "/api/me/devices/phone",
            headers=bob,
            json_body={"platform": "apns", "pushChannel": "a1"},
        )
        _clear(client)
        clock.sends = 0
        started = time.perf_counter()
        resp = await client.request(
            "PUT", f"/api/clubs/{club_id}/call", headers=alice, json_body={"groupCallId": GID}
        )
        request_ms = (time.perf_counter() - started) * 1000
        assert resp.status == 201, resp.status
        request = _counts(client)
        _clear(client)
        await _settle(rt, clock)
        fan_out_ms = max(clock.last_send_at - started, 0.0) * 1000
        background = _counts(client)
        set_runtime(None)
        await rt.close()
    return {
        "members": members,
        "hub": hub_kind,
        "request_ms": round(request_ms, 2),
        "request_store": request["store"],
        "request_sends": request.get("hub.send", 0),
        "fan_out_ms": round(fan_out_ms, 1),
        "sends": background.get("hub.send", 0),
        "background_store": background["store"],
    }


def run() -> dict[str, Any]:
    print("push: device and club-call operation counts, fan-out ...", file=sys.stderr)
    calls = [
        asyncio.run(club_call(size, hub)) for size in CLUB_SIZES for hub in ("local", "instant")
    ]
    return {"devices": asyncio.run(device_counts()), "club_calls": calls}


def report(r: dict[str, Any]) -> str:
    lines = ["", "| push: operations per request | store | hub | detail |", "|---|---|---|---|"]
    for label, counts in r["devices"].items():
        detail = ", ".join(f"{k}={v}" for k, v in counts.items() if "." in k)
        lines.append(f"| {label} | {counts['store']} | {counts['hub']} | {detail} |")
    lines += [
        "",
        "| club call registered (PUT …/call), members | hub | request: store ops, sends, ms "
        "| background fan-out: sends, store ops, ms |",
        "|---|---|---|---|",
    ]
    for c in r["club_calls"]:
        lines.append(
            f"| {c['members']:,} | {c['hub']} | {c['request_store']}, {c['request_sends']}, "
            f"{c['request_ms']} | {c['sends']}, {c['background_store']}, {c['fan_out_ms']} |"
        )
    return "\n".join(lines)


def main() -> None:
    print(report(run()))


if __name__ == "__main__":
    main()
