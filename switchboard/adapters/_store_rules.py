"""The input rules both DocumentStore adapters enforce, so SQLite and Cosmos DB fail alike.

Each adapter checks its arguments here before it touches storage: container names, document
keys, field names used in queries, filter values, page sizes and continuation tokens. A rule
broken by the *code* (unknown container, hostile field name) is a `ValueError`; a continuation
token that came back from a client and does not decode is `InvalidInput` (a 400 for the caller).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from switchboard.errors import InvalidInput
from switchboard.ports import CONTAINERS, Doc

# Field names end up inside query text (Cosmos SQL, SQLite JSON paths), so they are restricted to
# plain identifiers: with this rule no quoting or escaping can ever be needed, so none can fail.
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}\Z")

# Cosmos DB refuses these characters in ids (they break the resource path), and control characters
# break the request URL; SQLite refuses them too so that a document that works in development
# also works in Azure. Ids `.` and `..` would collapse into the parent path (`docs/..` is the
# container itself). The services check ids with switchboard.ids first: this is the last line.
_FORBIDDEN_ID_CHARACTERS = re.compile(r"[/\\?#\x00-\x1f\x7f-\x9f]")
_DOT_SEGMENTS = frozenset({".", ".."})
MAX_ID_LENGTH = 255

# Cosmos adds these to every stored document. The port returns only `_etag` and `_ts`; anything
# a caller sends back under these names (say, a document it read earlier) is ignored on write.
SYSTEM_FIELDS = frozenset({"_etag", "_ts", "_rid", "_self", "_attachments", "_lsn"})

MAX_PAGE_SIZE = 1000

# A continuation token longer than this is not one of ours (ours hold a sort key of at most a
# field's length and an id, or Cosmos's own token of a few hundred characters): refused before
# any decoding, so a caller cannot make the server decode megabytes.
MAX_CONTINUATION_LENGTH = 8192

FilterValue = str | int | float | bool | None
RangeValue = str | int | float


def check_container(container: str) -> None:
    if container not in CONTAINERS:
        raise ValueError(f"unknown container {container!r}; known: {', '.join(CONTAINERS)}")


def check_key(pk: object, id: object) -> None:
    """A (pk, id) pair as Cosmos accepts it: strings, id non-empty, short, path-safe."""
    if not isinstance(pk, str):
        raise ValueError("a document's pk must be a string")
    if not isinstance(id, str) or not id:
        raise ValueError("a document's id must be a non-empty string")
    if len(id) > MAX_ID_LENGTH or id in _DOT_SEGMENTS or _FORBIDDEN_ID_CHARACTERS.search(id):
        raise ValueError(
            "a document's id must be at most 255 characters, not '.' or '..', "
            "without / \\ ? # or control characters"
        )


def check_field(name: str) -> str:
    if not isinstance(name, str) or not FIELD_NAME.match(name):
        raise ValueError(f"field name {name!r} is not a plain identifier")
    return name


def check_where(where: Mapping[str, FilterValue] | None) -> list[tuple[str, FilterValue]]:
    """The filters as (field, value) pairs, every name and value checked."""
    if not where:
        return []
    filters: list[tuple[str, FilterValue]] = []
    for name, value in where.items():
        check_field(name)
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ValueError(f"filter on {name!r}: only str, int, float, bool or None compare")
        filters.append((name, value))
    return filters


def check_range(
    order_by: str | None, start_at: RangeValue | None, end_before: RangeValue | None
) -> bool:
    """True when the query has a range on its order field; ValueError when it is not one."""
    if start_at is None and end_before is None:
        return False
    if order_by is None:
        raise ValueError("a range (start_at, end_before) bounds the order_by field: name it")
    kinds = set()
    for bound in (start_at, end_before):
        if bound is None:
            continue
        if isinstance(bound, bool) or not isinstance(bound, str | int | float):
            raise ValueError("range bounds are strings or numbers")
        kinds.add(str if isinstance(bound, str) else float)
    if len(kinds) > 1:
        raise ValueError("both range bounds must be strings, or both numbers")
    return True


def check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}")


def document_body(doc: Doc) -> tuple[str, str, Doc]:
    """(pk, id, the document without system fields), after checking its key."""
    pk, id = doc.get("pk"), doc.get("id")
    check_key(pk, id)
    body = {name: value for name, value in doc.items() if name not in SYSTEM_FIELDS}
    return str(pk), str(id), body


def encode_continuation(state: Any) -> str:
    """An opaque, URL-safe token for `state` (any JSON value)."""
    raw = json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continuation(token: str) -> Any:
    """The state inside a token from `encode_continuation`; `InvalidInput` if it is not one.

    A token comes from a caller, so anything can be inside: too long, deeply nested JSON (the
    decoder's recursion limit) and strings that are not Unicode text (a lone surrogate escaped
    as `\\ud800`, which no store can encode) are refused here like any other bad token.
    """
    try:
        if not isinstance(token, str) or len(token) > MAX_CONTINUATION_LENGTH:
            raise ValueError("not a continuation token")
        padded = token + "=" * (-len(token) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        # Every string inside must be encodable, as the stores will encode them.
        json.dumps(state, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, binascii.Error, RecursionError) as error:
        raise InvalidInput("The continuation token is not valid.", field="continuation") from error
    return state
