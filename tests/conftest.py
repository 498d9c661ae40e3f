"""Shared fixtures: a runtime on real embedded adapters (SQLite, local ACS issuer, dev sign-in)
in a temporary data dir, a fake-ACS variant for fault injection, and an HTTP-ish caller that
drives the registered handlers with `func.HttpRequest`, as the Functions host does."""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

import function_app
from switchboard.adapters.acs_local import LocalIdentityIssuer
from switchboard.adapters.graph_local import LocalMeetingProvider
from switchboard.adapters.sms_local import LocalSmsOutbox
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.dev.devserver import DevServer
from switchboard.dev.issuer import DevTokenIssuer
from switchboard.ports import DocumentStore, IdentityProvider, MeetingProvider, SmsSender
from switchboard.runtime import Adapters, Runtime, build_authenticator, set_runtime
from switchboard.settings import Settings
from tests.fakes import FakeIdentityProvider
from tests.proxies import spy


def make_settings(data_dir: Path, **values: str) -> Settings:
    return Settings.from_environ({"SWITCHBOARD_DATA_DIR": str(data_dir), **values})


@functools.cache
def _key_template() -> Path:
    """A data dir holding the keys the embedded adapters generate, made once per test session.

    RSA key generation costs ~100 ms; copying the files into each test's data dir costs nothing
    and changes nothing about what is tested (the adapters load an existing key the same way).
    """
    template = Path(tempfile.mkdtemp(prefix="switchboard-keys-"))
    DevTokenIssuer(template)
    LocalIdentityIssuer(template)
    return template


def seed_keys(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    for key in _key_template().glob("*.pem"):
        if not (data_dir / key.name).exists():
            shutil.copy2(key, data_dir / key.name)


def make_runtime(
    data_dir: Path,
    *,
    store: DocumentStore | None = None,
    identity_provider: IdentityProvider | None = None,
    meeting_provider: MeetingProvider | None = None,
    sms_sender: SmsSender | None = None,
    **settings: str,
) -> Runtime:
    seed_keys(data_dir)
    chosen = make_settings(data_dir, **settings)
    issuer = DevTokenIssuer(data_dir)
    adapters = Adapters(
        store=store or SqliteStore(data_dir / "switchboard.sqlite"),
        identity_provider=identity_provider or LocalIdentityIssuer(data_dir),
        authenticator=build_authenticator(chosen, issuer),
        dev_issuer=issuer,
        meeting_provider=meeting_provider or LocalMeetingProvider(data_dir),
        sms_sender=sms_sender or LocalSmsOutbox(data_dir),
    )
    return Runtime(chosen, adapters)


@functools.cache
def app_server() -> DevServer:
    """The app's route table; built once, as azure.functions allows get_functions() only once."""
    return DevServer(function_app.app, "api")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """Calls the app's functions the way the host does: route match, then func.HttpRequest."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._server = app_server()

    def login(self, user_id: str, name: str | None = None) -> dict[str, str]:
        assert self.runtime.adapters.dev_issuer is not None
        token, _ = self.runtime.adapters.dev_issuer.issue(user_id, name)
        return {"Authorization": f"Bearer {token}"}

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Response:
        all_headers = {k.lower(): v for k, v in (headers or {}).items()}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers.setdefault("content-type", "application/json")
        for fn in self._server.http:
            match = fn.pattern.match(path)
            if match and method in fn.methods:
                req = func.HttpRequest(
                    method=method,
                    url=f"http://localhost{path}",
                    headers=all_headers,
                    params=params or {},
                    route_params={k: v for k, v in match.groupdict().items() if v is not None},
                    body=body or b"",
                )
                resp = await fn.handler(req)
                headers_out = {k.lower(): v for k, v in resp.headers.items()}
                if resp.mimetype:
                    headers_out.setdefault("content-type", resp.mimetype)
                return Response(resp.status_code, headers_out, resp.get_body())
        raise AssertionError(f"no function serves {method} {path}")


Install = Callable[..., Awaitable[Client]]


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = make_runtime(tmp_path)
    set_runtime(rt)
    yield rt
    set_runtime(None)
    await rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Client:
    return Client(runtime)


@pytest.fixture
async def counting_client(tmp_path: Path) -> AsyncIterator[Client]:
    """A client on the embedded adapters, each wrapped to count its operations."""
    seed_keys(tmp_path)
    rt = make_runtime(
        tmp_path,
        store=spy(SqliteStore(tmp_path / "switchboard.sqlite")),
        identity_provider=spy(LocalIdentityIssuer(tmp_path)),
    )
    set_runtime(rt)
    yield Client(rt)
    set_runtime(None)
    await rt.close()


@pytest.fixture
async def fake_acs_client(tmp_path: Path) -> AsyncIterator[Client]:
    """A client whose ACS is the in-memory fake and whose store can be made to fail."""
    rt = make_runtime(
        tmp_path,
        store=spy(SqliteStore(tmp_path / "switchboard.sqlite")),
        identity_provider=FakeIdentityProvider(),
    )
    set_runtime(rt)
    yield Client(rt)
    set_runtime(None)
    await rt.close()
