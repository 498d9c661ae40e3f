"""Meetings figures: store and provider operations per create and per agenda read (counted at the
ports with PortSpy), what the meetings modules add to `import function_app` (and that no Graph
SDK comes with it), and the cost of the first Graph call — importing msgraph-sdk and sending the
first request over a zero-latency httpx transport — beside a second call.

Printed, never asserted; `python -m bench` includes them.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

RUNS = 5

# Fresh process: import function_app, then time what the meetings modules add on top of the rest.
IMPORT_PROBE = """
import sys, time
t = time.perf_counter()
import function_app
app = time.perf_counter() - t
sdk = sorted({m.split('.')[0] for m in sys.modules} & {'msgraph', 'msgraph_core', 'kiota_http'})
print(app, ','.join(sdk) or 'none')
"""
INCREMENT_PROBE = """
import sys, time
import azure.functions, pydantic, switchboard.http, switchboard.runtime, blueprints.identity
import blueprints.system
t = time.perf_counter()
import blueprints.meetings
print(time.perf_counter() - t)
"""
# Fresh process: the Graph provider's first create (msgraph import + client + request) and a
# second one, over an httpx MockTransport that answers at once.
GRAPH_PROBE = """
import asyncio, time
from datetime import UTC, datetime, timedelta
import httpx
from azure.core.credentials import AccessToken
from switchboard.adapters.graph_azure import GraphMeetingProvider

BODY = {"id": "m1", "joinWebUrl": "https://teams.microsoft.com/l/meetup-join/x/0",
        "lobbyBypassSettings": {"scope": "everyone"},
        "chatInfo": {"threadId": "19:x@thread.v2"},
        "joinMeetingIdSettings": {"joinMeetingId": "123456789", "passcode": "Pw"}}

class Credential:
    async def get_token(self, *scopes, **kwargs):
        return AccessToken("t", 2_000_000_000)
    async def close(self):
        pass

async def main():
    provider = GraphMeetingProvider(
        organizer_id="org", lobby_bypass="everyone", credential_factory=Credential,
        transport=httpx.MockTransport(lambda request: httpx.Response(201, json=BODY)))
    start = datetime(2026, 11, 23, 14, tzinfo=UTC)
    times = []
    for n in range(2):
        t = time.perf_counter()
        await provider.create_meeting(external_id=f"e{n}", subject="s", start=start,
                                      end=start + timedelta(hours=1))
        times.append(time.perf_counter() - t)
    await provider.close()
    print(times[0], times[1])

asyncio.run(main())
"""


def _run(code: str, root: Path, env: dict[str, str]) -> list[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def import_and_first_graph_call(root: Path, env: dict[str, str]) -> dict[str, Any]:
    app, increment, first, second = [], [], [], []
    sdk = "none"
    for _ in range(RUNS):
        out = _run(IMPORT_PROBE, root, env)
        app.append(float(out[0]))
        sdk = out[1]
        increment.append(float(_run(INCREMENT_PROBE, root, env)[0]))
        g1, g2 = _run(GRAPH_PROBE, root, env)
        first.append(float(g1))
        second.append(float(g2))

    def ms(samples: list[float]) -> float:
        return round(statistics.median(samples) * 1000, 2)

    return {
        "function_app_ms": ms(app),
        "meetings_modules_ms": ms(increment),
        "graph_sdk_imported_by_function_app": sdk,
        "first_graph_call_ms": ms(first),
        "second_graph_call_ms": ms(second),
        "runs": RUNS,
    }


async def operation_counts() -> dict[str, dict[str, int]]:
    """Port operations per create (0, 1 and 10 invitees) and per agenda read (20 meetings)."""
    from switchboard.adapters.graph_local import LocalMeetingProvider
    from switchboard.adapters.sqlite_store import SqliteStore
    from switchboard.services.caller import Caller
    from tests.proxies import spy, spy_of
    from tests.social import Social

    results: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-meetings-") as tmp:
        data = Path(tmp)
        store = spy(SqliteStore(data / "s.sqlite"))
        provider = spy(LocalMeetingProvider(data))
        service = Social(store, data, meeting_provider=provider).meetings
        users = [f"u{i}" for i in range(10)]
        for user in ["alice", *users]:
            await store.create("users", {"id": user, "pk": user})
        start = datetime(2026, 11, 23, 9, tzinfo=UTC)

        def counted(label: str) -> None:
            s, p = spy_of(store).calls, spy_of(provider).calls
            results[label] = {
                "store": sum(s.values()),
                "provider": sum(p.values()),
                **{f"store.{k}": v for k, v in s.items()},
                **{f"provider.{k}": v for k, v in p.items()},
            }
            s.clear()
            p.clear()

        spy_of(store).calls.clear()
        for n in (0, 1, 10):
            await service.schedule(
                Caller("alice"), "s", start, start + timedelta(minutes=30), users[:n]
            )
            counted(f"POST /api/meetings, {n} invitees")
        for hour in range(17):  # 20 meetings on the 23rd, 3 already above
            begin = start + timedelta(minutes=30 * hour)
            await service.schedule(Caller("alice"), "s", begin, begin + timedelta(minutes=20), [])
        spy_of(store).calls.clear()
        spy_of(provider).calls.clear()
        day = await service.agenda(Caller("alice"), "2026-11-23", "Europe/Paris")
        counted(f"GET /api/meetings ({len(day)} that day)")
        await store.close()
        await provider.close()
    return results


def meetings_bench(root: Path, env: dict[str, str]) -> dict[str, Any]:
    return {
        "operations": asyncio.run(operation_counts()),
        "import": import_and_first_graph_call(root, env),
    }


def report_lines(r: dict[str, Any]) -> list[str]:
    imp = r["import"]
    lines = [
        "| meetings: operations per request | store | provider | detail |",
        "|---|---|---|---|",
    ]
    for label, counts in r["operations"].items():
        detail = ", ".join(f"{k}={v}" for k, v in counts.items() if "." in k)
        lines.append(f"| {label} | {counts['store']} | {counts['provider']} | {detail} |")
    lines += [
        "",
        f"| meetings: import and first Graph call (fresh process, median of {imp['runs']}) | ms |",
        "|---|---|",
        f"| `import function_app` | {imp['function_app_ms']} |",
        f"| of which the meetings modules | {imp['meetings_modules_ms']} |",
        f"| Graph SDK modules loaded by `import function_app` | "
        f"{imp['graph_sdk_imported_by_function_app']} |",
        f"| first Graph call (msgraph import + client + request, zero-latency transport) | "
        f"{imp['first_graph_call_ms']} |",
        f"| second Graph call | {imp['second_graph_call_ms']} |",
    ]
    return lines


if __name__ == "__main__":
    import os

    here = Path(__file__).resolve().parents[1]
    result = meetings_bench(here, {**os.environ, "PYTHONPATH": str(here)})
    print(json.dumps(result, indent=2))
    print("\n".join(report_lines(result)))
