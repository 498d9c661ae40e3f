"""The README claims only what the code does: cheap checks of the claims a reader runs or relies on.

Each check compares a part of README.md with the thing it describes: the `make` targets it names
with the Makefile, its settings table with `switchboard.settings`, the routes its walkthrough
curls with the app's route table, its error table with the error classes, and its "not read yet"
marks with the code that actually reads each setting.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.infra.bicep import REPO

README = (REPO / "README.md").read_text()
SOURCE_DIRS = ("switchboard", "blueprints")


def _section(title: str) -> str:
    """The text of the `## title` section, up to the next `## ` heading."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def _table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in `text`, header and separator rows included."""
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("|")
    ]


def _settings_table() -> dict[str, str]:
    """Setting name → its meaning cell, from the Settings section's table."""
    names: dict[str, str] = {}
    for cells in _table_rows(_section("Settings"))[2:]:
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
            names[name] = cells[-1]
    return names


def test_every_make_target_named_exists() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.MULTILINE))
    named = set(re.findall(r"(?:^|`)make ([a-z][a-z-]*)", README, flags=re.MULTILINE))
    assert {"run", "check"} <= named  # the parse found the two commands
    assert named <= targets, f"README names make targets the Makefile lacks: {named - targets}"


def test_settings_table_matches_the_settings_model() -> None:
    from switchboard.settings import APP_SETTING_NAMES

    documented = set(_settings_table())
    assert documented - APP_SETTING_NAMES == set(), "documented but not a setting"
    assert APP_SETTING_NAMES - documented == set(), "a setting the README does not document"


def _read_by_code(name: str) -> bool:
    """Whether any module but settings.py mentions the setting's field (`settings.cosmos_key`)."""
    field = re.compile(rf"\b{name.lower()}\b")
    for folder in SOURCE_DIRS:
        for path in (REPO / folder).rglob("*.py"):
            if path.name != "settings.py" and field.search(path.read_text()):
                return True
    return bool(field.search((REPO / "function_app.py").read_text()))


@pytest.mark.parametrize("name", sorted(_settings_table()))
def test_not_read_yet_marks_are_true(name: str) -> None:
    marked_unused = "not read yet" in _settings_table()[name]
    assert marked_unused != _read_by_code(name), (
        f"{name}: README says {'not read yet' if marked_unused else 'in use'}, the code disagrees"
    )


def _walkthrough_calls() -> set[tuple[str, str]]:
    """(method, path under /api/) of every curl in the walkthrough, joined across `\\` lines."""
    text = _section("Walkthrough (embedded mode)").replace("\\\n", " ")
    calls = set()
    for line in text.splitlines():
        if "curl " not in line:
            continue
        match = re.search(r"https?://[^/\s]+/api/([^\s\"'?]+)", line)
        assert match, line
        method = re.search(r"-X ([A-Z]+)", line)
        calls.add((method.group(1) if method else "GET", match.group(1)))
    return calls


def test_walkthrough_calls_only_routes_that_exist() -> None:
    import function_app  # noqa: F401  (registers the blueprints, filling ROUTES)
    from switchboard.http import ROUTES

    # A route's `{param}` matches any one path segment the walkthrough fills in (`friends/bob`).
    routes = [
        (route.method, re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(route.path))))
        for route in ROUTES
    ]
    calls = _walkthrough_calls()
    assert ("POST", "token") in calls
    assert ("DELETE", "me") in calls
    assert ("GET", "friends/bob/call-info") in calls
    missing = {
        (method, path)
        for method, path in calls
        if not any(m == method and pattern.fullmatch(path) for m, pattern in routes)
    }
    assert not missing, f"walkthrough calls routes the app lacks: {missing}"


def test_walkthrough_restarts_before_it_erases() -> None:
    text = _section("Walkthrough (embedded mode)")
    assert text.index("start it again") < text.index("-X DELETE")


def test_error_table_codes_are_the_apps() -> None:
    from switchboard import errors

    def subclasses(cls: type[errors.SwitchboardError]) -> list[type[errors.SwitchboardError]]:
        return [cls, *(sub for direct in cls.__subclasses__() for sub in subclasses(direct))]

    # Each error class carries its own status beside its code.
    status_of = {cls.code: cls.status for cls in subclasses(errors.SwitchboardError)}
    outside_the_table = {"misconfigured": 500, "internal_error": 500, "method_not_allowed": 405}
    for cells in _table_rows(_section("Walkthrough (embedded mode)"))[2:]:
        if not cells[0].isdigit():
            continue
        for code in re.findall(r"`([a-z_]+)`", re.sub(r"\([^)]*\)", "", cells[1])):
            expected = status_of.get(code, outside_the_table.get(code))
            assert expected == int(cells[0]), f"{code}: README {cells[0]}, app {expected}"
    assert "`method_not_allowed`" in README
    devserver = (Path(errors.__file__).parent / "dev" / "devserver.py").read_text()
    assert '"method_not_allowed"' in devserver


def test_error_table_lists_every_code_the_app_raises() -> None:
    """A new error class raised anywhere in the app must reach the README's error table."""
    from switchboard import errors

    table = _section("Walkthrough (embedded mode)")
    raised = set()
    for folder in SOURCE_DIRS:
        for path in (REPO / folder).rglob("*.py"):
            if path.name != "errors.py":
                raised |= set(re.findall(r"\b([A-Z][A-Za-z]+)\(", path.read_text()))
    codes = {
        cls.code
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, errors.SwitchboardError) and name in raised
    }
    assert "push_not_configured" in codes  # the scan found the raises
    missing = {code for code in codes if f"`{code}`" not in table}
    assert not missing, f"codes the app answers but the README's error table lacks: {missing}"


def test_tests_table_names_every_tests_folder() -> None:
    folders = {path.name for path in (REPO / "tests").iterdir() if (path / "__init__.py").exists()}
    named = set(re.findall(r"^\| `tests/([a-z0-9_]+)`", _section("Tests"), flags=re.MULTILINE))
    assert "unit" in named  # the parse found the table
    assert folders == named, f"tests/ folders vs. the README's Tests table: {folders ^ named}"


def _walkthrough_commands() -> list[str]:
    """The command lines (comments dropped) of every `sh` block before "From a client", in order:
    the walkthroughs, which build on each other in one shell session."""
    text = README[: README.index("\n## From a client\n")]
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        lines += [line for line in block.splitlines() if not line.lstrip().startswith("#")]
    return lines


def test_walkthrough_variables_are_set_before_use() -> None:
    """A reader runs the commands verbatim: `$CLUB` must have been set by an earlier command."""
    assigned: set[str] = set()
    unset = []
    for line in _walkthrough_commands():
        command = line.split(" #")[0]
        used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", command))
        unset += [f"{name} in: {line.strip()}" for name in sorted(used - assigned)]
        assigned |= set(re.findall(r"^\s*([A-Z][A-Z0-9_]*)=", command))
    assert "APP_TOKEN" in assigned  # the parse found the first sign-in
    assert not unset, f"walkthrough variables used before any command sets them: {unset}"


def test_walkthrough_commands_carry_no_shortened_ids() -> None:
    """An id shortened with `…` is fine in an output, never in a command the reader runs."""
    shortened = [line.strip() for line in _walkthrough_commands() if "…" in line]
    assert not shortened, f"commands that cannot run as written: {shortened}"
