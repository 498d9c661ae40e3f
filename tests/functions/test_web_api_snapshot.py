"""The web client's typed API is generated from a committed snapshot of the OpenAPI document
(web/openapi.json -> web/src/api/schema.d.ts): both must be what the server answers today.
After adding or changing a route, `make web-api` regenerates them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Client

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
GENERATOR = WEB / "node_modules" / ".bin" / "openapi-typescript"
STALE = "out of date: run `make web-api` and commit web/openapi.json and web/src/api/schema.d.ts"


async def test_the_snapshot_is_the_servers_openapi_document(client: Client) -> None:
    answer = await client.request("GET", "/api/openapi.json")
    assert answer.status == 200
    snapshot = json.loads((WEB / "openapi.json").read_text())
    served = answer.json()
    # Compared without the version, which is the only part not made from the route table.
    assert {**snapshot, "info": None} == {**served, "info": None}, f"web/openapi.json is {STALE}"


def test_the_generated_types_are_the_snapshots() -> None:
    if shutil.which("node") is None or not GENERATOR.exists():
        pytest.skip("needs web/node_modules (make web)")
    generated = subprocess.run(
        [str(GENERATOR), "openapi.json", "--default-non-nullable", "false"],
        cwd=WEB,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    committed = (WEB / "src" / "api" / "schema.d.ts").read_text()
    assert generated.strip() == committed.strip(), f"web/src/api/schema.d.ts is {STALE}"
