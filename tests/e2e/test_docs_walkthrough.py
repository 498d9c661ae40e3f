"""The walkthrough runs as written: every `sh` block of the README's five minutes and of each
capability's page (docs/identity.md … docs/push.md), in reading order, in one bash session,
against a devserver — with only the README's one `SB=` line changed to this server's port, and
the server restarted where the README says to restart it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.docs import README_WALKTHROUGH, WALKTHROUGH_PAGES, section, text, walkthrough_blocks
from tests.e2e.conftest import DevServerProcess

pytestmark = pytest.mark.e2e

STATE = "walkthrough.env"


def _script(blocks: list[str], state: Path, *, restore: bool) -> str:
    """One bash script: stop at the first failing command (a failed sign-in, a pipe that breaks),
    and hand the shell's variables on to the next part (the README's restart sits between)."""
    head = "set -euo pipefail\n"
    if restore:
        head += f"source {state}\n"
    assigned = sorted(
        {name for block in blocks for name in re.findall(r"^\s*([A-Z][A-Z0-9_]*)=", block, re.M)}
    )
    tail = f"\ndeclare -p {' '.join(assigned)} > {state}\n" if assigned else ""
    return head + "\n".join(blocks) + tail


def _run(script: str, cwd: Path) -> str:
    done = subprocess.run(
        ["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"the walkthrough stopped:\n{done.stdout[-3000:]}\n{done.stderr}"
    return done.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walkthrough is curl commands")
def test_every_walkthrough_command_runs_as_written(
    fresh_devserver: DevServerProcess, tmp_path: Path
) -> None:
    readme_blocks = walkthrough_blocks("README.md")
    # The README's text between its blocks says when to restart: after the first one.
    five_minutes = section(text("README.md"), README_WALKTHROUGH)
    assert five_minutes.index("start it again") > five_minutes.index(readme_blocks[0])
    first, *rest_of_readme = readme_blocks
    port_line = "SB=http://127.0.0.1:7071"
    assert first.count(port_line) == 1
    first = first.replace(port_line, f"SB={fresh_devserver.base_url}")

    state = tmp_path / STATE
    outputs = [_run(_script([first], state, restore=False), tmp_path)]
    fresh_devserver.restart()
    later = rest_of_readme + [
        block for page in WALKTHROUGH_PAGES[1:] for block in walkthrough_blocks(page)
    ]
    outputs.append(_run(_script(later, state, restore=True), tmp_path))
    out = "\n".join(outputs)

    assert "internal_error" not in out
    answers, codes = _answers(out)
    assert not [a for a in answers if isinstance(a.get("status"), int) and a["status"] >= 500]
    # What the pages promise, seen in the answers: alice still herself after the restart,
    # bob's friendship accepted, the direct thread, the call registry's 409, the verified
    # number, the opt-out, and bob's push.
    profiles = [a for a in answers if a.get("userId") == "alice" and "phoneVerified" in a]
    assert len(profiles) >= 2
    assert profiles[1]["communicationUserId"] == profiles[0]["communicationUserId"]
    assert {"userId": "alice", "status": "accepted"} in answers
    assert any(a.get("kind") == "direct" for a in answers)
    assert any(a.get("code") == "call_active" for a in answers)
    assert any(a.get("phoneVerified") is True for a in answers)
    assert any(a.get("code") == "recipient_opted_out" for a in answers)
    assert any(a.get("code") == "no_active_call" for a in answers)
    # The call's pushes go out in the background (the page says the answer does not wait for
    # them): bob's device has it within moments, if not already when the page's command ran.
    deadline = time.monotonic() + 15
    while True:
        sent = httpx.get(f"{fresh_devserver.base_url}/api/dev/push").json()["items"]
        if any(push["deliveredTo"] for push in sent) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert any(push["deliveredTo"] for push in sent), "bob's device got the push"
    # The status-only commands: the pages' 204s, 403 and 404 are what the server said.
    assert {"204", "403", "404", "200"} <= set(codes), codes
    assert not [code for code in codes if code.startswith("5")], codes


def _answers(out: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The JSON answers and the `-w '%{http_code}\\n'` status lines of the commands' output:
    curl prints a body without a newline, so answers follow each other on one line."""
    decoder = json.JSONDecoder()
    answers: list[dict[str, Any]] = []
    codes: list[str] = []
    i = 0
    while i < len(out):
        if out[i].isspace():
            i += 1
        elif out[i] == "{":
            answer, i = decoder.raw_decode(out, i)
            answers.append(answer)
        elif status := re.match(r"(\d{3})\n", out[i:]):
            codes.append(status.group(1))
            i += len(status.group(0))
        else:
            raise AssertionError(f"unexpected output at {i}: {out[i : i + 200]!r}")
    return answers, codes
