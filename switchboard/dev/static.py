"""The reference web client's files, served by the devserver at `/` in dev mode only.

`make run` builds the client (web/, esbuild) into `web/build/`; the devserver answers GET for
`/` (index.html) and `/assets/<file>` from there, so a developer opens http://localhost:7071/
beside the API with no other command. The Functions host never serves
it: in Azure the client is a static site of its own (docs/web-client.md).
Nothing outside the build directory is ever read: a path that resolves elsewhere is a 404.
"""

from __future__ import annotations

from pathlib import Path

import azure.functions as func

from switchboard import errors
from switchboard.http import problem_for

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}

_NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>Switchboard</title>
<p>The web client is not built. <code>make run</code> builds it (or <code>make web</code>);
the API is at <a href="/api/health">/api</a>.</p>"""


def serves(path: str) -> bool:
    """True for the paths the web client owns: `/`, `/index.html` and `/assets/…`."""
    return path in ("/", "/index.html") or path.startswith("/assets/")


def static_response(build_dir: Path, path: str) -> func.HttpResponse:
    """The file for `path` (one of `serves`) from `build_dir`, or a 404 problem."""
    if path in ("/", "/index.html"):
        index = build_dir / "index.html"
        if not index.is_file():
            return func.HttpResponse(_NOT_BUILT, status_code=404, mimetype="text/html")
        return _file(index)
    root = (build_dir / "assets").resolve()
    target = (root / path.removeprefix("/assets/")).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return problem_for(errors.NotFound("No such file."))
    return _file(target)


def _file(target: Path) -> func.HttpResponse:
    content_type = _TYPES.get(target.suffix, "application/octet-stream")
    mimetype, _, charset = content_type.partition("; charset=")
    return func.HttpResponse(
        target.read_bytes(),
        status_code=200,
        mimetype=mimetype,
        charset=charset or "utf-8",
        # A rebuild replaces files under the same names: the browser asks again each time.
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )
