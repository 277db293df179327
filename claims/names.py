"""Item names compared the way a reviewer would: blind to spacing, punctuation and width.

Hospitals' billing systems print catalogue names with full-width brackets, stray spaces or a
trailing full stop; none of that makes a different item. ``normalise_name`` removes it, and
``similarity_permille`` scores what is left, as an integer (no floats in claims).
"""

from __future__ import annotations

import difflib
import unicodedata

PERMILLE = 1000


def normalise_name(name: str) -> str:
    """NFKC (full width to half width), lower case, without whitespace, punctuation or symbols."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LN")


def similarity_permille(a: str, b: str) -> int:
    """How alike two normalised names are, 0 to 1000 (difflib's ratio, rounded half up)."""
    if a == b:
        return PERMILLE
    if not a or not b:
        return 0
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    matches = sum(block.size for block in matcher.get_matching_blocks())
    # ratio = 2M / T; in per-mille, rounded half up with integers only.
    total = len(a) + len(b)
    return (2 * matches * PERMILLE * 2 + total) // (2 * total)
