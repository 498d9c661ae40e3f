"""The one rule for ids a caller or a token supplies (user ids now; club, meeting, invite and
installation ids next): every such id becomes a store key, a URL path segment and a log field.

Refused: empty, over 128 characters, `.` and `..` (an HTTP client collapses them into the parent
path, so `docs/..` would address the container), `/ \\ ? #` (Cosmos forbids them; they split a
URL), control characters (C0, DEL, C1: they forge log lines and break URLs) and leading or
trailing whitespace (`"carol "` would be a second carol). The pattern matches the WHOLE string:
`re.fullmatch`, never `$`, which lets a trailing newline through.
"""

from __future__ import annotations

import re

MAX_ID_LENGTH = 128

# One or more allowed characters, the first and last not whitespace; `.`/`..` checked apart.
_ALLOWED = r"[^/\\?#\x00-\x1f\x7f-\x9f]"
ID_PATTERN = re.compile(rf"(?!\s){_ALLOWED}{{1,{MAX_ID_LENGTH}}}(?<!\s)")
_DOT_SEGMENTS = frozenset({".", ".."})


class InvalidId(ValueError):
    """An id breaks the rule; `field` names where it came from (never the value itself)."""

    def __init__(self, field: str) -> None:
        super().__init__(
            f"{field} must be 1 to {MAX_ID_LENGTH} characters, not '.' or '..', without "
            "/ \\ ? # or control characters, and without leading or trailing whitespace"
        )
        self.field = field


def is_valid_id(value: object) -> bool:
    """Whether `value` is a string the id rule accepts."""
    return (
        isinstance(value, str)
        and value not in _DOT_SEGMENTS
        and ID_PATTERN.fullmatch(value) is not None
    )


def check_id(value: str, field: str) -> str:
    """`value` unchanged if it is a valid id; otherwise `InvalidId` naming `field`."""
    if not is_valid_id(value):
        raise InvalidId(field)
    return value
