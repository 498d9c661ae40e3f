"""The call_events function and the calls capability: ACS events parsed at the edge into typed
events, CallEnded clearing only the call it ended, future-dated events skipped, and the
call-started push fan-out as a resumable reconciler, linear in the members."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from switchboard.adapters.push_local import LocalPushHub
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.errors import DependencyUnavailable
from switchboard.runtime import Runtime, set_runtime
from switchboard.services import calls as calls_module
from switchboard.services.calls import (
    CallEnded,
    CallsService,
    CallStarted,
    SkippedEvent,
    call_index_pk,
    parse_call_event,
)
from switchboard.services.clubs import ActiveCallInfo
from tests.conftest import Client, app_server, make_runtime
from tests.proxies import spy, spy_of

# Microsoft's published CallEnded sample (learn.microsoft.com, "Azure Communication Services -
# Voice and video calling events", Microsoft.Communication.CallEnded), as Event Grid delivers it.
CALL_ENDED_EVENT = {
    "id": "530183db-987b-4a3a-b6c1-3391bab12864",
    "topic": "/subscriptions/s/resourcegroups/g/providers/microsoft.communication/"
    "communicationservices/acs",
    "subject": "call/c2VydmVyQ2FsbElk",
    "data": {
        "durationOfCall": 49.7,
        "startedBy": {
            "rawId": "8:acs:bc360ba8_0000000c",
            "communicationUser": {"id": "8:acs:bc360ba8_0000000c"},
            "role": "Attendee",
        },
        "serverCallId": "c2VydmVyQ2FsbElk",
        "group": {"id": "5b1c0a4e-3a5a-4b1e-9e58-0f1f6c1d2e3f"},
        "isTwoParty": False,
        "correlationId": "c0ffee",
        "isRoomsCall": False,
    },
    "eventType": "Microsoft.Communication.CallEnded",
    "dataVersion": "1.0",
    "metadataVersion": "1",
    "eventTime": "2021-09-22T17:03:12.6143005Z",
}
GID = "5b1c0a4e-3a5a-4b1e-9e58-0f1f6c1d2e3f"
BEFORE = datetime(2021, 9, 22, 17, 0, tzinfo=UTC)  # CALL_ENDED_EVENT's eventTime is 17:03:12
AFTER = datetime(2021, 9, 22, 17, 5, tzinfo=UTC)
APNS = {"platform": "apns", "pushChannel": "a1b2c3d4e5f6"}


def grid_event(raw: dict[str, Any]) -> func.EventGridEvent:
    from switchboard.dev.devserver import _event

    return _event(raw)


async def call_events(event: func.EventGridEvent) -> None:
    arg, handler = app_server().event_grid["call_events"]
    await handler(**{arg: event})


class Registry:
    """Stands for the clubs registry: calls registered by hand, ends recorded."""

    def __init__(self) -> None:
        self.ended: list[tuple[str, str]] = []
        self.calls: dict[str, ActiveCallInfo] = {}

    async def active_call(self, club_id: str) -> ActiveCallInfo | None:
        return self.calls.get(club_id)

    async def member_page(
        self, club_id: str, continuation: str | None, limit: int
    ) -> tuple[list[str], str | None]:
        return [], None

    async def end_call_if_current(
        self, club_id: str, group_call_id: str, ended_at: datetime | None = None
    ) -> bool:
        self.ended.append((club_id, group_call_id))
        return True


@dataclasses.dataclass
class World:
    client: Client
    hub: LocalPushHub

    @property
    def runtime(self) -> Runtime:
        return self.client.runtime


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    base = make_runtime(tmp_path, store=spy(SqliteStore(tmp_path / "switchboard.sqlite")))
    hub = LocalPushHub(tmp_path)
    rt = Runtime(base.settings, dataclasses.replace(base.adapters, push_sender=spy(hub)))
    set_runtime(rt)
    yield World(Client(rt), hub)
    set_runtime(None)
    await rt.close()


def listen(world: World) -> Registry:
    registry = Registry()
    rt = world.runtime
    rt.__dict__["calls"] = CallsService(
        rt.adapters.store, registry=registry, work=rt.work, profiles=rt.identity
    )
    return registry


async def registered(
    world: World, registry: Registry, club_id: str, gid: str, at: datetime
) -> None:
    """A club's call registered at `at`, followed by the calls reconciler (its index)."""
    registry.calls[club_id] = ActiveCallInfo(club_id, "Chess", gid.lower(), "alice", at)
    await world.runtime.calls.reconcile_call(club_id)


# -- typed events at the edge --------------------------------------------------------------------


def test_events_are_parsed_into_typed_events() -> None:
    when = datetime(2021, 9, 22, 17, 3, tzinfo=UTC)
    data = CALL_ENDED_EVENT["data"]
    assert parse_call_event("e", "Microsoft.Communication.CallEnded", when, data) == CallEnded(
        "e", when, GID
    )
    assert parse_call_event("e", "Microsoft.Communication.CallStarted", when, data) == CallStarted(
        "e", when, GID
    )
    naive = parse_call_event(
        "e", "Microsoft.Communication.CallEnded", when.replace(tzinfo=None), data
    )
    assert isinstance(naive, CallEnded)
    assert naive.event_time == when
    for event_type, time, body in [
        ("Contoso.Unknown", when, data),
        ("Microsoft.Communication.CallEnded", None, data),
        ("Microsoft.Communication.CallEnded", when, {"group": {"id": "a/b"}}),
        ("Microsoft.Communication.CallEnded", when, []),
    ]:
        assert isinstance(parse_call_event("e", event_type, time, body), SkippedEvent)


# -- CallEnded -----------------------------------------------------------------------------------


async def test_call_ended_clears_the_clubs_that_registered_that_call(world: World) -> None:
    registry = listen(world)
    await registered(world, registry, "chess", GID.upper(), BEFORE)
    await registered(world, registry, "go", GID, BEFORE)
    await call_events(grid_event(CALL_ENDED_EVENT))
    assert sorted(registry.ended) == [("chess", GID), ("go", GID)]
    # Delivered again (at least once): the index entries are gone, nothing more is cleared.
    await call_events(grid_event(CALL_ENDED_EVENT))
    assert len(registry.ended) == 2


async def test_an_old_call_ended_never_clears_a_newer_registration(world: World) -> None:
    registry = listen(world)
    await registered(world, registry, "chess", GID, AFTER)  # registered after the call ended
    await call_events(grid_event(CALL_ENDED_EVENT))
    assert registry.ended == []
    assert (await world.runtime.adapters.store.query("system", call_index_pk(GID))).items


async def test_call_started_changes_nothing(world: World) -> None:
    registry = listen(world)
    await registered(world, registry, "chess", GID, BEFORE)
    started = {**CALL_ENDED_EVENT, "eventType": "Microsoft.Communication.CallStarted"}
    await call_events(grid_event(started))
    assert registry.ended == []


async def test_an_event_dated_in_the_future_is_skipped_with_a_log_line(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A forged CallEnded dated 2099 must not clear a call (nor outrank later real events)."""
    registry = listen(world)
    await registered(world, registry, "chess", GID, BEFORE)
    caplog.set_level(logging.INFO)
    await call_events(grid_event({**CALL_ENDED_EVENT, "eventTime": "2099-01-01T00:00:00Z"}))
    assert registry.ended == []
    assert "dated in the future" in caplog.text
    soon = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()  # clocks differ a little
    await call_events(grid_event({**CALL_ENDED_EVENT, "eventTime": soon}))
    assert registry.ended == [("chess", GID)]


async def test_a_call_no_club_registered_is_ignored(world: World) -> None:
    registry = listen(world)
    await call_events(grid_event(CALL_ENDED_EVENT))
    assert registry.ended == []


@pytest.mark.parametrize(
    "raw",
    [
        {**CALL_ENDED_EVENT, "eventType": "Microsoft.Communication.CallStarted"},
        {**CALL_ENDED_EVENT, "eventType": "Microsoft.Communication.CallParticipantAdded"},
        {**CALL_ENDED_EVENT, "eventType": "Contoso.Unknown"},
        {**CALL_ENDED_EVENT, "data": {"isTwoParty": True, "serverCallId": "x"}},
        {**CALL_ENDED_EVENT, "data": {"group": {"id": "a/b"}}},
        {**CALL_ENDED_EVENT, "data": {"group": "not an object"}},
        {**CALL_ENDED_EVENT, "data": []},
        {**CALL_ENDED_EVENT, "eventTime": None},
    ],
)
async def test_other_and_malformed_events_are_skipped(
    world: World, raw: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    registry = listen(world)
    await registered(world, registry, "chess", GID, BEFORE)
    caplog.set_level(logging.INFO)
    await call_events(grid_event(raw))  # never raises
    assert registry.ended == []


async def test_an_unreadable_event_body_is_skipped(world: World) -> None:
    event = func.EventGridEvent(
        id="x",
        data=b"\xff not json",  # type: ignore[arg-type]
        topic="t",
        subject="s",
        event_type="Microsoft.Communication.CallEnded",
        event_time=None,
        data_version="1",
    )
    await call_events(event)


def test_call_events_is_an_event_grid_function() -> None:
    assert "call_events" in app_server().event_grid
    assert json.dumps(CALL_ENDED_EVENT)  # the fixture is the documented shape, JSON as sent


async def test_a_batch_with_malformed_items_still_handles_the_rest_over_the_devserver(
    world: World,
) -> None:
    """POST /runtime/webhooks/eventgrid?functionName=call_events: items that are not events at
    all (a number, a list, a validation event without its data object) are skipped; the batch
    answers 200 and the good CallEnded after them still clears the call."""
    import httpx

    registry = listen(world)
    await registered(world, registry, "chess", GID, BEFORE)
    batch: list[Any] = [
        7,
        ["not", "an", "event"],
        {"eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": []},
        CALL_ENDED_EVENT,
    ]
    transport = httpx.ASGITransport(app=app_server())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        resp = await http.post(
            "/runtime/webhooks/eventgrid", params={"functionName": "call_events"}, json=batch
        )
    assert resp.status_code == 200
    assert registry.ended == [("chess", GID)]


# -- the call-started fan-out --------------------------------------------------------------------


async def _big_club(world: World, members: int) -> tuple[str, dict[str, str]]:
    """A club of `members` (the owner included), written as the join route writes them."""
    from switchboard.services.clubs import member_doc_id

    rt = world.runtime
    owner = world.client.login("owner", "Owner")
    created = await world.client.request(
        "POST", "/api/clubs", headers=owner, json_body={"name": "Big", "visibility": "open"}
    )
    club_id = str(created.json()["clubId"])
    for n in range(1, members):
        user = f"m{n:05d}"
        await rt.adapters.store.upsert(
            "users", {"id": user, "pk": user, "userId": user, "displayName": user}
        )
        await rt.adapters.store.upsert(
            "clubs",
            {
                "id": member_doc_id(user),
                "pk": club_id,
                "type": "member",
                "clubId": club_id,
                "userId": user,
                "joinedAt": f"2026-01-01T00:00:00.{n:06d}+00:00",
                "generation": None,
            },
        )
    await rt.reactor.drain()
    return club_id, owner


async def test_the_fan_out_streams_pages_and_resumes_at_its_cursor(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """350 members in pages of 100: 4 member pages, 5 sends of 20 users a page (18 in all); a
    failure of the cursor write after the second page resends only that page on the retry."""
    monkeypatch.setattr(calls_module, "PUSH_PAGE", 100)
    club_id, owner = await _big_club(world, 350)
    hub = spy_of(world.runtime.push_sender)
    store = spy_of(world.runtime.adapters.store)
    hub.calls.clear()
    put = await world.client.request(
        "PUT", f"/api/clubs/{club_id}/call", headers=owner, json_body={"groupCallId": GID}
    )
    assert put.status == 201
    assert hub.calls == {}  # nothing is sent in the request

    # Let one page's cursor write through, then fail the next: the run stops after 2 pages.
    calls = CallsService(
        world.runtime.adapters.store,
        registry=world.runtime.clubs,
        work=world.runtime.work,
        profiles=world.runtime.identity,
        pushes=world.runtime.push,
    )
    real_advance = calls._advance
    advanced = 0

    async def flaky(state: Any, continuation: str | None) -> Any:
        nonlocal advanced
        advanced += 1
        if advanced == 2:
            raise DependencyUnavailable("store")
        return await real_advance(state, continuation)

    calls._advance = flaky  # type: ignore[method-assign]
    with pytest.raises(DependencyUnavailable):
        await calls.reconcile_call(club_id)
    assert hub.calls["send"] == 10  # two pages of 5 sends
    calls._advance = real_advance  # type: ignore[method-assign]
    store.calls.clear()
    await world.runtime.reactor.drain()
    # The second page again (its cursor was not written), then pages 3 and 4: 5 + 5 + 5 + 3.
    assert hub.calls["send"] == 10 + 18 - 5
    await world.runtime.reactor.drain()
    assert hub.calls["send"] == 23  # done: a rerun sends nothing


async def test_a_call_that_is_no_longer_news_pushes_no_one(world: World) -> None:
    club_id, owner = await _big_club(world, 3)
    rt = world.runtime
    put = await world.client.request(
        "PUT", f"/api/clubs/{club_id}/call", headers=owner, json_body={"groupCallId": GID}
    )
    assert put.status == 201
    late = CallsService(
        rt.adapters.store,
        registry=rt.clubs,
        work=rt.work,
        profiles=rt.identity,
        pushes=rt.push,
        clock=lambda: datetime.now(UTC) + timedelta(hours=1),
    )
    rt.reactions["call"] = late.reconcile_call
    spy_of(rt.push_sender).calls.clear()
    await rt.reactor.drain()
    assert spy_of(rt.push_sender).calls == {}
    # Indexed all the same.
    assert (await rt.adapters.store.query("system", call_index_pk(GID))).items
