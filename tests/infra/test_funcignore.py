"""What a publish ships: the project tree (tracked files plus the caches and local state a working
copy accumulates) filtered by the real `.funcignore`, with gitignore rules as Core Tools and azd
apply them. It must be exactly the app — function_app.py, host.json, requirements.txt, LICENSE,
blueprints/ and switchboard/ without bytecode and without its development-only code
(switchboard/dev/, the devserver alias) — so a new top-level file or tool cache that the
ignore file misses fails here instead of being uploaded."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# What a working copy holds after `make check`, `make run`, `azd up` and an editor, beside git's.
WORKING_COPY_EXTRAS = (
    ".git/HEAD",
    ".venv/bin/python",
    ".venv-checkov/bin/python",
    "tests/node_modules/@vercel/cosmosdb-server/package.json",
    "web/node_modules/react/package.json",
    ".mypy_cache/3.12/switchboard/http.data.json",
    ".ruff_cache/0.17.6/123",
    ".pytest_cache/v/cache/nodeids",
    ".hypothesis/examples/ab/cd",
    ".schemathesis/report.json",
    ".azure/dev/.env",
    ".azure/config.json",
    ".switchboard/switchboard.sqlite",
    ".switchboard/dev-signing-key.pem",
    ".vscode/settings.json",
    ".env",
    ".DS_Store",
    "local.settings.json",
    "switchboard/__pycache__/http.cpython-312.pyc",
    "blueprints/__pycache__/system.cpython-312.pyc",
    "tests/__pycache__/conftest.cpython-312.pyc",
)


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    negated: bool
    directory_only: bool


def _regex(glob: str) -> str:
    out = ""
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif glob.startswith("**", i):
            out += ".*"
            i += 2
        elif glob[i] == "*":
            out += "[^/]*"
            i += 1
        elif glob[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(glob[i])
            i += 1
    return out


def parse(text: str) -> list[Rule]:
    """gitignore rules: `!` negates, a trailing `/` means directories only, a pattern without an
    inner `/` matches a name at any depth, one with a `/` is anchored at the root."""
    rules = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line.removeprefix("!")
        directory_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        body = _regex(line.lstrip("/"))
        regex = f"^{body}$" if anchored else f"^(?:.*/)?{body}$"
        rules.append(Rule(re.compile(regex), negated, directory_only))
    return rules


def ignored(rules: list[Rule], path: str, is_dir: bool) -> bool:
    verdict = False
    for rule in rules:  # the last matching rule decides
        if rule.directory_only and not is_dir:
            continue
        if rule.pattern.match(path):
            verdict = not rule.negated
    return verdict


def shipped(root: Path, rules: list[Rule]) -> set[str]:
    """Files a publish uploads. As in git, nothing inside an ignored directory comes back."""
    files: set[str] = set()
    for here, dirs, names in os.walk(root):
        rel = Path(here).relative_to(root)
        prefix = "" if rel == Path(".") else f"{rel.as_posix()}/"
        dirs[:] = [d for d in dirs if not ignored(rules, prefix + d, is_dir=True)]
        files |= {prefix + n for n in names if not ignored(rules, prefix + n, is_dir=False)}
    return files


def project_files() -> list[str]:
    """Tracked files plus untracked ones git would not ignore (a new file not yet committed)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [path for path in listed if (REPO_ROOT / path).is_file()]


def test_a_publish_ships_exactly_the_app(tmp_path: Path) -> None:
    tree = project_files()
    for path in [*tree, *WORKING_COPY_EXTRAS]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    rules = parse((REPO_ROOT / ".funcignore").read_text())

    dev_only = ("switchboard/dev/", "switchboard/devserver.py")
    # LICENSE too: the MIT terms ask that the notice go with every copy.
    expected = {"function_app.py", "host.json", "requirements.txt", "LICENSE"} | {
        path
        for path in tree
        if path.startswith(("blueprints/", "switchboard/")) and not path.startswith(dev_only)
    }
    assert "switchboard/runtime.py" in expected
    assert "switchboard/dev/devserver.py" in tree  # the dev code exists, and is left out
    assert shipped(tmp_path, rules) == expected


def test_the_published_app_runs_without_its_dev_code(tmp_path: Path) -> None:
    """The shipped files alone (no switchboard/dev/) import, compose every route but the dev
    ones, and build their runtime in Azure's shape without reaching for dev code."""
    rules = parse((REPO_ROOT / ".funcignore").read_text())
    for path in shipped(REPO_ROOT, rules):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / path, tmp_path / path)
    assert not (tmp_path / "switchboard" / "dev").exists()
    probe = (
        "import sys, function_app\n"
        "from switchboard.http import ROUTES\n"
        "paths = {r.path for r in ROUTES}\n"
        "assert 'token' in paths, paths\n"
        "assert not any(p.startswith('dev/') for p in paths), paths\n"
        "assert not any(m.startswith('switchboard.dev') for m in sys.modules)\n"
        "print('ok', len(paths))\n"
    )
    for extra in ({"AUTH_MODE": "jwt"}, {"WEBSITE_INSTANCE_ID": "x"}):
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(tmp_path), **extra}
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("ok"), done.stdout


def test_the_matcher_follows_gitignore_rules(tmp_path: Path) -> None:
    # The matcher itself, so a pass above means what it says.
    rules = parse("*.log\n/build/\ncache/\n!keep.log\nsrc/**/gen\n")
    paths = ("a.log", "keep.log", "x/b.log", "build/o", "lib/build", "lib/cache/f", "src/a/b/gen")
    for path in paths:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    assert shipped(tmp_path, rules) == {"keep.log", "lib/build"}
