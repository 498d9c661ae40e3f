"""The documentation as the tests read it: README.md and docs/*.md, their sections, tables and
the walkthrough's shell blocks (README's five minutes, then each capability's page, in the
order a reader runs them in one shell)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

# The walkthrough, in reading order: each page's commands build on the ones before.
WALKTHROUGH_PAGES = (
    "README.md",
    "docs/identity.md",
    "docs/friends.md",
    "docs/chat.md",
    "docs/clubs.md",
    "docs/meetings.md",
    "docs/phone.md",
    "docs/push.md",
)
README_WALKTHROUGH = "Five minutes with the API"


def text(page: str) -> str:
    return (REPO / page).read_text()


def section(page_text: str, title: str) -> str:
    """The text of the `## title` section, up to the next `## ` heading."""
    start = page_text.index(f"\n## {title}\n")
    end = page_text.find("\n## ", start + 1)
    return page_text[start : end if end != -1 else len(page_text)]


def table_rows(page_text: str) -> list[list[str]]:
    """The cells of every Markdown table row in the text, header and separator rows included."""
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in page_text.splitlines()
        if line.startswith("|")
    ]


def walkthrough_section(page: str) -> str:
    title = README_WALKTHROUGH if page == "README.md" else "Walkthrough"
    return section(text(page), title)


def walkthrough_blocks(page: str) -> list[str]:
    """The `sh` blocks of a page's walkthrough section, as written."""
    return re.findall(r"```sh\n(.*?)```", walkthrough_section(page), flags=re.DOTALL)


def walkthrough_commands() -> list[str]:
    """Every command line of the walkthrough (comments dropped), across pages, in order."""
    lines = []
    for page in WALKTHROUGH_PAGES:
        for block in walkthrough_blocks(page):
            lines += [line for line in block.splitlines() if not line.lstrip().startswith("#")]
    return lines
