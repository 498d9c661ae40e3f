"""Hybrid mode — the embedded store and dev sign-in with a real ACS resource
(ACS_CONNECTION_STRING) — as far as offline allows: the client takes the resource's endpoint from
GET /api/client-config, and when the resource cannot be reached (here: nothing listens at its
address) the person is told so on the sign-in page, never left at "Loading…"."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Browser
from tests.e2e.conftest import DevServerProcess

pytestmark = pytest.mark.browser

# An address where nothing answers, so every ACS call fails fast (connection refused).
UNREACHABLE_ACS = "https://127.0.0.1:9/"


@pytest.fixture(scope="module")
def hybrid_server(
    web_build: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevServerProcess]:
    key = base64.b64encode(os.urandom(32)).decode()
    server = DevServerProcess(
        tmp_path_factory.mktemp("hybrid") / "data",
        ACS_CONNECTION_STRING=f"endpoint={UNREACHABLE_ACS};accesskey={key}",
    )
    server.start()
    yield server
    server.stop()


def test_hybrid_mode_takes_the_endpoint_from_client_config_and_says_when_acs_is_down(
    chromium: Any, hybrid_server: DevServerProcess
) -> None:
    browser = Browser(chromium, hybrid_server)
    try:
        alice = browser.open("wh-alice", record_adapters=False, hybrid=False)
        page = alice.page
        page.get_by_test_id("signin-user").fill("wh-alice")
        page.get_by_test_id("signin-submit").click()
        error = page.get_by_test_id("error")
        error.wait_for(timeout=60_000)
        assert "(503 " in error.inner_text()
        assert page.get_by_test_id("who").count() == 0
        # What the server tells a client: the resource's endpoint (the client builds its chat
        # and calling clients with it).
        config = page.evaluate(
            """async () => {
              const login = await (await fetch('/api/dev/login', {method: 'POST',
                headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({userId: 'wh-alice'})})).json();
              const headers = {Authorization: 'Bearer ' + login.accessToken};
              return await (await fetch('/api/client-config', {headers})).json();
            }"""
        )
        assert config["acsEndpoint"] == UNREACHABLE_ACS
    finally:
        assert browser.close_users() == []
