"""The documentation claims only what the code does: cheap checks of the claims a reader runs or
relies on, in README.md and docs/.

Each check compares a part of the docs with the thing it describes: the `make` targets they name
with the Makefile, the settings table (docs/settings.md) with `switchboard.settings`, the routes
the walkthrough curls and the route table (docs/architecture.md) with the app's route table, the
error table with the error classes, the tests table (docs/testing.md) with tests/, and every
`docs/…` reference in the code with a page and heading that exist. That the walkthrough's
commands run as written is tests/e2e/test_docs_walkthrough.py.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.docs import (
    DOCS,
    REPO,
    WALKTHROUGH_PAGES,
    section,
    table_rows,
    text,
    walkthrough_commands,
    walkthrough_section,
)

README = text("README.md")
ARCHITECTURE = text("docs/architecture.md")
SETTINGS = text("docs/settings.md")
SOURCE_DIRS = ("switchboard", "blueprints")
# Pages a link may name before they exist (none now: every linked page must exist).
PAGES_WRITTEN_ELSEWHERE: set[str] = set()


def _all_docs() -> dict[str, str]:
    pages = {"README.md": README}
    pages |= {f"docs/{path.name}": path.read_text() for path in sorted(DOCS.glob("*.md"))}
    return pages


def _settings_table() -> dict[str, str]:
    """Setting name → its meaning cell, from docs/settings.md's table."""
    names: dict[str, str] = {}
    rows = table_rows(SETTINGS)
    assert rows[0][:2] == ["setting", "default"], rows[0]
    for cells in rows[2:]:
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
            names[name] = cells[-1]
    return names


def test_the_readme_is_a_front_door() -> None:
    lines = README.count("\n")
    assert lines <= 250, f"README.md is {lines} lines; guides belong in docs/"
    assert "SB=http://127.0.0.1:7071" in README
    # Commands name the base URL once: every other command in the walkthrough says $SB.
    fixed = [line for line in walkthrough_commands() if "127.0.0.1:7071" in line]
    assert fixed == ["SB=http://127.0.0.1:7071"], fixed


def test_every_make_target_named_exists() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.MULTILINE))
    named: set[str] = set()
    for page in _all_docs().values():
        named |= set(re.findall(r"(?:^|`)make ([a-z][a-z-]*)", page, flags=re.MULTILINE))
    assert {"run", "check", "test-fast"} <= named  # the parse found the commands
    assert named <= targets, f"the docs name make targets the Makefile lacks: {named - targets}"


def test_settings_table_matches_the_settings_model() -> None:
    from switchboard.settings import APP_SETTING_NAMES

    documented = set(_settings_table())
    assert documented - APP_SETTING_NAMES == set(), "documented but not a setting"
    assert APP_SETTING_NAMES - documented == set(), "a setting docs/settings.md does not document"


def _read_by_code(name: str) -> bool:
    """Whether any module but settings.py mentions the setting's field (`settings.cosmos_key`),
    or a check in settings.py reads it (`self.switchboard_trust_principal_headers`)."""
    field = re.compile(rf"\b{name.lower()}\b")
    for folder in SOURCE_DIRS:
        for path in (REPO / folder).rglob("*.py"):
            if path.name != "settings.py" and field.search(path.read_text()):
                return True
            if path.name == "settings.py" and re.search(
                rf"self\.{name.lower()}\b", path.read_text()
            ):
                return True
    return bool(field.search((REPO / "function_app.py").read_text()))


@pytest.mark.parametrize("name", sorted(_settings_table()))
def test_not_read_yet_marks_are_true(name: str) -> None:
    marked_unused = "not read yet" in _settings_table()[name]
    assert marked_unused != _read_by_code(name), (
        f"{name}: docs say {'not read yet' if marked_unused else 'in use'}, the code disagrees"
    )


def _walkthrough_calls() -> set[tuple[str, str]]:
    """(method, path under /api/) of every curl in the walkthrough, joined across `\\` lines."""
    calls = set()
    joined = "\n".join(walkthrough_commands()).replace("\\\n", " ")
    for line in joined.splitlines():
        if "curl " not in line or "/runtime/webhooks/" in line:
            continue
        match = re.search(r"(?:\$SB|https?://[^/\s]+)/api/([^\s\"'?]+)", line)
        assert match, line
        method = re.search(r"-X ([A-Z]+)", line)
        calls.add((method.group(1) if method else "GET", match.group(1)))
    return calls


def _route_patterns() -> list[tuple[str, re.Pattern[str]]]:
    import function_app  # noqa: F401  (registers the blueprints, filling ROUTES)
    from switchboard.http import ROUTES

    # A route's `{param}` matches any one path segment the walkthrough fills in (`friends/bob`).
    return [
        (route.method, re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(route.path))))
        for route in ROUTES
    ]


def test_walkthrough_calls_only_routes_that_exist() -> None:
    routes = _route_patterns()
    calls = _walkthrough_calls()
    assert ("POST", "token") in calls
    assert ("DELETE", "me") in calls
    assert ("GET", "friends/bob/call-info") in calls
    # $CLUB and $MEETING stand for one path segment, as an id does.
    missing = {
        (method, path)
        for method, path in calls
        if not any(
            m == method and pattern.fullmatch(re.sub(r"\$[A-Z_]+", "x", path))
            for m, pattern in routes
        )
    }
    assert not missing, f"walkthrough calls routes the app lacks: {missing}"


def test_walkthrough_restarts_before_it_erases() -> None:
    five_minutes = walkthrough_section("README.md")
    assert "start it again" in five_minutes
    assert "-X DELETE $SB/api/me" not in five_minutes
    assert "-X DELETE $SB/api/me" in walkthrough_section("docs/identity.md")


def test_route_table_is_the_apps() -> None:
    import function_app  # noqa: F401
    from switchboard.http import ROUTES

    documented = {
        (cells[1], cells[2].strip("`"))
        for cells in table_rows(section(ARCHITECTURE, "HTTP API"))[2:]
        if cells[1] != "Event Grid"
    }
    actual = {(route.method, f"/api/{route.path}") for route in ROUTES}
    assert documented == actual, f"route table vs. the app: {documented ^ actual}"


def test_error_table_codes_are_the_apps() -> None:
    from switchboard import errors

    def subclasses(cls: type[errors.SwitchboardError]) -> list[type[errors.SwitchboardError]]:
        return [cls, *(sub for direct in cls.__subclasses__() for sub in subclasses(direct))]

    # Each error class carries its own status beside its code.
    status_of = {cls.code: cls.status for cls in subclasses(errors.SwitchboardError)}
    outside_the_table = {"misconfigured": 500, "internal_error": 500, "method_not_allowed": 405}
    rows = table_rows(section(ARCHITECTURE, "Errors"))[2:]
    assert len(rows) > 5  # the parse found the table
    for cells in rows:
        if not cells[0].isdigit():
            continue
        for code in re.findall(r"`([a-z_]+)`", re.sub(r"\([^)]*\)", "", cells[1])):
            expected = status_of.get(code, outside_the_table.get(code))
            assert expected == int(cells[0]), f"{code}: docs {cells[0]}, app {expected}"
    assert "`method_not_allowed`" in ARCHITECTURE
    devserver = (REPO / "switchboard" / "dev" / "devserver.py").read_text()
    assert "errors.MethodNotAllowed(" in devserver  # the devserver answers through errors.*


def test_error_table_lists_every_code_the_app_raises() -> None:
    """A new error class raised anywhere in the app must reach the error table."""
    from switchboard import errors

    table = section(ARCHITECTURE, "Errors")
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
    assert not missing, f"codes the app answers but the error table lacks: {missing}"


def test_tests_table_names_every_tests_folder() -> None:
    folders = {path.name for path in (REPO / "tests").iterdir() if (path / "__init__.py").exists()}
    testing = text("docs/testing.md")
    named = set(re.findall(r"^\| `tests/([a-z0-9_]+)`", testing, flags=re.MULTILINE))
    assert "unit" in named  # the parse found the table
    assert folders == named, f"tests/ folders vs. docs/testing.md's table: {folders ^ named}"


def test_walkthrough_variables_are_set_before_use() -> None:
    """A reader runs the commands verbatim: `$CLUB` must have been set by an earlier command."""
    assigned: set[str] = set()
    unset = []
    for line in walkthrough_commands():
        command = line.split(" #")[0]
        used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", command))
        unset += [f"{name} in: {line.strip()}" for name in sorted(used - assigned)]
        assigned |= set(re.findall(r"^\s*([A-Z][A-Z0-9_]*)=", command))
    assert {"SB", "APP_TOKEN", "CLUB"} <= assigned  # the parse found the walkthrough
    assert not unset, f"walkthrough variables used before any command sets them: {unset}"


def test_walkthrough_commands_carry_no_shortened_ids() -> None:
    """An id shortened with `…` is fine in an output, never in a command the reader runs."""
    shortened = [line.strip() for line in walkthrough_commands() if "…" in line]
    assert not shortened, f"commands that cannot run as written: {shortened}"


def test_every_walkthrough_page_has_a_walkthrough() -> None:
    for page in WALKTHROUGH_PAGES:
        assert "```sh\n" in walkthrough_section(page), page


def _headings(page_text: str) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces to -."""
    anchors = set()
    for title in re.findall(
        r"^#+ (.+)$", re.sub(r"```.*?```", "", page_text, flags=re.DOTALL), re.M
    ):
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_links_between_pages_land() -> None:
    """Every relative link in README.md and docs/ names a page (and heading) that exists."""
    broken = []
    for name, page in _all_docs().items():
        here = (REPO / name).parent
        for target in re.findall(r"\]\(([^)\s]+)\)", page):
            if re.match(r"[a-z]+:", target):
                continue  # an outside URL
            path, _, anchor = target.partition("#")
            file = (here / path).resolve() if path else REPO / name
            if not file.exists():
                if file.name not in PAGES_WRITTEN_ELSEWHERE:
                    broken.append(f"{name}: {target}")
                continue
            if anchor and file.suffix == ".md" and anchor not in _headings(file.read_text()):
                broken.append(f"{name}: {target} (no such heading)")
    assert not broken, broken


def test_code_references_name_docs_that_exist() -> None:
    """The code points at docs/ (never at a design document it does not ship): each reference
    names a page that exists, and a heading on it."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    sources = [
        REPO / path
        for path in listed
        if path.endswith((".py", ".ts", ".tsx", ".bicep", ".sh", ".ps1", "Makefile", ".funcignore"))
        and (REPO / path).is_file()
    ]
    references = 0
    problems = []
    for source in sources:
        body = source.read_text()
        if re.search(r"DESIGN §", body) and source.name != "test_readme.py":
            problems.append(f"{source.relative_to(REPO)} cites DESIGN §")
        for page, anchor in re.findall(r"\bdocs/([a-z-]+\.md)(?:#([a-z0-9-]+))?", body):
            references += 1
            file = DOCS / page
            if not file.exists():
                if page not in PAGES_WRITTEN_ELSEWHERE:
                    problems.append(f"{source.relative_to(REPO)}: docs/{page} does not exist")
            elif anchor and anchor not in _headings(file.read_text()):
                problems.append(f"{source.relative_to(REPO)}: docs/{page}#{anchor}: no heading")
    assert references > 20  # the scan found the references
    assert not problems, problems
