"""The local rooms provider keeps ACS Rooms' rules: the roster decides who is admitted, inside the
validity window; ids shaped like ACS's; state survives a restart."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from switchboard.adapters.rooms_local import LocalRoomsProvider
from switchboard.ports import RoomNotFound, RoomParticipant

OWNER = "8:acs:local_owner"
MEMBER = "8:acs:local_member"
OUTSIDER = "8:acs:local_outsider"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_only_the_roster_is_admitted_inside_the_window(tmp_path: Path) -> None:
    clock = Clock()
    rooms = LocalRoomsProvider(tmp_path, clock=clock)
    room = await rooms.create_room(
        clock.now, clock.now + timedelta(hours=12), [RoomParticipant(OWNER, "Presenter")]
    )
    assert re.fullmatch(r"[1-9][0-9]{16}", room)
    assert rooms.admits(room, OWNER) == "Presenter"
    assert rooms.admits(room, OUTSIDER) is None  # knows the id, is not on the roster

    await rooms.add_or_update_participants(room, [RoomParticipant(MEMBER, "Attendee")])
    assert rooms.admits(room, MEMBER) == "Attendee"
    await rooms.add_or_update_participants(room, [RoomParticipant(MEMBER, "Presenter")])
    assert rooms.participants(room) == {OWNER: "Presenter", MEMBER: "Presenter"}

    clock.now += timedelta(hours=12)
    assert rooms.admits(room, OWNER) is None  # the window closed
    await rooms.close()


async def test_removal_and_deletion_are_final_and_idempotent(tmp_path: Path) -> None:
    clock = Clock()
    rooms = LocalRoomsProvider(tmp_path, clock=clock)
    room = await rooms.create_room(
        clock.now,
        clock.now + timedelta(hours=1),
        [RoomParticipant(OWNER, "Presenter"), RoomParticipant(MEMBER, "Attendee")],
    )
    await rooms.remove_participants(room, [MEMBER, OUTSIDER])
    await rooms.remove_participants(room, [MEMBER])
    assert rooms.admits(room, MEMBER) is None
    await rooms.delete_room(room)
    await rooms.delete_room(room)
    assert rooms.admits(room, OWNER) is None
    assert not rooms.exists(room)
    with pytest.raises(RoomNotFound):
        await rooms.add_or_update_participants(room, [RoomParticipant(MEMBER, "Attendee")])
    with pytest.raises(RoomNotFound):
        await rooms.add_or_update_participants("10000000000000000", [])
    await rooms.close()


async def test_windows_acs_refuses_are_refused(tmp_path: Path) -> None:
    clock = Clock()
    rooms = LocalRoomsProvider(tmp_path, clock=clock)
    with pytest.raises(ValueError, match="180 days"):
        await rooms.create_room(clock.now, clock.now + timedelta(days=181), [])
    with pytest.raises(ValueError, match="after"):
        await rooms.create_room(clock.now, clock.now, [])
    await rooms.close()


async def test_rooms_survive_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    first = LocalRoomsProvider(tmp_path, clock=clock)
    room = await first.create_room(
        clock.now, clock.now + timedelta(hours=1), [RoomParticipant(OWNER, "Presenter")]
    )
    await first.close()
    again = LocalRoomsProvider(tmp_path, clock=clock)
    assert again.admits(room, OWNER) == "Presenter"
    await again.close()
