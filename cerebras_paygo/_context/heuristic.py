"""The text heuristic: a band around a text's o200k token count, without a tokenizer.

One UTF-8 encode, one byte-table ``translate`` into character classes and a few dozen
``bytes.count`` calls (C loops) give the features of o200k's pre-tokenizer: words after a space, a
symbol, a newline or a digit (hex), camelCase joins, long words, digit groups, symbol runs,
newlines and indents, and per script the letters of CJK ideographs, kana, Hangul and other
scripts. A linear fit of those features on o200k counts is the middle of the band; its low end is
``LOW_FACTOR * mid - SLACK`` and its high end ``HIGH_FACTOR * mid + SLACK``.

The coefficients were fitted (least squares, by hand, not by a script in this repository) on
the ``"fit"`` half of the corpus in ``tests/context/corpus.py`` (prose, code, JSON, READMEs full
of badge URLs and HTML, hex dumps and number tables, CJK); the band's factors and the wide bands of
other scripts (diacritics, U+0800-1FFF, Cyrillic/Greek/Hebrew/Arabic, long compounds) were set so
that ``tests/context/test_context_band.py`` holds on its ``"held"`` half and on sentences in 14
languages: the band holds every sample there. ``python benchmarks/estimator.py`` reports the
ratios per kind (the high end is about 1.19-1.28x the true count at the median before
calibration, 1.05-1.11x after).
"""

from __future__ import annotations

__all__ = ["HIGH_FACTOR", "LONG_WORD_HIGH", "LOW_FACTOR", "SLACK", "TextBand", "heuristic_band", "heuristic_tokens"]

#: (low, mid, high) of one text.
TextBand = tuple[float, float, float]

LOW_FACTOR = 0.76
HIGH_FACTOR = 1.24
SLACK = 2.0  # tokens per text, either way: short texts have the largest relative errors
LONG_WORD_HIGH = 1.0  # added to the high end per run of ten lowercase letters (0.3 per run of six)


def _class_table() -> bytes:
    """Byte -> character class: ASCII by kind, UTF-8 lead bytes by script block, continuations '~'."""
    table = bytearray(256)
    for byte in range(256):
        char = chr(byte)
        if byte < 0x80:
            cls = "A" if char.isupper() else "a" if char.isalpha() else "0" if char.isdigit() else "."
            if char in " \t\r\x0b\x0c":
                cls = " "
            elif char == "\n":
                cls = "n"
        elif byte < 0xC0:
            cls = "~"  # continuation byte
        elif byte in (0xE0, 0xE1):
            cls = "x"  # U+0800-1FFF: Indic, Thai, Georgian, Myanmar, Vietnamese letters, ...
        elif byte < 0xCA or byte == 0xE2:
            cls = "l"  # U+0080-027F: Latin letters with diacritics, symbols; U+2000-2FFF: punctuation
        elif byte < 0xE0:
            cls = "b"  # Greek, Cyrillic, Armenian, Hebrew, Arabic, ...
        elif byte == 0xE3:
            cls = "j"  # U+3000-3FFF: CJK punctuation, kana
        elif byte <= 0xE9:
            cls = "c"  # U+4000-9FFF: CJK ideographs
        elif byte <= 0xED:
            cls = "k"  # U+A000-DFFF: Hangul syllables (and a few rarer blocks)
        elif byte < 0xF0:
            cls = "x"  # other 3-byte characters: U+E000-FFFF (private use, fullwidth)
        else:
            cls = "e"  # 4-byte characters: emoji, rare CJK
        table[byte] = ord(cls)
    return bytes(table)


_CLASSES = _class_table()


def heuristic_band(text: str) -> tuple[TextBand, TextBand]:
    """The o200k band of a non-empty ``text``, apart for its ASCII and its other-script part.

    Returns ``((low, mid, high) of the ASCII part, (low, mid, high) of the rest)``; the per-text
    slack is booked on the ASCII part (whose low end can be negative; the text's never is).
    Digits, symbols and whitespace count as ASCII.
    """
    classes = text.encode("utf-8", "surrogatepass").translate(_CLASSES)
    n = classes.count
    first = classes[:1]
    mid = (
        1.0 * (n(b" a") + n(b" A") + (first in (b"a", b"A")))  # words after a space (or first)
        + 0.873 * (n(b".a") + n(b".A"))  # words glued to a symbol
        + 0.762 * (n(b"na") + n(b"nA"))  # words at the start of a line
        + 1.208 * (n(b"0a") + n(b"0A"))  # letters after digits: hex, ids
        + 0.835 * n(b"aA")  # camelCase
        + 0.131 * n(b"aaaaaaaa")  # long words split
        + 0.134 * n(b"000")  # long numbers, in groups of 3
        + 1.525 * (n(b" 0") + n(b".0") + n(b"a0") + n(b"A0") + n(b"n0") + (first == b"0"))  # numbers
        + 0.203 * n(b".")  # symbols
        + 0.747 * (n(b" .") + n(b"a.") + n(b"A.") + n(b"0.") + n(b"n.") + (first == b"."))  # symbol runs
        + 0.565 * n(b"n")  # newlines
        + 0.538 * n(b"n ")  # indents
    )
    # Long words (German compounds, identifiers) cost more than English's: on the high end only.
    long_words = 0.3 * n(b"aaaaaa") + LONG_WORD_HIGH * n(b"aaaaaaaaaa")
    if len(classes) == len(text):  # ASCII only
        other = low_other = high_other = 0.0
    else:
        other = (
            0.72 * n(b"c")
            + 0.5 * (n(b".c") + n(b" c") + n(b"nc") + n(b"ac") + n(b"0c"))
            + 0.78 * n(b"j")
            + 0.62 * n(b"k")
            + 0.3 * (n(b" k") + n(b"nk") + n(b".k"))
            + 1.5 * n(b"e")
        )
        # Cyrillic, Greek, Hebrew, Arabic: words vary most in length, so a lower low end.
        words = 0.3 * n(b"b") + 0.8 * n(b" b")
        # Latin letters with diacritics are often inside a word's token (French, Vietnamese), and the
        # scripts of U+0800-1FFF are 0.25-0.55 o200k tokens per character: wide bands of their own.
        latin, wide = n(b"l"), n(b"x")
        low_other = LOW_FACTOR * other + 0.6 * words + 0.1 * latin + 0.2 * wide
        high_other = HIGH_FACTOR * (other + words) + 1.5 * latin + 0.8 * wide
        other += words + latin + 0.45 * wide
    if mid + other < 1.0:  # at least one token for any text
        mid = 1.0 - other
    # The slack is the whole text's: the ASCII part's low end may go below 0 down to -low_other.
    low_ascii = max(LOW_FACTOR * mid - SLACK, -low_other)
    high_ascii = HIGH_FACTOR * mid + SLACK + long_words
    return (low_ascii, mid, high_ascii), (low_other, other, high_other)


def heuristic_tokens(text: str, *, ceiling: bool = False) -> float:
    """The heuristic's middle (best-fit) o200k count of ``text``; with ``ceiling=True`` its high end.

    About 2 µs for a short message, then ~15 ns per character.
    """
    if not text:
        return 0.0
    ascii_part, other = heuristic_band(text)
    return ascii_part[2] + other[2] if ceiling else ascii_part[1] + other[1]
