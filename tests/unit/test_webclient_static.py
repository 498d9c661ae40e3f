"""The devserver serving the web client's build: `/` and `/assets/…` from the build dir only,
a page saying how to build it when it is missing, never a file outside it, and nothing at all
unless the devserver was given a build dir (create_app gives it in dev mode)."""

from __future__ import annotations

from pathlib import Path

from switchboard.dev.devserver import DevServer
from tests.unit.test_devserver import build_app, call


def _build(tmp_path: Path) -> Path:
    build = tmp_path / "build"
    (build / "assets").mkdir(parents=True)
    (build / "index.html").write_text("<!doctype html><p>client</p>")
    (build / "assets" / "main.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("not for the browser")
    return build


async def test_index_and_assets_come_from_the_build_dir(tmp_path: Path) -> None:
    server = DevServer(build_app(), "api", web_dir=_build(tmp_path))
    index = await call(server, "GET", "/")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert index.text == "<!doctype html><p>client</p>"
    script = await call(server, "GET", "/assets/main.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["cache-control"] == "no-cache"
    # The API still answers beside it.
    item = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert (await call(server, "GET", f"/api/items/{item}")).status_code == 200


async def test_nothing_outside_the_build_dir(tmp_path: Path) -> None:
    server = DevServer(build_app(), "api", web_dir=_build(tmp_path))
    for path in ("/assets/../../secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt", "/secret.txt"):
        resp = await call(server, "GET", path)
        assert resp.status_code == 404, path
        assert "not for the browser" not in resp.text
    assert (await call(server, "GET", "/assets/missing.js")).status_code == 404
    assert (await call(server, "POST", "/")).status_code == 404


async def test_a_missing_build_says_how_to_make_it(tmp_path: Path) -> None:
    server = DevServer(build_app(), "api", web_dir=tmp_path / "never-built")
    resp = await call(server, "GET", "/")
    assert resp.status_code == 404
    assert "make run" in resp.text


async def test_no_build_dir_no_client(tmp_path: Path) -> None:
    server = DevServer(build_app(), "api")
    assert (await call(server, "GET", "/")).status_code == 404
    assert (await call(server, "GET", "/assets/main.js")).status_code == 404
