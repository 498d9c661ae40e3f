"""checkov over infra/ really parses and checks the templates.

checkov skips a Bicep file it cannot parse and then reports nothing about it, so a green
`make infra-check` alone could mean "checked nothing". This runs checkov the same way (its own
venv, the same config) with JSON output and asserts that it parsed every file, checked resources in
every file that declares some, passed more than zero checks, failed none, and that every skip
carries a reason.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.bicep import INFRA, REPO, bicep_files, load

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    if not CHECKOV.exists():
        # The Makefile's own target builds checkov's venv (once; later runs reuse it).
        subprocess.run(["make", "-s", ".venv-checkov/.installed"], cwd=REPO, check=True)
    result = subprocess.run(
        [str(CHECKOV), "--config-file", "infra/.checkov.yaml", "--output", "json"],
        cwd=REPO,
        env={**os.environ, "CKV_PARSE_ERROR_FAIL": "true"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    document = json.loads(result.stdout)
    reports = document if isinstance(document, list) else [document]
    [bicep] = [r for r in reports if r["check_type"] == "bicep"]
    assert isinstance(bicep, dict)
    return bicep


def _checked_files(report: dict[str, Any]) -> set[Path]:
    results = report["results"]
    return {
        (INFRA / entry["file_path"].lstrip("/")).resolve()
        for kind in ("passed_checks", "failed_checks", "skipped_checks")
        for entry in results.get(kind, [])
    }


def test_checkov_parsed_everything_and_checked_resources(report: dict[str, Any]) -> None:
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 0
    assert summary["failed"] == 0
    assert summary["resource_count"] > 0


def test_checkov_checked_each_file_it_has_checks_for(report: dict[str, Any]) -> None:
    # Files whose resources checkov has Bicep checks for: storage, Cosmos DB, the Function App.
    expected = {
        path.resolve()
        for path in bicep_files()
        if any(
            res.type
            in (
                "Microsoft.Storage/storageAccounts",
                "Microsoft.DocumentDB/databaseAccounts",
                "Microsoft.Web/sites",
            )
            for res in load(path).all_resources()
        )
    }
    assert len(expected) == 3
    assert expected <= _checked_files(report)


def test_every_skip_is_justified(report: dict[str, Any]) -> None:
    for entry in report["results"].get("skipped_checks", []):
        reason = (entry.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason.strip()) > 20, f"{entry['check_id']} in {entry['file_path']}: {reason!r}"


def test_checkov_config_checks_infra_as_bicep_and_fails_on_findings() -> None:
    config = yaml.safe_load((INFRA / ".checkov.yaml").read_text())
    assert config["directory"] == ["infra"]
    assert config["framework"] == ["bicep"]
    assert config["compact"] is True
    assert config.get("soft-fail", False) is False
    assert not {"skip-check", "soft-fail-on", "skip-path"} & set(config), "skips belong inline"
