"""The reaction layer's figures of `make bench` (issue 19): what a request costs in store
operations and time when it changes a fact with many copies, and the background work that then
brings the copies in step, with the time it takes to converge.

Scenarios, each through the registered routes (so the figures are those of whatever code is
merged, not of hand-written documents): erase a user with 1 / 1,000 / 5,000 accepted friends
(`DELETE /api/me`), delete a club of 10 / 10,000 members (`DELETE /api/clubs/{id}`), rename a
user with 1 / 5,000 friends (`PATCH /api/me`). Each is set up through the routes, the work the
setup recorded is drained, then the request runs with the store's operations counted
(tests/proxies PortSpy), then the reactor drains what the request recorded: its store operations,
reconciler runs and wall time are "converge". In process, SQLite, one event loop: the devserver's
worker and the Azure trigger add their polling delay (≤ 1 s) on top. Printed, never asserted.

`BENCH_REACTIONS_SCALE` (default 1.0) scales the large sizes down for a quick run.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

SCALE = float(os.environ.get("BENCH_REACTIONS_SCALE", "1.0"))


def _n(size: int) -> int:
    return max(1, int(size * SCALE)) if size > 10 else size


class World:
    """One runtime on SQLite with counting ports, and the routes to drive it."""

    def __init__(self, data_dir: Path) -> None:
        from switchboard.adapters.acs_local import LocalIdentityIssuer
        from switchboard.adapters.sqlite_store import SqliteStore
        from switchboard.runtime import set_runtime
        from tests.conftest import Client, make_runtime
        from tests.proxies import spy, spy_of

        self.runtime = make_runtime(
            data_dir,
            store=spy(SqliteStore(data_dir / "bench.sqlite")),
            identity_provider=spy(LocalIdentityIssuer(data_dir)),
        )
        set_runtime(self.runtime)
        self.client = Client(self.runtime)
        self.store = spy_of(self.runtime.adapters.store)
        self.acs = spy_of(self.runtime.adapters.identity_provider)
        self._tokens: dict[str, dict[str, str]] = {}

    def who(self, user: str) -> dict[str, str]:
        if user not in self._tokens:
            self._tokens[user] = self.client.login(user, user.title())
        return self._tokens[user]

    async def call(self, method: str, path: str, user: str, body: Any = None) -> Any:
        for attempt in range(8):
            resp = await self.client.request(method, path, headers=self.who(user), json_body=body)
            if resp.status != 503:
                break
            # Set-up requests racing on one document (joins on one club) may exhaust their
            # conditional-write retries: a client retries after Retry-After; so does the set-up.
            await asyncio.sleep(0.01 * (attempt + 1))
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path} as {user}: {resp.status} {resp.body[:200]!r}")
        return resp.json() if resp.body else None

    async def many(self, calls: list[Callable[[], Awaitable[Any]]], width: int = 16) -> None:
        """Set-up requests, `width` at a time (the set-up is not what is measured)."""
        for start in range(0, len(calls), width):
            await asyncio.gather(*(c() for c in calls[start : start + width]))

    async def measure(self, method: str, path: str, user: str, body: Any = None) -> dict[str, Any]:
        await self.runtime.reactor.drain()  # the set-up's own work is not counted
        self.store.calls.clear()
        self.acs.calls.clear()
        started = time.perf_counter()
        await self.call(method, path, user, body)
        request_ms = (time.perf_counter() - started) * 1000
        request_store = sum(self.store.calls.values())
        request_acs = sum(self.acs.calls.values())
        self.store.calls.clear()
        started = time.perf_counter()
        runs = await self.runtime.reactor.drain()
        converge_s = time.perf_counter() - started
        return {
            "request_store_ops": request_store,
            "request_acs_ops": request_acs,
            "request_ms": round(request_ms, 1),
            "background_runs": runs,
            "background_store_ops": sum(self.store.calls.values()),
            "converge_s": round(converge_s, 2),
        }

    async def close(self) -> None:
        from switchboard.runtime import set_runtime

        set_runtime(None)
        await self.runtime.close()


async def _befriend(world: World, user: str, friends: int) -> None:
    names = [f"{user}-f{n}" for n in range(friends)]
    await world.many(
        [lambda f=f: world.call("PUT", f"/api/friends/{user}", f) for f in names]  # type: ignore[misc]
    )
    await world.many(
        [lambda f=f: world.call("PUT", f"/api/friends/{f}", user) for f in names]  # type: ignore[misc]
    )


async def erase(data_dir: Path, friends: int) -> dict[str, Any]:
    world = World(data_dir)
    try:
        await world.call("POST", "/api/token", "erin")
        await _befriend(world, "erin", friends)
        return await world.measure("DELETE", "/api/me", "erin")
    finally:
        await world.close()


async def rename(data_dir: Path, friends: int) -> dict[str, Any]:
    world = World(data_dir)
    try:
        await world.call("GET", "/api/me", "rita")
        await _befriend(world, "rita", friends)
        return await world.measure("PATCH", "/api/me", "rita", {"displayName": "Rita Renamed"})
    finally:
        await world.close()


async def club_delete(data_dir: Path, members: int) -> dict[str, Any]:
    world = World(data_dir)
    try:
        club = await world.call("POST", "/api/clubs", "olga", {"name": "Big", "visibility": "open"})
        path = f"/api/clubs/{club['clubId']}"
        await world.many(
            [
                lambda m=m: world.call("POST", f"{path}/join", f"olga-m{m}")  # type: ignore[misc]
                for m in range(members - 1)
            ]
        )
        return await world.measure("DELETE", path, "olga")
    finally:
        await world.close()


Scenario = Callable[[Path, int], Coroutine[Any, Any, dict[str, Any]]]
SCENARIOS: list[tuple[str, Scenario, int]] = [
    ("erase, 1 friend", erase, 1),
    ("erase, 1,000 friends", erase, 1000),
    ("erase, 5,000 friends", erase, 5000),
    ("club delete, 10 members", club_delete, 10),
    ("club delete, 10,000 members", club_delete, 10000),
    ("rename, 1 friend", rename, 1),
    ("rename, 5,000 friends", rename, 5000),
]


def run() -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for label, scenario, size in SCENARIOS:
        n = _n(size)
        print(f"reactions: {label} ...", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="switchboard-bench-reactions-") as tmp:
            figures: dict[str, Any]
            try:
                figures = asyncio.run(scenario(Path(tmp), n))
            except Exception as exc:  # a scenario the merged code cannot run yet: say so
                figures = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
        results[label if n == size else f"{label} (scaled to {n})"] = figures
    return results


def report(r: dict[str, dict[str, Any]]) -> str:
    lines = [
        "",
        "| reactions (SQLite, in process) | request: store ops | ACS | ms "
        "| background: runs | store ops | converge s |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, d in r.items():
        if "error" in d:
            lines.append(f"| {label} | {d['error']} | | | | | |")
            continue
        lines.append(
            f"| {label} | {d['request_store_ops']} | {d['request_acs_ops']} | {d['request_ms']} "
            f"| {d['background_runs']} | {d['background_store_ops']} | {d['converge_s']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
