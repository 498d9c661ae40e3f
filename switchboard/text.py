"""The one rule for human text a caller gives and other people see (display names, club names,
meeting subjects), beside the id rule (`switchboard.ids`): such text reaches push titles, chat
topics, member lists and SMS, on other users' screens.

Refused: characters that change the direction of the text around them (the bidi embeddings,
overrides and isolates U+202A-202E, U+2066-2069, and the marks U+200E, U+200F, U+061C: "Trojan
Source" reordering, a name that flips the rest of a push title), characters that draw nothing
(zero-width space U+200B, word joiner U+2060, BOM U+FEFF, invisible operators U+2061-2064, the
Hangul and Khmer fillers and the braille blank that make "invisible" names, the combining
grapheme joiner), every other format, control, surrogate and line/paragraph-separator character
(Unicode categories Cf, Cc, Cs, Zl, Zp) — so two names cannot look alike yet differ, and a name
cannot break a line of an SMS.

Kept, because real names and emoji need them (a better rule than refusing U+200C/U+200D
outright, which would refuse Persian and Indic names and family or profession emoji):
- ZERO WIDTH NON-JOINER (U+200C) and ZERO WIDTH JOINER (U+200D) between two letters or marks of
  a non-Latin script (code point U+0370 and above): Persian words, Malayalam chillus;
- U+200D between two symbols of an emoji sequence (woman, ZWJ, laptop; white flag, U+FE0F, ZWJ,
  rainbow: the symbol before may end in the variation selector U+FE0F or a skin-tone modifier);
- tag characters (U+E0020-E007F) in the run that follows the black flag U+1F3F4 (the flags of
  England, Scotland, Wales).
In Latin text a joiner has no use, so "al\u200dice" stays refused.
"""

from __future__ import annotations

import unicodedata

# Visible-nothing characters whose categories (Lo, Mn, So) the category rule does not catch.
_INVISIBLE = frozenset({0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0})
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_ZWNJ, _ZWJ = 0x200C, 0x200D
_BLACK_FLAG = 0x1F3F4
_TAGS = range(0xE0020, 0xE0080)
_EMOJI_TAILS = frozenset({0xFE0F, *range(0x1F3FB, 0x1F400)})  # VS16, skin tones
_DIRECTIONAL = frozenset({0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)})


class InvalidText(ValueError):
    """Text breaks the rule; the message says which kind of character, never the text."""


def problem(text: str) -> str | None:
    """Why `text` breaks the rule (a phrase for a 400's detail), or None when it is fine."""
    for index in range(len(text)):
        reason = _refusal(text, index)
        if reason is not None:
            return reason
    return None


def check(text: str) -> str:
    """`text` unchanged if it keeps the rule; otherwise `InvalidText`."""
    reason = problem(text)
    if reason is not None:
        raise InvalidText(f"contains {reason}")
    return text


def clean(text: str) -> str:
    """`text` with every refused character made a space, spaces collapsed: for text a caller
    does not type here (a token's name claim), which must still never reach another user's
    screen as it came."""
    if problem(text) is None:
        return text
    kept = "".join(" " if _refusal(text, i) else char for i, char in enumerate(text))
    return " ".join(kept.split())


def _refusal(text: str, index: int) -> str | None:
    char = text[index]
    point = ord(char)
    if point in _DIRECTIONAL:
        return "a character that changes the direction of text"
    if point in _INVISIBLE:
        return "an invisible character"
    category = unicodedata.category(char)
    if category not in _REFUSED_CATEGORIES:
        return None
    before = text[index - 1] if index else ""
    after = text[index + 1] if index + 1 < len(text) else ""
    if point in (_ZWNJ, _ZWJ) and _joins(point, before, after):
        return None
    if point in _TAGS and before and (ord(before) == _BLACK_FLAG or ord(before) in _TAGS):
        return None
    if category == "Cf":
        return "an invisible (zero-width or format) character"
    return "a control, line-breaking or unpaired surrogate character"


def _joins(point: int, before: str, after: str) -> bool:
    if not before or not after:
        return False
    if _script_letter(before) and _script_letter(after):
        return True
    return point == _ZWJ and _emoji_part(before) and _emoji_part(after)


def _script_letter(char: str) -> bool:
    return ord(char) >= 0x0370 and unicodedata.category(char)[0] in "LM"


def _emoji_part(char: str) -> bool:
    return ord(char) in _EMOJI_TAILS or unicodedata.category(char) in ("So", "Sk")
