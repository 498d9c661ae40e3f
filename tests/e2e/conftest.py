"""The devserver as a real process: `python -m switchboard.devserver` on a free port, over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevServerProcess:
    """One devserver process on a data dir; `restart()` keeps the data dir, as a user would."""

    def __init__(self, data_dir: Path, *, argv: list[str] | None = None, **env: str) -> None:
        """`argv`: the server's command instead of `python -m switchboard.devserver`, to which
        `--port N` is appended (e.g. a launcher that builds the store for a test server)."""
        self.data_dir = data_dir
        self.argv = argv or [sys.executable, "-m", "switchboard.devserver"]
        self.env = env
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"devserver-{self.port}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "SWITCHBOARD_DATA_DIR": str(self.data_dir),
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [*self.argv, "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"devserver exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base_url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"devserver did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def kill(self) -> None:
        """SIGKILL, as a recycled instance or a crash stops it: no shutdown, no drain."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def login(self, user_id: str, name: str | None = None) -> dict[str, str]:
        resp = httpx.post(
            f"{self.base_url}/api/dev/login",
            json={"userId": user_id, **({"displayName": name} if name else {})},
        )
        resp.raise_for_status()
        return {"Authorization": f"Bearer {resp.json()['accessToken']}"}


@pytest.fixture(scope="session")
def devserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServerProcess]:
    # Teams exchange configured, so the fuzzer reaches past "not configured" into its checks.
    server = DevServerProcess(
        tmp_path_factory.mktemp("devserver") / "data",
        TEAMS_CLIENT_ID="2c3e1e83-8fd7-4615-ad2b-b8c1229845ac",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fresh_devserver(tmp_path: Path) -> Iterator[DevServerProcess]:
    server = DevServerProcess(tmp_path / "data")
    server.start()
    yield server
    server.stop()
