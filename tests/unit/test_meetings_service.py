"""The meetings service with its ports by construction: observers told by the meeting's
reconciler (a failing one is retried and never fails a meeting), `require_participant` for other
capabilities, the short link's thread id looked up at the provider, the meetings settings, and
the provider the runtime picks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from switchboard import errors
from switchboard.adapters.graph_local import LocalMeetingProvider
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.errors import ConfigurationError
from switchboard.ports import DocumentStore, MeetingProvider, OnlineMeeting
from switchboard.runtime import build_meeting_provider
from switchboard.services.caller import Caller
from switchboard.services.hooks import MeetingObserver
from switchboard.services.identity import IdentityService, TokenPolicy
from switchboard.services.meetings import MeetingsService, parse_teams_link
from switchboard.services.reactions import Reactor, Work
from switchboard.settings import Settings
from tests.fakes import FakeIdentityProvider
from tests.proxies import spy, spy_of

START = datetime(2026, 11, 23, 14, tzinfo=UTC)
END = datetime(2026, 11, 23, 15, tzinfo=UTC)
ALICE, BOB = Caller("alice"), Caller("bob")


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.created: list[tuple[str, str, str | None, list[str]]] = []
        self.deleted: list[tuple[str, list[str]]] = []

    async def meeting_created(
        self, meeting_id: str, subject: str, thread_id: str | None, participant_ids: Sequence[str]
    ) -> None:
        if self.fail:
            raise RuntimeError("observer down")
        self.created.append((meeting_id, subject, thread_id, list(participant_ids)))

    async def meeting_deleted(self, meeting_id: str, participant_ids: Sequence[str]) -> None:
        if self.fail:
            raise RuntimeError("observer down")
        self.deleted.append((meeting_id, list(participant_ids)))


def _service(
    store: DocumentStore,
    provider: MeetingProvider | None,
    *,
    observers: Sequence[MeetingObserver] = (),
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> MeetingsService:
    identity = IdentityService(store, FakeIdentityProvider(), TokenPolicy(("chat",), 60))
    return MeetingsService(
        store, provider, profiles=identity, work=Work(store), observers=observers, clock=clock
    )


def _reactor(store: DocumentStore, service: MeetingsService) -> Reactor:
    return Reactor(store, {"meeting": service.reconcile_meeting}, Work(store))


class TeamsLookup(LocalMeetingProvider):
    """The local provider, but it knows one Teams meeting ID (as Graph would)."""

    async def find_by_join_meeting_id(self, join_meeting_id: str) -> OnlineMeeting | None:
        if join_meeting_id != "2345678901234":
            return None
        return OnlineMeeting("g1", "https://teams.microsoft.com/x", "19:abc@thread.v2", None, None)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "s.sqlite")
    for user in ("alice", "bob"):
        await s.create("users", {"id": user, "pk": user})
    yield s
    await s.close()


async def test_observers_are_told_by_the_reconciler_and_a_failing_one_fails_nothing(
    store: SqliteStore, tmp_path: Path
) -> None:
    failing, recorder = Recorder(fail=True), Recorder()
    service = _service(store, LocalMeetingProvider(tmp_path), observers=[recorder, failing])
    reactor = _reactor(store, service)
    made = await service.schedule(ALICE, "Sync", START, END, ["bob"])  # never fails for them
    await reactor.run_due(include_future=True)
    assert recorder.created == [(made.meeting_id, "Sync", None, ["alice", "bob"])]
    assert (await reactor.backlog()).pending == 1  # the failing observer: retried later
    failing.fail = False
    await reactor.drain()
    assert failing.created == [(made.meeting_id, "Sync", None, ["alice", "bob"])]
    await service.delete(ALICE, made.meeting_id)
    await reactor.drain()
    assert recorder.deleted == [(made.meeting_id, ["alice", "bob"])]
    assert await store.read("meetings", made.meeting_id, made.meeting_id) is None


async def test_require_participant(store: SqliteStore, tmp_path: Path) -> None:
    service = _service(store, LocalMeetingProvider(tmp_path))
    made = await service.schedule(ALICE, "Sync", START, END, ["bob"])
    for user in ("alice", "bob"):
        assert (await service.require_participant(user, made.meeting_id)).subject == "Sync"
    for user, meeting in (("carol", made.meeting_id), ("alice", "nope")):
        with pytest.raises(errors.NotFound):
            await service.require_participant(user, meeting)


async def test_short_link_thread_id_comes_from_the_provider(
    store: SqliteStore, tmp_path: Path
) -> None:
    service = _service(store, TeamsLookup(tmp_path))
    found = await service.import_meeting(
        BOB, "https://teams.microsoft.com/meet/2345678901234?p=Pw1", "Imported", START, END, []
    )
    assert (found.thread_id, found.join_meeting_id, found.passcode) == (
        "19:abc@thread.v2",
        "2345678901234",
        "Pw1",
    )
    unknown = await service.import_meeting(
        BOB, "https://teams.microsoft.com/meet/99999999?p=Pw1", "Other", START, END, []
    )
    assert unknown.thread_id is None


def test_teams_links() -> None:
    classic = parse_teams_link(
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_AbC%40thread.v2/0?context=%7b%7d"
    )
    assert classic.thread_id == "19:meeting_AbC@thread.v2"
    short = parse_teams_link("https://teams.microsoft.com/meet/123456789")
    assert (short.join_meeting_id, short.passcode) == ("123456789", None)
    with pytest.raises(errors.InvalidJoinUrl):
        parse_teams_link("https://teams.microsoft.com/meet/123456789?p=a&p=b")


def test_meetings_settings() -> None:
    assert Settings.from_environ({}).meetings_lobby_bypass == "everyone"
    assert not Settings.from_environ({}).uses_graph
    with pytest.raises(ConfigurationError, match="MEETINGS_LOBBY_BYPASS"):
        Settings.from_environ({"MEETINGS_LOBBY_BYPASS": "anyone"})
    with pytest.raises(ConfigurationError, match="GRAPH_TENANT_ID"):
        Settings.from_environ({"GRAPH_CLIENT_SECRET": "s", "GRAPH_CLIENT_ID": "c"})
    with pytest.raises(ConfigurationError, match="MEETINGS_ORGANIZER_ID"):
        Settings.from_environ({"MEETINGS_ORGANIZER_ID": "a/b"})


def test_the_runtime_picks_the_provider(tmp_path: Path) -> None:
    local = build_meeting_provider(Settings.from_environ({"SWITCHBOARD_DATA_DIR": str(tmp_path)}))
    assert local is not None
    assert local.name == "local"
    graph = build_meeting_provider(Settings.from_environ({"MEETINGS_ORGANIZER_ID": "org-1"}))
    assert graph is not None
    assert graph.name == "graph"
    azure = {
        "WEBSITE_INSTANCE_ID": "i",
        "SWITCHBOARD_STORE": "cosmos",
        "COSMOS_ENDPOINT": "https://c.documents.azure.com",
        "ACS_ENDPOINT": "https://a.communication.azure.com",
        "AUTH_MODE": "jwt",
        "AUTH_ISSUER": "https://login.example",
        "AUTH_AUDIENCE": "api",
    }
    assert build_meeting_provider(Settings.from_environ(azure)) is None


async def test_agenda_takes_meetings_overlapping_the_day_and_defaults_to_today(
    store: SqliteStore, tmp_path: Path
) -> None:
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    counted = spy(store)
    service = _service(counted, LocalMeetingProvider(tmp_path), clock=lambda: now)
    day = datetime(2026, 11, 24, tzinfo=UTC)
    spans = {
        "overnight": (day - timedelta(hours=1), day + timedelta(hours=1)),
        "all day": (day - timedelta(hours=12), day + timedelta(hours=12)),
        "ended at midnight": (day - timedelta(hours=1), day),
        "yesterday": (day - timedelta(hours=30), day - timedelta(hours=29)),
        "tomorrow": (day + timedelta(hours=24), day + timedelta(hours=25)),
        "late": (day + timedelta(hours=23), day + timedelta(hours=24)),
    }
    for subject, (start, end) in spans.items():
        await service.schedule(ALICE, subject, start, end, [])
    # A long history before the day: the query stops before reading it all.
    for n in range(150):
        old = day - timedelta(days=3 + n)
        await service.schedule(ALICE, f"old {n}", old, old + timedelta(hours=1), [])
    for asked in (None, "", "2026-11-24"):
        spy_of(counted).calls.clear()
        found = await service.agenda(ALICE, asked, None)
        assert [v.subject for v in found] == ["all day", "overnight", "late"]
        assert spy_of(counted).calls == {"query": 1}  # 156 entries, one page read


async def test_a_failed_cancel_at_the_provider_keeps_the_meeting(
    store: SqliteStore, tmp_path: Path
) -> None:
    provider = spy(LocalMeetingProvider(tmp_path))
    service = _service(store, provider)
    made = await service.schedule(ALICE, "Sync", START, END, ["bob"])
    spy_of(provider).fail["delete_meeting"] = errors.DependencyUnavailable("graph")
    with pytest.raises(errors.DependencyUnavailable):
        await service.delete(ALICE, made.meeting_id)
    assert (await service.require_participant("bob", made.meeting_id)).subject == "Sync"
    spy_of(provider).fail.clear()
    await service.delete(ALICE, made.meeting_id)
    with pytest.raises(errors.NotFound):
        await service.require_participant("bob", made.meeting_id)


@pytest.mark.parametrize(
    "failing",
    [
        "read:meetings",
        "read_many:agenda",
        "upsert:agenda",
        "delete:agenda",
        "replace:meetings",
        "delete:meetings",
        "read_many:users",
    ],
)
async def test_each_write_of_the_meeting_reconciler_failing_then_drained(
    tmp_path: Path, failing: str
) -> None:
    """The requests stand; the reconciler's reads and writes fail, it is retried and parked;
    once the store answers, a drain converges and the integrity check holds."""
    from tests.fakes import store_down
    from tests.integrity import meetings as integrity
    from tests.social import Social

    sqlite = SqliteStore(tmp_path / "s.sqlite")
    store = spy(sqlite)
    for user in ("alice", "bob", "carol"):
        await sqlite.create("users", {"id": user, "pk": user, "generation": user})
    social = Social(store, tmp_path, meeting_provider=LocalMeetingProvider(tmp_path))
    kept = await social.meetings.schedule(ALICE, "Kept", START, END, ["bob", "carol"])
    gone = await social.meetings.schedule(ALICE, "Gone", START, END, ["bob"])
    await social.reactor.drain()
    spy_of(store).fail[failing] = store_down()
    # The request may fail as well: the organizer retries it below.
    with contextlib.suppress(errors.DependencyUnavailable):
        await social.meetings.delete(ALICE, gone.meeting_id)
    await sqlite.delete("users", "carol", "carol")  # erased: she leaves the kept meeting
    await social.work.now("meeting", kept.meeting_id)
    await social.reactor.drain()  # fails and parks
    spy_of(store).fail.clear()
    await social.reactor.rearm_parked()
    with contextlib.suppress(errors.NotFound):
        await social.meetings.delete(ALICE, gone.meeting_id)
    await social.reactor.drain()
    assert await integrity.check(sqlite, social.chat_provider) == []
    assert (await social.meetings.require_participant("bob", kept.meeting_id)).invitees == ["bob"]
    with pytest.raises(errors.NotFound):
        await social.meetings.require_participant("bob", gone.meeting_id)
    await sqlite.close()
