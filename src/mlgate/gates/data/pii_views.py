"""Normalised views of a cell for ``data.pii``: the value a person or a model still reads when a data supplier
disguises it (ADR 0056).

The detectors match ASCII shapes. A supplier can write the same value so that the shape breaks and the
meaning does not: zero-width or soft-hyphen characters, full-width or Arabic-Indic digits, Cyrillic look-alike
letters, Unicode dashes and spaces, URL-encoding, HTML entities, line continuations, ``[at]``/``[dot]``, digits
spaced one by one, mixed separators, or the whole value wrapped in base64 or hex. Rather than teach every
detector every disguise, each disguised cell gets *views* the detectors read as they read the cell itself:

1. the cell undone: URL-decoded, HTML-unescaped, NFKC, format characters (``Cf``) and leftover combining marks
   (``Mn``) dropped, every Unicode decimal digit as ASCII, dashes (``Pd``, U+2212) as ``-``, spaces (``Zs``) as
   `` ``, Cyrillic and Greek look-alikes as the Latin letter, ``\\``-newline continuations and line breaks
   inside a value removed, a run of single spaced digits closed up, a digit group with mixed separators
   (``123 45.6789``) written with ``-``, ``[at]``/``(at)`` and ``[dot]``/``(dot)`` as ``@`` and ``.``;
2. the decode pass: each base64 or hex token of ``MIN_TOKEN`` to ``MAX_TOKEN`` characters whose bytes are
   printable UTF-8 text, decoded once (never the decoded text again), folded as in 1, up to ``MAX_DECODED``
   characters per cell. Random bytes (keys, digests, UUIDs) almost never decode to printable text, so they
   add nothing.

Only cells that hold a trigger (``trigger()``: a character that folds to ASCII or to nothing, ``%xx``, an
entity, a line break, hex or base64 of printable ASCII, a spaced or mixed digit run, a bracketed at/dot) are
viewed; Arrow finds them in one RE2 pass over the column, so clean text costs one pass. A view's span cannot
be mapped back to the cell character by character, so a type a view finds that the cell itself does not (or
finds more of) covers the whole cell: ``mask`` replaces the whole cell (fail closed).
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import unicodedata
import urllib.parse
from dataclasses import replace
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc

from mlgate.gates.data.pii_detectors import Span, detectors, find_spans

MIN_TOKEN = 16  # characters of a base64/hex token, padding included: an 11-character SSN is 16 in base64
MAX_TOKEN = 1 << 20  # a longer token is not decoded (binary blobs); ADR 0056 names this bound
MAX_DECODED = 4 << 20  # characters of decoded text per cell; tokens after that are not decoded

# What makes a cell worth a view, besides a character ``fold`` changes (``trigger``). Encoded text: 8 hex
# pairs of printable ASCII (high nibble 2-7), or base64 of 12 bytes of printable ASCII (0x20-0x7e): in each
# quartet the first character holds a byte's top six bits ([I-Za-f]), the second the next byte's high nibble
# (2-7), the third the third byte's top two bits (0 or 1). Random tokens match 1 time in 10,000 per position,
# digit runs (cards, IDs) never.
_QUARTET = r"[I-Za-f][C-HS-Xi-ny-z0-3][ABEFIJMNQRUVYZcdghklopstwx014589][A-Za-z0-9+/_-]"
# ASCII disguises of digits and e-mail addresses: spaced or mixed-separator digit runs, a bracketed at/dot
_TRICKS = r"(?i)\d \d \d \d \d \d|\d(?: \d+[.-]|\.\d+[ -]|-\d+[ .])\d|[\[({<] ?(?:at|dot) ?[\])}>]"
_ASCII_TRIGGER = (r"%[0-9A-Fa-f]{2}|&#?[0-9A-Za-z]{2,8};|\n|(?:[2-7][0-9A-Fa-f]){8}"
                  r"|(?:" + _QUARTET + r"){3}[I-Za-f][A-Za-z0-9+/_=-]{1,3}|(?i:" + _TRICKS[4:] + ")")
_TRICKY = re.compile(_TRICKS)

# Latin look-alikes from Unicode's confusables (UTS #39, https://www.unicode.org/Public/security/latest/
# confusables.txt): the Cyrillic and Greek letters whose skeleton there is one ASCII letter — those a supplier
# can put in an e-mail address or a key and still have it read as the original.
CONFUSABLES = {ord(k): v for k, v in zip(
    "аеорсухѕіјԁһԛԝӏАВЕКМНОРСТХУЅІЈԚԜҮΑΒΕΖΗΙΚΜΝΟΡΤΥΧοναιρ",
    "aeopcyxsijdhqwlABEKMHOPCTXYSIJQWYABEZHIKMNOPTYXovaip", strict=True)}
_PLANES = (range(0x80, 0x30000), range(0xE0000, 0xE1000))  # letters, digits, symbols; tags and selectors


class _Fold(dict):
    """``str.translate`` table built per character on first sight: Cf/Mn dropped, decimal digits, dashes
    and spaces as ASCII, look-alikes as Latin."""

    def __missing__(self, code: int):
        char = chr(code)
        category = unicodedata.category(char)
        if category in ("Cf", "Mn"):
            out = None
        elif category == "Nd":
            out = str(unicodedata.decimal(char))
        elif category == "Pd" or char == "\u2212":
            out = "-"
        elif category == "Zs":
            out = " "
        else:
            out = CONFUSABLES.get(code, code)
        self[code] = out
        return out


_FOLD = _Fold()


def _folds_to_ascii(char: str) -> bool:
    out = unicodedata.normalize("NFKC", char).translate(_FOLD)
    return out != char and out.isascii()


@cache
def trigger() -> str:
    """The RE2 pattern of cells that get views: a character that folds to ASCII (or to nothing), or one of
    ``_ASCII_TRIGGER``. Built once per process from ``unicodedata`` (about 0.2 s), so the table follows the
    Unicode version rather than a list kept by hand; ordinary accented or non-Latin text does not match."""
    ranges: list[list[int]] = []
    for plane in _PLANES:
        for code in plane:
            if _folds_to_ascii(chr(code)):
                if ranges and ranges[-1][1] == code - 1:
                    ranges[-1][1] = code
                else:
                    ranges.append([code, code])
    chars = "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges)
    return f"[{chars}]|{_ASCII_TRIGGER}"


# a line break inside one value (``jane@\nexample.com``, base64 wrapped at 76 columns); never after ``=`` or
# ``:``, so an empty assignment does not take the next line as its value
_CONTINUATION = re.compile(r"\\\r?\n[ \t]*|(?<=[\w@.%+/-])\r?\n(?=[\w@.%+/-])")
_SPACED = re.compile(r"(?<!\d)(?<!\d )\d(?: \d){5,}(?! ?\d)")
# four or more groups: a 3-group run with mixed separators is no SSN (Presidio's negative ``693-09.4444``; the SSN
# ranges take 89 % of random 3-2-4 digits, ADR 0023), while a card's four groups are Luhn-checked
# a run starts after a non-digit: otherwise each start inside a long digit run backtracks the whole run (quadratic)
_MIXED = re.compile(r"(?<!\d)\d+(?:[ .-]\d+){3,}")
_AT = re.compile(r"\s*[\[({<]\s*at\s*[\])}>]\s*", re.I)
_DOT = re.compile(r"\s*[\[({<]\s*dot\s*[\])}>]\s*", re.I)
_TOKEN = re.compile(rf"[A-Za-z0-9+/_-]{{{MIN_TOKEN - 2},}}={{0,2}}")
_HEX = re.compile(r"[0-9A-Fa-f]+")


def _mixed(match: re.Match[str]) -> str:
    run = match.group()
    return re.sub(r"[ .-]", "-", run) if len(set(re.findall(r"[ .-]", run))) > 1 else run


def fold(text: str, tricky: bool | None = None) -> str:
    """The cell as it reads (step 1 of the module docstring); each step only where its character occurs.
    ``tricky``: whether ``_TRICKS`` matches, when Arrow already knows."""
    original = text
    if "%" in text:
        text = urllib.parse.unquote(text)
    if "&" in text:
        text = html.unescape(text)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).translate(_FOLD)
    if "\n" in text:
        text = _CONTINUATION.sub("", text)
    if tricky is None or text != original:  # a disguise may show only once decoded (full-width spaced digits)
        tricky = _TRICKY.search(text) is not None
    if tricky:
        text = _SPACED.sub(lambda m: m.group().replace(" ", ""), text)
        text = _MIXED.sub(_mixed, text)
        text = _DOT.sub(".", _AT.sub("@", text))
    return text


def _text(data: bytes | None) -> str | None:
    if not data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.replace("\n", "").replace("\t", "").replace("\r", "").isprintable() else None


def decoded(text: str) -> list[str]:
    """Printable texts of the base64/hex tokens in ``text`` (step 2), each decoded once."""
    out, size = [], 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if not MIN_TOKEN <= len(token) <= MAX_TOKEN or size >= MAX_DECODED:
            continue
        found = _text(bytes.fromhex(token)) if len(token) % 2 == 0 and _HEX.fullmatch(token) else None
        body = token.rstrip("=")
        if found is None and len(body) % 4 != 1:
            try:
                found = _text(base64.b64decode(body.replace("-", "+").replace("_", "/") + "=" * (-len(body) % 4),
                                               validate=True))
            except binascii.Error:
                found = None
        if found is not None:
            out.append(found)
            size += len(found)
    return out


def views(text: str, tricky: bool | None = None) -> list[str]:
    """Every view of ``text`` that differs from it: the folded cell, and each decoded token folded."""
    folded = fold(text, tricky)
    out = [folded] if folded != text else []
    return out + [fold(part) for part in decoded(folded)]


def add_views(by_type: dict[str, dict[int, list[Span]]], values: pa.Array, column: str, types: tuple[str, ...],
              phone_regions: tuple[str, ...] = ()) -> None:
    """Add to ``by_type`` (type → row → spans of ``values``) what the views of the triggered cells show: a
    type the cell's own spans miss, or hold fewer of, becomes one span over the whole cell."""
    rows = pc.indices_nonzero(pc.fill_null(pc.match_substring_regex(values, trigger()), False))
    if not len(rows):
        return
    owners, texts = [], []
    texts_of = values.take(rows)
    tricky = pc.match_substring_regex(texts_of, _TRICKS).to_pylist()
    for row, text, flag in zip(rows.to_pylist(), texts_of.to_pylist(), tricky, strict=True):
        for view in views(text, flag):
            owners.append(row)
            texts.append(view)
    if not texts:
        return
    from mlgate.gates.data.pii import _drop_overlaps  # the cell's own precedence rules, applied to the views

    array = pa.array(texts, pa.large_string())
    # column evidence is a vote over the column's cells, not something a view of one cell can add to
    seen = {t: find_spans(array, replace(detectors(phone_regions)[t], by_values=None), column) for t in types}
    _drop_overlaps(seen)
    for pii_type, found in seen.items():
        most: dict[int, int] = {}
        for index, spans in found.items():
            most[owners[index]] = max(most.get(owners[index], 0), len(spans))
        own = by_type.setdefault(pii_type, {})
        for row, count in most.items():
            if count > len(own.get(row, ())):
                own[row] = [(0, len(values[row].as_py()))]
