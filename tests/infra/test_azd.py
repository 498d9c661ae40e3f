"""azure.yaml, the azd hooks and the deploy docs agree with the templates.

Catches a hook that points at a missing script, a service azd cannot match to the Function App,
an Event Grid subscription aimed at the wrong function or event types, hooks reading azd outputs
that main.bicep does not produce, and a deploy guide (docs/deploy.md) that is missing a part.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.bicep import INFRA, REPO, load

SCRIPTS = INFRA / "scripts"


def _azure_yaml() -> dict[str, Any]:
    document = yaml.safe_load((REPO / "azure.yaml").read_text())
    assert isinstance(document, dict)
    return document


def test_azure_yaml_deploys_the_function_app() -> None:
    document = _azure_yaml()
    assert document["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    [(name, service)] = document["services"].items()
    assert service == {"project": ".", "language": "python", "host": "function"}
    # azd finds the app by this tag; main.bicep must put the service name on it.
    app_tags = load(INFRA / "main.bicep").modules["functionApp"][1]["params"]["appTags"]
    assert f"'azd-service-name': '{name}'" in app_tags.text


def test_every_hook_script_exists() -> None:
    hooks = _azure_yaml()["hooks"]
    assert {"preprovision", "postdeploy"} <= set(hooks)
    for hook in hooks.values():
        for platform in ("posix", "windows"):
            script = REPO / hook[platform]["run"]
            assert script.is_file(), script
            assert hook[platform]["continueOnError"] is False


def test_hooks_read_only_outputs_main_bicep_produces() -> None:
    outputs = set(load(INFRA / "main.bicep").outputs)
    for script in ("postdeploy.sh", "postdeploy.ps1"):
        text = (SCRIPTS / script).read_text()
        used = set(re.findall(r"\b(AZURE_[A-Z_]+|ACS_[A-Z_]+)\b", text))
        assert used, script
        assert used - outputs == set(), f"{script} reads values azd never gets"


@pytest.mark.parametrize("script", ["postdeploy.sh", "postdeploy.ps1"])
def test_sms_events_are_subscribed_to_the_sms_events_function(script: str) -> None:
    text = (SCRIPTS / script).read_text()
    # The function the endpoint names: FUNCTION_NAME=... (sh) or $functionName = '...' (pwsh).
    names = re.findall(r"^(?:FUNCTION_NAME=|\$functionName = ')(\w+)", text, re.MULTILINE)
    assert names == ["sms_events"]
    assert re.search(r"--endpoint \S*/functions/\$\{?(FUNCTION_NAME|functionName)\b", text)
    assert "--endpoint-type azurefunction" in text
    assert "Microsoft.Communication.SMSReceived" in text
    assert "Microsoft.Communication.SMSDeliveryReportReceived" in text


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.sh")))
def test_shell_scripts_parse(script: str) -> None:
    shell = shutil.which("sh")
    assert shell
    subprocess.run([shell, "-n", str(SCRIPTS / script)], check=True)


def _preprovision(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(SCRIPTS / "preprovision.sh")],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_preprovision_refuses_what_could_not_serve_a_request() -> None:
    assert _preprovision({}).returncode != 0
    assert _preprovision({"AUTH_MODE": "dev", "AUTH_AUDIENCE": "x"}).returncode != 0
    assert _preprovision({"AUTH_MODE": "jwt"}).returncode != 0
    ok = _preprovision({"AUTH_MODE": "jwt", "AUTH_AUDIENCE": "api://x"})
    assert ok.returncode == 0, ok.stderr
    assert "SMS_FROM is empty" in ok.stdout


def test_graph_setup_never_creates_a_secret() -> None:
    text = (SCRIPTS / "setup-graph.sh").read_text()
    assert "OnlineMeetings.ReadWrite.All" in text
    assert "credential reset" not in text
    assert "passwordCredentials" not in text
    assert "New-CsApplicationAccessPolicy" in (SCRIPTS / "teams-access-policy.ps1").read_text()


def test_deploy_docs_section() -> None:
    doc = (REPO / "docs" / "deploy.md").read_text()
    for needed in ("azd up", "AUTH_MODE", "easyauth", "jwt", "setup-graph.sh", "cost"):
        assert needed in doc, needed
    assert Path(REPO / "azure.yaml").is_file()


def test_postdeploy_subscribes_sms_events_and_reruns_safely(tmp_path: Path) -> None:
    """With an `az` that records its calls: the hook waits for the function, subscribes it, and a
    second run does the same PUT again (idempotent); it never skips the subscription."""
    log = tmp_path / "az.log"
    az = tmp_path / "az"
    az.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexit 0\n')
    az.chmod(0o755)
    env = {
        "PATH": f"{tmp_path}:/usr/bin:/bin",
        "AZURE_RESOURCE_GROUP": "rg",
        "ACS_EVENTGRID_SYSTEM_TOPIC": "topic",
        "AZURE_FUNCTION_APP_ID": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/a",
    }
    for _ in range(2):
        done = subprocess.run(
            ["sh", str(SCRIPTS / "postdeploy.sh")], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    creates = [c for c in calls if c.startswith("eventgrid system-topic event-subscription create")]
    creates = [c for c in creates if "/functions/sms_events" in c]  # push.sh adds call_events
    assert len(creates) == 2
    assert "/functions/sms_events" in creates[0]
    for script in ("postdeploy.sh", "postdeploy.ps1"):
        assert "exit 0" not in (SCRIPTS / script).read_text()


# --- push (infra/scripts/push.sh, push.ps1) ----------------------------------------------------


@pytest.mark.parametrize("script", ["push.sh", "push.ps1"])
def test_push_hook_links_the_hub_and_subscribes_call_events(script: str) -> None:
    text = (SCRIPTS / script).read_text()
    outputs = set(load(INFRA / "main.bicep").outputs)
    used = set(re.findall(r"\b((?:AZURE|ACS|NOTIFICATION_HUB)_[A-Z_]+)\b", text))
    assert used - outputs == set(), f"{script} reads values azd never gets"
    assert "NOTIFICATION_HUB_ID" in used
    assert "/linkNotificationHub?api-version=" in text
    names = re.findall(r"^(?:CALL_FUNCTION=|\$callFunction = ')(\w+)", text, re.MULTILINE)
    assert names == ["call_events"]
    assert re.search(r"--endpoint \S*/functions/\$\{?(CALL_FUNCTION|callFunction)\b", text)
    assert (
        "--included-event-types Microsoft.Communication.CallStarted "
        "Microsoft.Communication.CallEnded" in text
    )
    # The connection string for ACS goes through a file, never a command-line argument or echo.
    assert not re.search(r"(echo|Write-Host)[^\n]*\$\{?connection", text, re.IGNORECASE)
    assert '--body "@$body"' in text


@pytest.mark.parametrize(
    ("hook", "push"), [("postdeploy.sh", "push.sh"), ("postdeploy.ps1", "push.ps1")]
)
def test_postdeploy_runs_the_push_hook(hook: str, push: str) -> None:
    assert push in (SCRIPTS / hook).read_text()


def test_push_hook_subscribes_call_events_and_reruns_safely(tmp_path: Path) -> None:
    """With an `az` that records its calls: no hub in the environment is said and skipped, the
    call_events subscription is the same PUT on every run, and with a hub the link is a POST of
    a body file (the connection string never on the command line)."""
    log = tmp_path / "az.log"
    az = tmp_path / "az"
    az.write_text(
        f'#!/bin/sh\necho "$@" >> {log}\n'
        'case "$*" in *listKeys*) echo secret-connection-string ;; esac\nexit 0\n'
    )
    az.chmod(0o755)
    env = {
        "PATH": f"{tmp_path}:/usr/bin:/bin",
        "AZURE_RESOURCE_GROUP": "rg",
        "ACS_EVENTGRID_SYSTEM_TOPIC": "topic",
        "ACS_RESOURCE_NAME": "acs",
        "AZURE_FUNCTION_APP_ID": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/a",
    }
    skipped = subprocess.run(
        ["sh", str(SCRIPTS / "push.sh")], env=env, capture_output=True, text=True
    )
    assert skipped.returncode == 0, skipped.stderr
    assert "not linked" in skipped.stdout
    hub = (
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.NotificationHubs/namespaces/n/"
        "notificationHubs/h"
    )
    linked = subprocess.run(
        ["sh", str(SCRIPTS / "push.sh")],
        env={**env, "NOTIFICATION_HUB_ID": hub},
        capture_output=True,
        text=True,
    )
    assert linked.returncode == 0, linked.stderr
    assert "secret-connection-string" not in linked.stdout + linked.stderr
    calls = log.read_text().splitlines()
    creates = [c for c in calls if c.startswith("eventgrid system-topic event-subscription create")]
    assert len(creates) == 2
    assert all("/functions/call_events" in c for c in creates)
    [link] = [c for c in calls if "linkNotificationHub" in c]
    assert "--body @" in link
    assert "secret-connection-string" not in link
