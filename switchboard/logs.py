"""Logging helpers: what a caller sends is made safe before it reaches a log line, and the Azure
SDKs are kept quiet.

`safe(value)` escapes every control character (C0, DEL, C1) so a request path with `%0d%0a` cannot
forge a log line and ANSI escapes cannot repaint a terminal, and truncates what a caller could make
arbitrarily long. `quiet_azure_sdk_logging()` puts the Azure SDK loggers at WARNING: at INFO their
HTTP logging policy writes every request's URL and headers, which carry user ids and partition
keys. `AZURE_SDK_LOG_LEVEL` (DEBUG, INFO, WARNING, ERROR) asks for another level when debugging.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping

DEFAULT_LIMIT = 200

# Every character a terminal or a log parser treats as control: C0, DEL and C1.
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"})
# Backslash too, so an escaped "\n" in the output cannot be confused with a literal one sent in.
_CONTROL[0x5C] = "\\\\"
# Unicode line and paragraph separators end a line in some log viewers.
_CONTROL.update({0x2028: "\\u2028", 0x2029: "\\u2029"})

AZURE_LOGGERS = (
    "azure",
    "azure.core.pipeline.policies.http_logging_policy",
    "azure.identity",
)
AZURE_LOG_LEVEL_SETTING = "AZURE_SDK_LOG_LEVEL"
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def safe(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """`value` as one printable log token: control characters escaped, cut at `limit` chars."""
    text = str(value)
    cut = len(text) > limit
    escaped = text[:limit].translate(_CONTROL)
    return escaped + ("…[truncated]" if cut else "")


# Path segments that are secrets themselves (a friend invite code is a bearer credential): the
# access log and error lines show the route's placeholder instead.
_SECRET_SEGMENTS = re.compile(r"(/friends/invites/)[^/?#]+")


def safe_path(path: object, limit: int = DEFAULT_LIMIT) -> str:
    """A request path for a log line: secret segments replaced, then made `safe`."""
    return safe(_SECRET_SEGMENTS.sub(r"\1{code}", str(path)), limit)


def quiet_azure_sdk_logging(environ: Mapping[str, str] | None = None) -> int:
    """Set the Azure SDK loggers to WARNING, or to `AZURE_SDK_LOG_LEVEL` when that is set.

    Returns the level applied. An unknown level name falls back to WARNING rather than failing
    start-up over a debugging knob.
    """
    env = os.environ if environ is None else environ
    name = env.get(AZURE_LOG_LEVEL_SETTING, "").strip().upper()
    level = getattr(logging, name) if name in _LEVELS else logging.WARNING
    for logger_name in AZURE_LOGGERS:
        logging.getLogger(logger_name).setLevel(level)
    return int(level)


_DIGIT_RUN = re.compile(r"\+?[0-9][0-9 ().-]{4,}[0-9]")


def mask_number(number: str | None) -> str:
    """A phone number for a log line: every digit but the last 4 hidden ('+*******0123')."""
    if not number:
        return "-"
    digits = sum(ch.isdigit() for ch in number)
    shown = 0
    out = []
    for ch in reversed(number):
        if ch.isdigit():
            shown += 1
            out.append(ch if shown <= 4 or digits <= 4 else "*")
        else:
            out.append(ch)
    return "".join(reversed(out))


def redact_numbers(text: object, limit: int = DEFAULT_LIMIT) -> str:
    """A service's free text made safe for a log line, any phone-number-like run masked."""
    return safe(_DIGIT_RUN.sub(lambda m: mask_number(m.group()), str(text or "")), limit)
