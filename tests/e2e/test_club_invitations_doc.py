"""docs/club-invitations.md runs as written: its shell walkthrough, against a fresh devserver,
prints exactly the `# →` lines the page shows, in order."""

from __future__ import annotations

import re
import subprocess

from tests.e2e.conftest import ROOT, DevServerProcess

DOC = ROOT / "docs" / "club-invitations.md"


def test_the_invitation_walkthrough_runs_as_written(fresh_devserver: DevServerProcess) -> None:
    [script] = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert "SB=http://127.0.0.1:7071" in script
    expected = [
        line.removeprefix("# → ") for line in script.splitlines() if line.startswith("# → ")
    ]
    script = script.replace("SB=http://127.0.0.1:7071", f"SB={fresh_devserver.base_url}")
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert [line for line in ran.stdout.splitlines() if line] == expected
