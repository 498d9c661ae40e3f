"""The local chat provider keeps ACS's rules and its state across restarts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from switchboard.adapters.chat_local import LOCAL_SERVICE_USER, LocalChatProvider
from switchboard.ports import (
    MAX_THREAD_PARTICIPANTS,
    ChatParticipant,
    ChatThreadFull,
    ChatThreadNotFound,
)


def people(n: int, prefix: str = "p") -> list[ChatParticipant]:
    return [ChatParticipant(f"8:acs:local_{prefix}{i}", f"{prefix}{i}") for i in range(n)]


async def test_threads_are_acs_shaped_and_persist_across_restarts(tmp_path: Path) -> None:
    chat = LocalChatProvider(tmp_path)
    thread_id = await chat.create_thread("Lunch", people(2), idempotency_token="t1")
    await chat.close()

    assert re.fullmatch(r"19:acsV1_[0-9a-f]{32}@thread\.v2", thread_id)
    again = LocalChatProvider(tmp_path)
    try:
        assert again.participants(thread_id) == {
            LOCAL_SERVICE_USER,
            "8:acs:local_p0",
            "8:acs:local_p1",
        }
    finally:
        await again.close()


async def test_the_same_idempotency_token_gives_the_same_thread(tmp_path: Path) -> None:
    chat = LocalChatProvider(tmp_path)
    first = await chat.create_thread("Lunch", [], idempotency_token="same")
    second = await chat.create_thread("Lunch", [], idempotency_token="same")
    other = await chat.create_thread("Lunch", [], idempotency_token="other")
    assert first == second != other
    assert chat.thread_count() == 2
    await chat.close()


async def test_the_cap_counts_the_creator_and_a_full_add_adds_nobody(tmp_path: Path) -> None:
    chat = LocalChatProvider(tmp_path)
    thread_id = await chat.create_thread("Big", people(200, "a"), idempotency_token="t")
    await chat.add_participants(thread_id, people(MAX_THREAD_PARTICIPANTS - 202, "b"))
    assert len(chat.participants(thread_id)) == MAX_THREAD_PARTICIPANTS - 1

    with pytest.raises(ChatThreadFull):
        await chat.add_participants(thread_id, people(2, "c"))
    assert len(chat.participants(thread_id)) == MAX_THREAD_PARTICIPANTS - 1

    await chat.add_participants(thread_id, people(1, "c"))  # the last seat
    await chat.add_participants(thread_id, people(1, "a"))  # already in: no change, no error
    assert len(chat.participants(thread_id)) == MAX_THREAD_PARTICIPANTS
    await chat.close()


async def test_more_than_200_in_one_call_is_refused(tmp_path: Path) -> None:
    chat = LocalChatProvider(tmp_path)
    with pytest.raises(ValueError, match="at most 200"):
        await chat.create_thread("Big", people(201), idempotency_token="t")
    assert chat.thread_count() == 0
    await chat.close()


async def test_remove_and_delete_are_idempotent(tmp_path: Path) -> None:
    chat = LocalChatProvider(tmp_path)
    thread_id = await chat.create_thread("Lunch", people(2), idempotency_token="t")

    await chat.remove_participant(thread_id, "8:acs:local_p0")
    await chat.remove_participant(thread_id, "8:acs:local_p0")
    assert "8:acs:local_p0" not in chat.participants(thread_id)

    await chat.delete_thread(thread_id)
    await chat.delete_thread(thread_id)
    assert not chat.exists(thread_id)
    with pytest.raises(ChatThreadNotFound):
        await chat.add_participants(thread_id, people(1))
    await chat.remove_participant(thread_id, "8:acs:local_p1")  # gone: not an error
    await chat.close()


async def test_list_participants_is_everyone_but_the_service_identity(tmp_path: Path) -> None:
    chat = LocalChatProvider(tmp_path)
    thread = await chat.create_thread("t", people(3), idempotency_token="k")
    await chat.remove_participant(thread, "8:acs:local_p1")
    assert await chat.list_participants(thread) == ["8:acs:local_p0", "8:acs:local_p2"]
    await chat.delete_thread(thread)
    with pytest.raises(ChatThreadNotFound):
        await chat.list_participants(thread)
    await chat.close()
