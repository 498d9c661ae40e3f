"""requirements.txt is what the Functions host installs in Azure: every entry must be imported by
the app's runtime code (function_app.py, blueprints/, switchboard/ except its dev-only code, which
a publish leaves out), and the devserver's own needs (uvicorn) belong in requirements-dev.txt."""

from __future__ import annotations

import ast
import re
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = (REPO_ROOT / "switchboard" / "dev", REPO_ROOT / "switchboard" / "devserver.py")


def requirement_names(path: Path) -> list[str]:
    names = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.append(re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0])
    return names


def runtime_sources() -> list[Path]:
    sources = [REPO_ROOT / "function_app.py"]
    for package in ("blueprints", "switchboard"):
        sources += sorted((REPO_ROOT / package).rglob("*.py"))
    return [
        source
        for source in sources
        if not any(source == dev or source.is_relative_to(dev) for dev in DEV_ONLY)
    ]


def imported_modules() -> set[str]:
    """Every module the runtime code imports, as dotted names (`from a.b import c` gives a.b and
    a.b.c: c may be a submodule)."""
    found: set[str] = set()
    for source in runtime_sources():
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def modules_of(distribution: str) -> set[str]:
    """The dotted module names a distribution installs (from its RECORD)."""
    modules = set()
    for file in metadata.files(distribution) or []:
        parts = file.parts
        if file.suffix != ".py" or ".." in parts or parts[0].endswith((".dist-info", ".data")):
            continue
        dotted = list(parts[:-1]) if parts[-1] == "__init__.py" else [*parts[:-1], file.stem]
        modules.add(".".join(dotted))
    return modules


def test_every_runtime_requirement_is_imported_by_the_app() -> None:
    imported = imported_modules()
    assert "azure.functions" in imported  # the walk sees the app
    unused = [
        name
        for name in requirement_names(REPO_ROOT / "requirements.txt")
        if not modules_of(name) & imported
    ]
    assert unused == [], f"in requirements.txt but not imported by the app: {unused}"


def test_the_devserver_http_server_is_a_dev_requirement() -> None:
    runtime = {name.lower() for name in requirement_names(REPO_ROOT / "requirements.txt")}
    dev = {name.lower() for name in requirement_names(REPO_ROOT / "requirements-dev.txt")}
    assert "uvicorn" not in runtime
    assert "uvicorn" in dev
    assert "uvicorn" not in imported_modules()
