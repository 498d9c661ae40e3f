"""The id rule: what it refuses and accepts, and that it matches the whole string."""

from __future__ import annotations

import pytest

from switchboard.ids import InvalidId, check_id, is_valid_id

GOOD = ["alice", "a", "0000-1111-2222", "alice@example.test", "Zoë", "a.b", "...", "a b", "x" * 128]
BAD = [
    "",
    ".",
    "..",
    "a/b",
    "../bob",
    "a\\b",
    "a?b",
    "a#b",
    "carol\n",  # `$` in a pattern would let this through
    "\ncarol",
    "a\x00b",
    "a\x01b",
    "a\x1fb",
    "a\x7fb",
    "a\x85b",  # C1 (NEL)
    "a\x9bb",  # C1 (CSI)
    " alice",
    "alice ",
    "alice\t",
    "\u3000alice",  # Unicode whitespace too
    " ",
    "x" * 129,
]


@pytest.mark.parametrize("value", GOOD)
def test_good_ids_pass_unchanged(value: str) -> None:
    assert is_valid_id(value)
    assert check_id(value, "userId") == value


@pytest.mark.parametrize("value", BAD)
def test_bad_ids_are_refused_naming_the_field_not_the_value(value: str) -> None:
    assert not is_valid_id(value)
    with pytest.raises(InvalidId) as caught:
        check_id(value, "userId")
    assert caught.value.field == "userId"
    assert isinstance(caught.value, ValueError)
    assert "userId" in str(caught.value)


@pytest.mark.parametrize("value", [None, 7, b"alice", ["alice"]])
def test_non_strings_are_not_ids(value: object) -> None:
    assert not is_valid_id(value)
