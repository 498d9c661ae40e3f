"""The web client in a real browser: Debian's headless Chromium driven by Playwright, against a
devserver process, offline.

Every request a page makes for anything but the loopback address is blocked and logged; a test
fails if its page asked for a host it did not declare (`Browser.user(expect=...)`). The client's
composite adapter factory is replaced (before the page loads) by one that records the locator
and callees it is handed and returns no adapter, so tests see exactly what the CallComposite and
ChatComposite would have been given; `end(i, how)` ends recorded call i as the Calling SDK would
report it. A recording user sees the server as in hybrid mode (an ACS resource behind the
embedded server): its GET /api/client-config answers an https ACS endpoint, the one the
recording factory stands in for. Screenshots of the main views go to tests/browser/screenshots/
(out of git). Users are desktop-sized (1280 px) or phone-sized (390 x 844).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import ROOT, DevServerProcess

CHROMIUM = Path("/usr/bin/chromium")
APP_CALLER_ID = "+14255550100"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
HYBRID_ENDPOINT = "https://switchboard-test.communication.azure.com/"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LOOPBACK = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The Calling SDK asks for devices: fake ones, granted without a prompt.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]

# Replaces the client's composite adapter factory: records what it is handed (never the
# credential itself, only that it yields a token) and returns no adapter.
RECORDING_FACTORY = """
window.switchboardAdapters = {
  calls: [],
  chats: [],
  ended: [],
  async createCallAdapter(r) {
    const token = (await r.credential.getToken()).token;
    this.ended.push(r.onEnded ?? null);
    this.calls.push({
      userId: r.userId, displayName: r.displayName, locator: r.locator ?? null,
      targetCallees: r.targetCallees ?? null, alternateCallerId: r.alternateCallerId ?? null,
      hasToken: token.length > 0,
    });
    return null;
  },
  end(index, how) {
    const onEnded = this.ended[index];
    this.ended[index] = null;
    if (onEnded) onEnded(how);
    return onEnded !== null;
  },
  async createChatAdapter(r) {
    const token = (await r.credential.getToken()).token;
    this.chats.push({
      endpoint: r.endpoint, userId: r.userId, displayName: r.displayName,
      threadId: r.threadId, hasToken: token.length > 0,
    });
    return null;
  },
};
"""


def _hybrid_config(route: Any) -> None:
    """The server's client-config with an https ACS endpoint: hybrid mode, as the client sees it."""
    answer = route.fetch()
    body = answer.json()
    if answer.status == 200:
        body["acsEndpoint"] = HYBRID_ENDPOINT
    route.fulfill(response=answer, json=body)


def _is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob") or (parts.hostname or "") in LOOPBACK


@dataclass
class User:
    """One signed-in browser user: its own context (storage), page and request log."""

    page: Any
    user_id: str
    expect: tuple[str, ...]
    server_log: Path
    blocked: list[str] = field(default_factory=list)

    def unexpected(self) -> list[str]:
        return [u for u in self.blocked if not any(re.search(p, u) for p in self.expect)]

    def tab(self, name: str) -> None:
        button = self.page.get_by_test_id(f"tab-{name}")
        if not button.is_visible():  # phone-sized: the tabs are behind the Menu button
            self.page.get_by_test_id("menu").click()
        button.click()

    def recorded(self, kind: str = "calls") -> list[dict[str, Any]]:
        value: list[dict[str, Any]] = self.page.evaluate(f"window.switchboardAdapters.{kind}")
        return value

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """What the API answers this user, fetched from the page with its own app token."""
        return self.page.evaluate(
            """async ([method, path, body]) => {
              const token = JSON.parse(sessionStorage.getItem('switchboard.devSession')).token;
              const headers = {Authorization: 'Bearer ' + token};
              if (body !== null) headers['Content-Type'] = 'application/json';
              const payload = body === null ? undefined : JSON.stringify(body);
              const response = await fetch(path, {method, headers, body: payload});
              return await response.json();
            }""",
            [method, path, body],
        )

    def log_count(self, pattern: str, at_least: int = 0) -> int:
        """How often the devserver logged a line matching `pattern` (waits up to 10 s for
        `at_least`: the server logs a request just after answering it)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + 10
        while True:
            found = len(regex.findall(self.server_log.read_text()))
            if found >= at_least or time.monotonic() > deadline:
                return found
            # Not time.sleep: Playwright's routing callbacks (this process's) must keep running.
            self.page.wait_for_timeout(50)

    def overflow(self) -> int:
        """How many CSS pixels the page is wider than its viewport (0: no horizontal scroll)."""
        width: int = self.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        return width

    def confirm(self, yes: bool = True) -> str:
        """Answers the client's confirmation dialog; returns its question."""
        dialog = self.page.get_by_test_id("confirm")
        dialog.wait_for()
        text: str = self.page.get_by_test_id("confirm-text").inner_text()
        self.page.get_by_test_id("confirm-yes" if yes else "confirm-no").click()
        dialog.wait_for(state="detached")
        return text

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


class Browser:
    """Makes users on one Chromium; at the end, fails on any request nobody expected."""

    def __init__(self, chromium: Any, server: DevServerProcess) -> None:
        self.chromium = chromium
        self.server = server
        self.base_url = f"http://localhost:{server.port}"
        self.users: list[User] = []

    def user(
        self,
        user_id: str,
        display_name: str,
        *,
        expect: tuple[str, ...] = (),
        record_adapters: bool = True,
        fake_clock: bool = False,
        hybrid: bool | None = None,
        viewport: dict[str, int] = DESKTOP,
        path: str = "/",
    ) -> User:
        """A new browser user (own context) signed in through the sign-in form."""
        user = self.open(
            user_id,
            expect=expect,
            record_adapters=record_adapters,
            fake_clock=fake_clock,
            hybrid=hybrid,
            viewport=viewport,
            path=path,
        )
        user.page.get_by_test_id("signin-user").fill(user_id)
        user.page.get_by_test_id("signin-name").fill(display_name)
        user.page.get_by_test_id("signin-submit").click()
        user.page.get_by_test_id("who").wait_for(state="attached")  # in the menu on a phone
        return user

    def open(
        self,
        label: str,
        *,
        expect: tuple[str, ...] = (),
        record_adapters: bool = True,
        fake_clock: bool = False,
        hybrid: bool | None = None,
        viewport: dict[str, int] = DESKTOP,
        path: str = "/",
        build: Path | None = None,
    ) -> User:
        """A new browser context on the client's sign-in page (or `path`), its requests
        guarded; with `fake_clock` the page's timers and Date are Playwright's, moved by the
        test; `hybrid` (default: when recording) answers client-config an https ACS endpoint;
        `build` serves another build of the client (web/build.mjs SWITCHBOARD_WEB_OUT)."""
        context = self.chromium.new_context(viewport=viewport)
        page = context.new_page()
        if fake_clock:
            page.clock.install()
        user = User(page=page, user_id=label, expect=expect, server_log=self.server.log)

        def route(request_route: Any) -> None:
            url = request_route.request.url
            if _is_loopback(url):
                request_route.continue_()
            else:
                user.blocked.append(url)
                request_route.abort()

        def websocket(ws: Any) -> None:
            user.blocked.append(ws.url)
            ws.close()

        context.route("**/*", route)
        context.route_web_socket(lambda url: not _is_loopback(url), websocket)
        if hybrid if hybrid is not None else record_adapters:
            context.route("**/api/client-config", _hybrid_config)
        if build is not None:
            built = build

            def serve_build(request_route: Any) -> None:
                where = urlsplit(request_route.request.url).path.lstrip("/") or "index.html"
                request_route.fulfill(path=built / where)

            context.route(
                lambda url: (
                    url.startswith(self.base_url)
                    and (urlsplit(url).path in ("/", "/index.html") or "/assets/" in url)
                ),
                serve_build,
            )
        if record_adapters:
            context.add_init_script(RECORDING_FACTORY)
        self.users.append(user)
        page.goto(f"{self.base_url}{path}")
        return user

    def close_users(self) -> list[str]:
        problems: list[str] = []
        for user in self.users:
            for url in user.blocked:
                print(f"blocked ({user.user_id}): {url}")
            problems += user.unexpected()
            user.page.context.close()
        self.users.clear()
        return problems


@pytest.fixture(scope="session")
def web_build() -> Path:
    """The client built from the current sources (a no-op when web/build is fresh)."""
    if shutil.which("npm") is None:
        pytest.skip("the web client needs node and npm")
    subprocess.run(["make", "-s", "web"], cwd=ROOT, check=True)
    return ROOT / "web" / "build"


@pytest.fixture(scope="session")
def browser_server(
    web_build: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevServerProcess]:
    # The app's own number for PSTN calls, so call-info offers friends' verified numbers.
    server = DevServerProcess(
        tmp_path_factory.mktemp("browser") / "data", PSTN_CALLER_ID=APP_CALLER_ID
    )
    server.start()
    yield server
    server.stop()


# Package scope, not session: while sync Playwright runs, its event loop is the thread's running
# loop, which the asyncio tests of other folders cannot share.
@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: `make browser` installs it (make check does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives the browser a fresh temporary profile (user-data-dir) of its own.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def browser(chromium: Any, browser_server: DevServerProcess) -> Iterator[Browser]:
    session = Browser(chromium, browser_server)
    yield session
    unexpected = session.close_users()
    assert unexpected == [], f"the page asked for hosts it should not have: {unexpected}"
