"""The README's five minutes and docs/identity.md's walkthrough over real HTTP: login → token →
me, persistence across a restart, and the HTTP host's own rules (body limit, unknown routes, log
lines without tokens)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.conftest import ROOT, DevServerProcess


def test_walkthrough_and_identity_survives_restart(fresh_devserver: DevServerProcess) -> None:
    base = fresh_devserver.base_url
    alice = fresh_devserver.login("alice", "Alice")
    first = httpx.post(f"{base}/api/token", headers=alice)
    assert first.status_code == 200
    acs_id = first.json()["user"]["communicationUserId"]
    second = httpx.post(f"{base}/api/token", headers=alice)
    assert second.json()["user"]["communicationUserId"] == acs_id
    assert second.json()["token"] != first.json()["token"]
    me = httpx.get(f"{base}/api/me", headers=alice).json()
    assert me["communicationUserId"] == acs_id

    fresh_devserver.restart()
    # The app token from before the restart is still valid (the dev key persisted), and alice
    # still has the same ACS identity.
    again = httpx.post(f"{base}/api/token", headers=alice)
    assert again.status_code == 200
    assert again.json()["user"]["communicationUserId"] == acs_id
    assert httpx.get(f"{base}/api/me", headers=alice).json()["displayName"] == "Alice"


def test_second_user_is_isolated_over_http(devserver: DevServerProcess) -> None:
    base = devserver.base_url
    alice, bob = devserver.login("e2e-alice"), devserver.login("e2e-bob")
    a = httpx.post(f"{base}/api/token", headers=alice).json()["user"]
    b = httpx.post(f"{base}/api/token", headers=bob).json()["user"]
    assert a != b
    assert httpx.delete(f"{base}/api/me", headers=bob).status_code == 204
    assert (
        httpx.get(f"{base}/api/me", headers=alice).json()["communicationUserId"]
        == (a["communicationUserId"])
    )


def test_body_limit_and_unknown_routes(devserver: DevServerProcess) -> None:
    base = devserver.base_url
    alice = devserver.login("e2e-limits")
    big = httpx.post(
        f"{base}/api/token",
        headers={**alice, "content-type": "application/json"},
        content=b"{" + b" " * (64 * 1024) + b"}",
    )
    assert big.status_code == 413
    assert big.headers["content-type"] == "application/problem+json"
    missing = httpx.get(f"{base}/api/nope", headers=alice)
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    wrong_method = httpx.put(f"{base}/api/token", headers=alice)
    assert wrong_method.status_code == 405
    assert "POST" in wrong_method.headers["allow"]


def test_log_has_one_line_per_request_and_no_tokens(fresh_devserver: DevServerProcess) -> None:
    base = fresh_devserver.base_url
    alice = fresh_devserver.login("alice")
    token = httpx.post(f"{base}/api/token?secret=abc", headers=alice).json()["token"]
    fresh_devserver.stop()
    log = fresh_devserver.log.read_text()
    assert "POST /api/token 200" in log
    assert "POST /api/dev/login 200" in log
    assert token not in log
    assert alice["Authorization"].split()[1] not in log
    assert "secret=abc" not in log


def test_dev_routes_are_gone_outside_dev_mode(tmp_path: Path) -> None:
    server = DevServerProcess(
        tmp_path / "data",
        AUTH_MODE="jwt",
        AUTH_ISSUER="https://login.example.test/t/v2.0",
        AUTH_AUDIENCE="api://switchboard",
        AUTH_JWKS_URL="https://login.example.test/keys",
    )
    server.start()
    try:
        resp = httpx.post(f"{server.base_url}/api/dev/login", json={"userId": "alice"})
        assert resp.status_code == 404
        assert httpx.post(f"{server.base_url}/api/token").status_code == 401
    finally:
        server.stop()


def test_bad_setting_stops_startup_naming_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "switchboard.devserver", "--port", "0"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "TOKEN_TTL_MINUTES": "5"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "TOKEN_TTL_MINUTES" in result.stderr


async def test_twenty_concurrent_first_requests_over_http(devserver: DevServerProcess) -> None:
    """The race with the real adapters (SQLite, local issuer) and a real HTTP host."""
    caller = devserver.login("e2e-racer")
    async with httpx.AsyncClient(base_url=devserver.base_url, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post("/api/token", headers=caller) for _ in range(20))
        )
        assert {r.status_code for r in responses} == {200}
        ids = {r.json()["user"]["communicationUserId"] for r in responses}
        assert len(ids) == 1
        me = (await client.get("/api/me", headers=caller)).json()
        assert me["communicationUserId"] in ids
