"""The Graph meeting provider through msgraph-sdk itself, over an httpx MockTransport answering with
the bodies Microsoft Graph documents (microsoftgraph/microsoft-graph-docs-contrib,
api-reference/v1.0/api/onlinemeeting-createorget.md, onlinemeeting-update.md,
onlinemeeting-get.md with the joinMeetingIdSettings filter, onlinemeeting-delete.md; error bodies
as in /graph/errors). Every test checks what the SDK sent: method, path and body."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken

from switchboard.adapters.graph_azure import GraphMeetingProvider
from switchboard.errors import DependencyUnavailable, GraphAccessPolicyMissing
from switchboard.runtime import Runtime, set_runtime
from tests.conftest import Client, make_runtime, seed_keys

ROOT = Path(__file__).resolve().parents[2]
ORGANIZER = "5d6e7b2c-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
MEETINGS = f"/v1.0/users/{ORGANIZER}/onlineMeetings"
GRAPH_ID = "MSpkYzE3Njc0Yy04MWQ5LTRhZGItYmZiMi04ZjZhNDQyZTRkMzQqMCoqMTk6bWVldGluZ19NbU01"
THREAD = "19:meeting_MmU5NjZjNzMtNzQ2Ny00ZTA3LTliNGQtMTg4ZWRlMWIxOTgy@thread.v2"
START = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
END = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def online_meeting(scope: str = "organization", **overrides: Any) -> dict[str, Any]:
    """An onlineMeeting as createOrGet / PATCH / GET answer it (fields the docs show)."""
    body: dict[str, Any] = {
        "id": GRAPH_ID,
        "creationDateTime": "2026-11-23T10:30:18.1909168Z",
        "startDateTime": "2026-11-23T14:00:00Z",
        "endDateTime": "2026-11-23T15:00:00Z",
        "joinWebUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_MmU5NjZj%40thread.v2/0",
        "subject": "Design review",
        "isBroadcast": False,
        "autoAdmittedUsers": "EveryoneInCompany",
        "allowedPresenters": "everyone",
        "externalId": "m-1",
        "participants": {
            "organizer": {"upn": "organizer@contoso.com", "role": "presenter",
                          "identity": {"user": {"id": ORGANIZER}}},
            "attendees": [],
        },
        "lobbyBypassSettings": {"scope": scope, "isDialInBypassEnabled": False},
        "joinMeetingIdSettings": {
            "isPasscodeRequired": True,
            "joinMeetingId": "2345678901234",
            "passcode": "AbC123xY",
        },
        "chatInfo": {"threadId": THREAD, "messageId": "0", "replyChainMessageId": None},
    }  # fmt: skip
    body.update(overrides)
    return body


def graph_error(code: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": "2026-11-23T10:30:18",
                "request-id": "4e1e3d3d-3b0f-4b37-9b52-2c6b3f0a1b2c",
                "client-request-id": "4e1e3d3d-3b0f-4b37-9b52-2c6b3f0a1b2c",
            },
        }
    }


POLICY_REFUSAL = graph_error(
    "General",
    f"No application access policy found for this app. (user {ORGANIZER})",
)


class StaticTokenCredential:
    """An async credential that hands out one token and counts closes."""

    def __init__(self) -> None:
        self.closed = 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        assert scopes == ("https://graph.microsoft.com/.default",)
        return AccessToken("graph-access-token", int(datetime.now(UTC).timestamp()) + 3600)

    async def close(self) -> None:
        self.closed += 1


Answer = httpx.Response | Exception


class Graph:
    """A scripted Graph: answers in order, every request recorded."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def sent(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests]

    def body(self, index: int) -> Any:
        return json.loads(self.requests[index].content)


def reply(status: int, body: Any = None, **headers: str) -> httpx.Response:
    if body is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


@pytest.fixture
def make_provider() -> Callable[..., GraphMeetingProvider]:
    def make(graph: Graph, lobby: str = "everyone") -> GraphMeetingProvider:
        return GraphMeetingProvider(
            organizer_id=ORGANIZER,
            lobby_bypass=lobby,
            credential_factory=StaticTokenCredential,
            transport=httpx.MockTransport(graph.handler),
        )

    return make


@pytest.fixture
async def providers() -> AsyncIterator[list[GraphMeetingProvider]]:
    made: list[GraphMeetingProvider] = []
    yield made
    for provider in made:
        await provider.close()


async def create(provider: GraphMeetingProvider) -> Any:
    return await provider.create_meeting(
        external_id="m-1", subject="Design review", start=START, end=END
    )


async def test_create_is_create_or_get_then_the_lobby_setting(
    make_provider: Callable[..., GraphMeetingProvider], providers: list[GraphMeetingProvider]
) -> None:
    graph = Graph(
        reply(201, online_meeting("organization")), reply(200, online_meeting("everyone"))
    )
    provider = make_provider(graph)
    providers.append(provider)
    made = await create(provider)
    assert graph.sent() == [
        ("POST", f"{MEETINGS}/createOrGet"),
        ("PATCH", f"{MEETINGS}/{GRAPH_ID}"),
    ]
    first = graph.requests[0]
    assert first.url.host == "graph.microsoft.com"
    assert first.headers["authorization"] == "Bearer graph-access-token"
    sent = graph.body(0)
    assert sent["externalId"] == "m-1"
    assert sent["subject"] == "Design review"
    assert datetime.fromisoformat(sent["startDateTime"]) == START
    assert datetime.fromisoformat(sent["endDateTime"]) == END
    assert graph.body(1)["lobbyBypassSettings"] == {
        "isDialInBypassEnabled": False,
        "scope": "everyone",
    }
    assert set(graph.body(1)) <= {"@odata.type", "lobbyBypassSettings"}
    assert made.provider_meeting_id == GRAPH_ID
    assert made.thread_id == THREAD
    assert made.join_meeting_id == "2345678901234"
    assert made.passcode == "AbC123xY"
    assert made.join_url.startswith("https://teams.microsoft.com/l/meetup-join/")


async def test_no_patch_when_the_lobby_already_fits(
    make_provider: Callable[..., GraphMeetingProvider], providers: list[GraphMeetingProvider]
) -> None:
    graph = Graph(reply(200, online_meeting("organization")))
    providers.append(provider := make_provider(graph, lobby="organization"))
    await create(provider)
    assert graph.sent() == [("POST", f"{MEETINGS}/createOrGet")]


async def test_throttling_is_retried_inside_the_sdk_with_the_same_external_id(
    make_provider: Callable[..., GraphMeetingProvider], providers: list[GraphMeetingProvider]
) -> None:
    throttled = graph_error("TooManyRequests", "Too many requests")
    graph = Graph(
        reply(429, throttled, **{"Retry-After": "1"}), reply(201, online_meeting("everyone"))
    )
    providers.append(provider := make_provider(graph))
    made = await create(provider)
    assert graph.sent() == [("POST", f"{MEETINGS}/createOrGet")] * 2
    assert graph.body(0)["externalId"] == graph.body(1)["externalId"] == "m-1"
    assert made.provider_meeting_id == GRAPH_ID


async def test_a_long_retry_after_is_passed_on_not_slept(
    make_provider: Callable[..., GraphMeetingProvider], providers: list[GraphMeetingProvider]
) -> None:
    throttled = graph_error("TooManyRequests", "Too many requests")
    graph = Graph(reply(429, throttled, **{"Retry-After": "30"}))
    providers.append(provider := make_provider(graph))
    with pytest.raises(DependencyUnavailable) as caught:
        await create(provider)
    assert caught.value.retry_after == 30
    assert len(graph.requests) == 1


async def test_throttling_that_outlasts_the_retries_is_503_with_retry_after(
    make_provider: Callable[..., GraphMeetingProvider], providers: list[GraphMeetingProvider]
) -> None:
    throttled = graph_error("TooManyRequests", "Too many requests")
    graph = Graph(*[reply(429, throttled, **{"Retry-After": "1"}) for _ in range(3)])
    providers.append(provider := make_provider(graph))
    with pytest.raises(DependencyUnavailable) as caught:
        await create(provider)
    assert caught.value.retry_after == 1
    assert len(graph.requests) == 3  # the first try and the SDK's two retries


async def test_missing_access_policy_is_its_own_503(
    make_provider: Callable[..., GraphMeetingProvider],
    providers: list[GraphMeetingProvider],
    caplog: pytest.LogCaptureFixture,
) -> None:
    graph = Graph(reply(403, POLICY_REFUSAL))
    providers.append(provider := make_provider(graph))
    with caplog.at_level(logging.ERROR), pytest.raises(GraphAccessPolicyMissing) as caught:
        await create(provider)
    assert caught.value.status == 503
    assert caught.value.code == "graph_access_policy_missing"
    assert "application access policy" in caught.value.detail
    assert "teams-access-policy.ps1" in caplog.text
    assert "graph-access-token" not in caplog.text


@pytest.mark.parametrize(
    "answer",
    [
        reply(500, graph_error("InternalServerError", "boom")),
        reply(502, graph_error("BadGateway", "boom")),
        reply(403, graph_error("Forbidden", "Insufficient privileges")),
        reply(401, graph_error("InvalidAuthenticationToken", "Access token is empty.")),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
    ],
)
async def test_graph_down_or_refusing_is_503(
    make_provider: Callable[..., GraphMeetingProvider],
    providers: list[GraphMeetingProvider],
    answer: Answer,
) -> None:
    graph = Graph(answer)
    providers.append(provider := make_provider(graph))
    with pytest.raises(DependencyUnavailable) as caught:
        await create(provider)
    assert type(caught.value) is DependencyUnavailable
    assert caught.value.dependency == "graph"


async def test_a_failed_lobby_setting_cancels_the_new_meeting(
    make_provider: Callable[..., GraphMeetingProvider], providers: list[GraphMeetingProvider]
) -> None:
    graph = Graph(
        reply(201, online_meeting("organization")),
        reply(500, graph_error("InternalServerError", "boom")),
        reply(204),
    )
    providers.append(provider := make_provider(graph))
    with pytest.raises(DependencyUnavailable):
        await create(provider)
    assert graph.sent()[-1] == ("DELETE", f"{MEETINGS}/{GRAPH_ID}")


async def test_find_by_join_meeting_id_filters_on_it(
    make_provider: Callable[..., GraphMeetingProvider], providers: list[GraphMeetingProvider]
) -> None:
    graph = Graph(
        reply(200, {"value": [online_meeting("everyone")]}),
        reply(200, {"value": []}),
    )
    providers.append(provider := make_provider(graph))
    found = await provider.find_by_join_meeting_id("2345678901234")
    assert found is not None
    assert found.thread_id == THREAD
    request = graph.requests[0]
    assert (request.method, request.url.path) == ("GET", MEETINGS)
    assert request.url.params["$filter"] == "joinMeetingIdSettings/joinMeetingId eq '2345678901234'"
    assert await provider.find_by_join_meeting_id("1111111111") is None
    assert await provider.find_by_join_meeting_id("1' or 1 eq 1") is None  # never sent
    assert len(graph.requests) == 2


async def test_a_join_meeting_id_graph_does_not_know_is_no_meeting_not_an_error(
    make_provider: Callable[..., GraphMeetingProvider], providers: list[GraphMeetingProvider]
) -> None:
    """An imported short link is usually another organizer's meeting: Graph's 404 (or a 400 for
    an id it will not take) means "no thread id to fill in", never a 500."""
    graph = Graph(
        reply(404, graph_error("NotFound", "Specified meeting is not found.")),
        reply(400, graph_error("BadRequest", "Invalid join meeting id.")),
        reply(403, POLICY_REFUSAL),
    )
    providers.append(provider := make_provider(graph))
    assert await provider.find_by_join_meeting_id("2345678901234") is None
    assert await provider.find_by_join_meeting_id("99999999999999999999") is None
    with pytest.raises(GraphAccessPolicyMissing):
        await provider.find_by_join_meeting_id("2345678901234")
    assert graph.sent() == [("GET", MEETINGS)] * 3


async def test_delete_and_delete_of_a_meeting_already_gone(
    make_provider: Callable[..., GraphMeetingProvider], providers: list[GraphMeetingProvider]
) -> None:
    graph = Graph(
        reply(204),
        reply(404, graph_error("NotFound", "The specified online meeting cannot be found")),
        reply(403, POLICY_REFUSAL),
    )
    providers.append(provider := make_provider(graph))
    await provider.delete_meeting(GRAPH_ID)
    await provider.delete_meeting(GRAPH_ID)
    with pytest.raises(GraphAccessPolicyMissing):
        await provider.delete_meeting(GRAPH_ID)
    assert graph.sent() == [("DELETE", f"{MEETINGS}/{GRAPH_ID}")] * 3


async def test_the_client_and_credential_are_made_once_and_closed(
    make_provider: Callable[..., GraphMeetingProvider],
) -> None:
    graph = Graph(reply(204), reply(204))
    made: list[StaticTokenCredential] = []

    def factory() -> StaticTokenCredential:
        made.append(StaticTokenCredential())
        return made[-1]

    provider = GraphMeetingProvider(
        organizer_id=ORGANIZER,
        lobby_bypass="everyone",
        credential_factory=factory,
        transport=httpx.MockTransport(graph.handler),
    )
    assert made == []  # nothing before the first call
    await provider.delete_meeting("a")
    await provider.delete_meeting("b")
    assert len(made) == 1
    await provider.close()
    assert made[0].closed == 1


async def test_through_the_api_a_policy_refusal_stores_nothing(tmp_path: Path) -> None:
    graph = Graph(reply(403, POLICY_REFUSAL))
    seed_keys(tmp_path)
    provider = GraphMeetingProvider(
        organizer_id=ORGANIZER,
        lobby_bypass="everyone",
        credential_factory=StaticTokenCredential,
        transport=httpx.MockTransport(graph.handler),
    )
    rt: Runtime = make_runtime(tmp_path, meeting_provider=provider)
    set_runtime(rt)
    try:
        client = Client(rt)
        alice = client.login("alice")
        resp = await client.request(
            "POST",
            "/api/meetings",
            headers=alice,
            json_body={
                "subject": "x",
                "start": "2026-11-23T14:00:00Z",
                "end": "2026-11-23T15:00:00Z",
            },
        )
        assert resp.status == 503
        assert resp.json()["code"] == "graph_access_policy_missing"
        assert resp.headers["retry-after"] == "60"
        assert (await rt.adapters.store.query("agenda", "alice")).items == []

        graph.answers = [reply(201, online_meeting("everyone"))]
        made = await client.request(
            "POST",
            "/api/meetings",
            headers=alice,
            json_body={
                "subject": "x",
                "start": "2026-11-23T14:00:00Z",
                "end": "2026-11-23T15:00:00Z",
            },
        )
        assert made.status == 201
        meeting = made.json()
        assert meeting["provider"] == "graph"
        assert meeting["threadId"] == THREAD
        assert (meeting["joinMeetingId"], meeting["passcode"]) == ("2345678901234", "AbC123xY")
        # The externalId Graph got is the meetingId we stored: a retry finds the same meeting.
        assert graph.body(-1)["externalId"] == meeting["meetingId"]

        graph.answers = [reply(204)]
        gone = await client.request(
            "DELETE", f"/api/meetings/{meeting['meetingId']}", headers=alice
        )
        assert gone.status == 204
        assert graph.sent()[-1] == ("DELETE", f"{MEETINGS}/{GRAPH_ID}")
    finally:
        set_runtime(None)
        await rt.close()


def test_importing_the_app_imports_no_graph_sdk(tmp_path: Path) -> None:
    """`import function_app` (and building the Graph provider from settings) loads no msgraph."""
    code = (
        "import sys, function_app\n"
        "from switchboard.runtime import Runtime\n"
        "from switchboard.settings import Settings\n"
        "env = {'MEETINGS_ORGANIZER_ID': 'org', 'SWITCHBOARD_DATA_DIR': sys.argv[1]}\n"
        "s = Settings.from_environ(env)\n"
        "rt = Runtime.from_settings(s)\n"
        "assert rt.adapters.meeting_provider.name == 'graph'\n"
        "sdk = ('msgraph', 'msgraph_core', 'kiota_http', 'kiota_abstractions')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in sdk))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert result.stdout.strip() == "[]"
