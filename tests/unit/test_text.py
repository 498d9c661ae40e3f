"""The text rule (switchboard.text): what it refuses in names and subjects, what real names and
emoji keep, and what `clean` makes of a token's name claim."""

from __future__ import annotations

import pytest

from switchboard.text import InvalidText, check, clean, problem

ZWJ, ZWNJ = "\u200d", "\u200c"
GOOD = [
    "Alice",
    "Zoë Ærø",
    "李小龙",
    "Ông Đức",
    "می" + ZWNJ + "خواهم",  # Persian: the non-joiner is part of the spelling
    "ക്" + ZWJ + "ക",  # Malayalam
    "👩" + ZWJ + "💻 Ada",  # woman technologist
    "👨" + ZWJ + "👩" + ZWJ + "👧",  # family
    "🏳\ufe0f" + ZWJ + "🌈 club",  # rainbow flag
    "👍🏽" + ZWJ + "👍",
    "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f Scots",  # flag of Scotland
    "Design review (Q3) — 2026",
    "\ue000 private use",
]
BAD = [
    ("Eve\u202eevil", "direction"),  # RIGHT-TO-LEFT OVERRIDE: "Trojan Source"
    ("a\u202ab", "direction"),
    ("a\u202cb", "direction"),
    ("a\u2066b\u2069", "direction"),  # isolates
    ("a\u2067b", "direction"),
    ("a\u2068b", "direction"),
    ("a\u200eb", "direction"),  # LRM
    ("a\u200fb", "direction"),  # RLM
    ("a\u061cb", "direction"),  # ARABIC LETTER MARK
    ("ali\u200bce", "invisible"),  # ZERO WIDTH SPACE
    ("al" + ZWJ + "ice", "invisible"),  # a joiner has no use in Latin text
    ("al" + ZWNJ + "ice", "invisible"),
    (ZWJ + "alice", "invisible"),
    ("alice" + ZWJ, "invisible"),
    ("ali\u2060ce", "invisible"),  # WORD JOINER
    ("\ufeffalice", "invisible"),  # BOM
    ("a\u00adb", "invisible"),  # SOFT HYPHEN
    ("a\u2062b", "invisible"),  # INVISIBLE TIMES
    ("\u3164", "invisible"),  # HANGUL FILLER: an "invisible" name
    ("\u115f\u1160", "invisible"),
    ("a\u2800b", "invisible"),  # BRAILLE PATTERN BLANK
    ("a\U000e0041b", "invisible"),  # a tag character outside a flag
    ("a\u2028b", "line-breaking"),  # LINE SEPARATOR
    ("a\u2029b", "line-breaking"),
    ("a\x85b", "control"),  # C1
    ("a\udc80b", "surrogate"),  # a lone surrogate (JSON "\udc80")
]


@pytest.mark.parametrize("text", GOOD)
def test_real_names_and_emoji_keep_the_rule(text: str) -> None:
    assert problem(text) is None
    assert check(text) == text
    assert clean(text) == text


@pytest.mark.parametrize(("text", "kind"), BAD)
def test_direction_changing_invisible_and_control_characters_are_refused(
    text: str, kind: str
) -> None:
    reason = problem(text)
    assert reason is not None
    assert kind in reason
    with pytest.raises(InvalidText):
        check(text)
    cleaned = clean(text)
    assert problem(cleaned) is None
    assert text not in cleaned or cleaned == ""


def test_clean_makes_refused_characters_spaces_and_collapses_them() -> None:
    assert clean("Eve\u202e\u2066 evil\u2028") == "Eve evil"
    assert clean("\u3164") == ""
    assert clean("👩" + ZWJ + "💻" + ZWJ) == "👩" + ZWJ + "💻"
