"""Log safety: caller-controlled values cannot forge or repaint a log line, and the Azure SDKs
log nothing at INFO unless asked to."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from switchboard.logs import AZURE_LOGGERS, quiet_azure_sdk_logging, safe


def test_safe_escapes_every_control_character() -> None:
    controls = "".join(chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)))
    escaped = safe(controls, limit=1000)
    assert escaped.isprintable()
    for escape in ("\\n", "\\r", "\\x1b", "\\x85", "\\x7f"):
        assert escape in escaped


def test_a_forged_log_line_stays_on_one_line() -> None:
    forged = "/api/x\r\n2026-01-01 INFO switchboard.devserver GET /api/admin 200 \x1b[31mred"
    line = safe(forged)
    for control in ("\r", "\n", "\x1b"):
        assert control not in line
    assert line.startswith("/api/x\\r\\n2026")


def test_safe_keeps_plain_text_and_escapes_backslashes() -> None:
    assert safe("/api/me") == "/api/me"
    assert safe("caf\u00e9") == "caf\u00e9"
    assert safe("a\\nb") == "a\\\\nb"  # a literal backslash-n sent in is not an escaped newline


def test_safe_truncates() -> None:
    assert safe("x" * 1000, limit=10) == "x" * 10 + "…[truncated]"


@pytest.fixture
def restore_azure_levels() -> Iterator[None]:
    saved = {name: logging.getLogger(name).level for name in AZURE_LOGGERS}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restore_azure_levels")
def test_azure_sdk_loggers_are_quiet_by_default() -> None:
    logging.getLogger("azure").setLevel(logging.INFO)
    quiet_azure_sdk_logging({})
    assert not logging.getLogger("azure.cosmos").isEnabledFor(logging.INFO)
    assert not logging.getLogger("azure.core.pipeline.policies.http_logging_policy").isEnabledFor(
        logging.INFO
    )
    assert logging.getLogger("azure.identity").isEnabledFor(logging.WARNING)


@pytest.mark.usefixtures("restore_azure_levels")
def test_azure_sdk_log_level_asks_for_more_and_a_bad_value_is_warning() -> None:
    assert quiet_azure_sdk_logging({"AZURE_SDK_LOG_LEVEL": "debug"}) == logging.DEBUG
    assert logging.getLogger("azure.cosmos").isEnabledFor(logging.DEBUG)
    assert quiet_azure_sdk_logging({"AZURE_SDK_LOG_LEVEL": "loud"}) == logging.WARNING


def test_safe_path_hides_invite_codes() -> None:
    from switchboard.logs import safe_path

    line = safe_path("/api/friends/invites/XZ9HebWxkyr6RP-UnIz3gQ")
    assert line == "/api/friends/invites/{code}"
    assert safe_path("/api/friends/bob") == "/api/friends/bob"
