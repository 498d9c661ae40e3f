"""The web client's cost: its bundle (minified and gzipped), split as the browser loads it, and
the time of its browser tests (headless Chromium against a devserver).

Reads web/build/meta.json (esbuild's metafile); says so and skips a figure when the client is
not built (`make web`) or Chromium is missing (`make browser`). Printed, never asserted.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "web" / "build"


def _closure(outputs: dict[str, Any], start: str) -> set[str]:
    """`start` and the chunks it imports statically (what loads before it runs)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in outputs:
            continue
        seen.add(name)
        todo += [
            i["path"] for i in outputs[name].get("imports", []) if i["kind"] != "dynamic-import"
        ]
    return seen


def _sizes(files: set[str]) -> tuple[int, int]:
    raw = [(ROOT / "web" / name).read_bytes() for name in files]
    return sum(len(b) for b in raw), sum(len(gzip.compress(b, 9)) for b in raw)


def bundle() -> dict[str, tuple[int, int]] | None:
    """(minified, gzipped) bytes of: the first load, the composites chunk, everything."""
    meta_file = BUILD / "meta.json"
    if not meta_file.is_file():
        return None
    outputs: dict[str, Any] = json.loads(meta_file.read_text())["outputs"]
    outputs = {name.removeprefix("web/"): out for name, out in outputs.items()}
    entry = next(n for n, o in outputs.items() if o.get("entryPoint") == "src/main.tsx")
    first = _closure(outputs, entry) | {n for n in outputs if n.endswith("main.css")}
    composites = next(n for n in outputs if Path(n).name.startswith("composites-"))
    on_call = _closure(outputs, composites) - first
    # MSAL, loaded only by a build with an Entra app configuration (production sign-in).
    msal = next(
        name
        for name, out in outputs.items()
        if any("@azure/msal-browser" in source for source in out.get("inputs", {}))
    )
    on_sign_in = _closure(outputs, msal) - first
    return {
        "first load (shell, React, typed API client)": _sizes(first),
        "+ Entra sign-in, production builds only (MSAL)": _sizes(on_sign_in),
        "+ first call or chat (ACS UI Library, Calling + Chat SDKs)": _sizes(on_call),
        "everything (incl. video effects, loaded only if used)": _sizes(set(outputs)),
    }


def browser_tests() -> float | None:
    """Seconds for the browser tests, server and browser start included; None when skipped."""
    if not Path("/usr/bin/chromium").exists():
        return None
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/browser"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    return time.perf_counter() - began if done.returncode == 0 else None


def report() -> str:
    lines = ["", "Web client (web/, esbuild, minified):"]
    sizes = bundle()
    if sizes is None:
        lines.append("  not built: `make web` first")
    else:
        for label, (raw, gz) in sizes.items():
            lines.append(f"  {label:<58} {raw / 1024:>8.0f} KiB  gzip {gz / 1024:>6.0f} KiB")
    seconds = browser_tests()
    lines.append(
        "  browser tests (tests/browser): "
        + (f"{seconds:.1f} s" if seconds is not None else "skipped (no Chromium, or they failed)")
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
