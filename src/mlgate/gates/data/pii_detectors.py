"""Detectors for ``data.pii``: a cheap vectorised candidate filter, then exact matching and validation.

Speed comes from the split. Each detector's ``prefilter`` is an RE2 pattern that Arrow runs over a whole
column in C++ (``match_substring_regex``); only the cells it keeps reach Python, where a stricter
pattern finds every span and a validator (Luhn, mod-97, SSN ranges, ``ipaddress``, entropy) rejects
look-alikes. A prefilter may over-match but must never miss what the exact pattern finds.

A column name never decides alone: it only admits shapes too ambiguous to accept in free text
(a bare 9-digit SSN in a column named ``ssn``; a bare token in a column named ``api_key``), and those
must still pass the validator.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

Span = tuple[int, int]


def clear_of_neighbours(text: str, start: int, end: int) -> bool:
    """A number must not continue a longer token: nothing word-like, ``.``, ``+`` or ``-`` right before
    it, nothing word-like (or ``.digit`` / ``-digit``) right after it. A full stop still ends a match.

    Checked in Python on matches only: lookarounds in the regex would slow every scan position down.
    """
    if start and (text[start - 1].isalnum() or text[start - 1] in "_.+-"):
        return False
    if end < len(text):
        after = text[end]
        if after.isalnum() or after == "_" or (after in ".-" and text[end + 1:end + 2].isdigit()):
            return False
    return True


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_ok(digits: str) -> bool:
    values = [ord(ch) - 48 for ch in reversed(digits)]
    return (sum(values[0::2]) + sum(_DOUBLED[v] for v in values[1::2])) % 10 == 0


def _in_ranges(digits: str, ranges: tuple[tuple[int, int, int], ...]) -> bool:
    """``ranges`` holds (prefix length, low, high) issuer prefixes."""
    return any(low <= int(digits[:size]) <= high for size, low, high in ranges)


# issuer: (card lengths, prefix ranges as (prefix length, low, high))
_ISSUERS: dict[str, tuple[frozenset[int], tuple[tuple[int, int, int], ...]]] = {
    "visa": (frozenset({13, 16, 19}), ((1, 4, 4),)),
    "mastercard": (frozenset({16}), ((2, 51, 55), (4, 2221, 2720))),
    "amex": (frozenset({15}), ((2, 34, 34), (2, 37, 37))),
    "discover": (frozenset(range(16, 20)), ((4, 6011, 6011), (3, 644, 649), (2, 65, 65),
                                            (6, 622126, 622925))),
    "jcb": (frozenset(range(15, 20)), ((4, 3528, 3589), (4, 2131, 2131), (4, 1800, 1800))),
    "diners": (frozenset(range(14, 20)), ((3, 300, 305), (2, 36, 36), (2, 38, 39))),
}


def card_issuer(digits: str) -> str | None:
    for issuer, (lengths, ranges) in _ISSUERS.items():
        if len(digits) in lengths and _in_ranges(digits, ranges):
            return issuer
    return None


def valid_card(text: str) -> bool:
    if " " in text and "-" in text:  # one separator throughout
        return False
    digits = text.replace(" ", "").replace("-", "")
    return card_issuer(digits) is not None and luhn_ok(digits)


def valid_ssn(text: str) -> bool:
    if len(text) == 11 and text[3] != text[6]:  # one separator throughout
        return False
    digits = re.sub(r"[ -]", "", text)
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    return area not in (0, 666) and area < 900 and group != 0 and serial != 0


IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


_IBAN_DIGITS = {ord(ch): str(ord(ch) - 55) for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


def valid_iban(text: str) -> bool:
    iban = text.replace(" ", "").upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not 2 <= int(iban[2:4]) <= 98:
        return False
    return int((iban[4:] + iban[:4]).translate(_IBAN_DIGITS)) % 97 == 1


def _parses_as(address_type: type) -> Callable[[str], bool]:
    def valid(text: str) -> bool:
        try:
            address_type(text)
        except ValueError:
            return False
        return True
    return valid


valid_ipv4 = _parses_as(ipaddress.IPv4Address)
valid_ipv6 = _parses_as(ipaddress.IPv6Address)


def valid_phone(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in re.split(r"[xe]", text)[0])
    return 7 <= digits <= 15


def valid_international_phone(text: str) -> bool:
    """After ``+`` or ``00``: a country code and subscriber number, 8 to 15 digits in all."""
    digits = sum(ch.isdigit() for ch in re.split(r"[xe]", text)[0]) - (2 if text.startswith("00") else 0)
    return 8 <= digits <= 15


def shannon_entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def high_entropy(token: str) -> bool:
    """A credential-like token: long enough, several character classes, not repetitive, no placeholder."""
    if token.startswith(("<", "${", "{{", "%(")):
        return False
    classes = sum(bool(re.search(p, token)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z0-9]"))
    return len(token) >= 8 and classes >= 2 and shannon_entropy(token) >= 3.0


def _jwt_part_is_json(part: str) -> bool:
    try:
        return isinstance(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))), dict)
    except (binascii.Error, ValueError):
        return False


def _valid_jwt(text: str) -> bool:
    header, payload, _ = text.split(".", 2)
    return _jwt_part_is_json(header) and _jwt_part_is_json(payload)


@dataclass(frozen=True)
class Pattern:
    """One shape of a type: RE2 ``prefilter`` for Arrow, exact Python ``regex``, and its ``validate``.

    When ``regex`` has a group named ``v``, only that group is the value (``password=<v>``).
    ``bounded``: the value must be clear of neighbouring word characters (``clear_of_neighbours``).
    """

    prefilter: str
    regex: re.Pattern[str]
    validate: Callable[[str], bool] | None = None
    bounded: bool = False

    def spans(self, text: str) -> Iterator[Span]:
        group = "v" if "v" in self.regex.groupindex else 0
        for match in self.regex.finditer(text):
            start, end = match.span(group)
            if self.bounded and not clear_of_neighbours(text, start, end):
                continue
            if self.validate is None or self.validate(text[start:end]):
                yield start, end


@dataclass(frozen=True)
class Detector:
    type: str
    patterns: tuple[Pattern, ...]
    column_hint: re.Pattern[str] | None = None  # column names that admit ``hinted`` shapes
    hinted: tuple[Pattern, ...] = ()

    def patterns_for(self, column: str) -> tuple[Pattern, ...]:
        if self.column_hint is not None and self.column_hint.search(column):
            return self.patterns + self.hinted
        return self.patterns


def _p(prefilter: str, regex: str, validate: Callable[[str], bool] | None = None, bounded: bool = False,
       flags: int = 0) -> Pattern:
    return Pattern(prefilter, re.compile(regex, re.ASCII | flags), validate, bounded)


_EXT = r"(?:\s?(?:x|ext\.?)\s?\d{1,6})?"
# Python regexes start with ``\b`` or a literal where they can: Python's engine then skips ahead fast.
_PHONE_INTL = r"(?:\+|\b00)[1-9]\d{0,2}(?:[ .-]?\(0\)|[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){2,6}" + _EXT
_PHONE_NANP = r"(?:\(\d{3}\)[ .-]?\d{3}[ .-]|\b\d{3}([ .-])\d{3}\1)\d{4}" + _EXT
_PHONE_NATIONAL = (r"(?:\(0\d{2,5}\)[ /-]?\d{3,8}"     # (05678) 123456
                   r"|\b0\d{2,5}[ /-]\d{5,8}"         # 01234 567890
                   r"|\b0\d{2,4} \d{3,4} \d{3,4}"     # 0113 496 0123
                   r"|\b0\d(?:[ .]\d\d){4}"           # 01 23 45 67 89
                   r"|\b0[1-9]\d{8,9})") + _EXT       # 0123456789 (trunk prefix, national significant number)
# A key name ending in one of these words, then ``=`` or ``:`` (``db_password=``, ``"api_key":``).
_CREDENTIAL_NAMES = (r"(?:password|passwd|pwd|secret|token|(?:api|access|secret|private|auth)[_-]?key"
                     r"|credentials?|auth)")

DETECTORS: dict[str, Detector] = {
    "email": Detector("email", (
        _p(r"[A-Za-z0-9._%+-]@[A-Za-z0-9-]+\.[A-Za-z]",
           r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b"),
    )),
    "phone": Detector("phone", (
        _p(r"(?:^|[^\w.+-])(?:\+|00)[1-9]", _PHONE_INTL, valid_international_phone, bounded=True),
        _p(r"\d{3}[). -] ?\d{3}[ .-]\d{4}", _PHONE_NANP, bounded=True),
        _p(r"\(0\d{2,5}\)|\b0\d{2,5}[ /-]\d{5}|\b0\d{2,4} \d{3,4} \d{3}|\b0\d(?:[ .]\d\d){3}|\b0[1-9]\d{8}",
           _PHONE_NATIONAL, valid_phone, bounded=True),
    ), column_hint=re.compile(r"(?i)phone|mobile|\btel|fax|cell"), hinted=(
        _p(r"^\+?\d{10,15}$", r"^\+?\d{10,15}$"),
    )),
    "us_ssn": Detector("us_ssn", (
        _p(r"\b\d{3}[ -]\d{2}[ -]\d{4}\b", r"\b\d{3}[ -]\d{2}[ -]\d{4}\b", valid_ssn, bounded=True),
    ), column_hint=re.compile(r"(?i)ssn|social.?sec"), hinted=(
        _p(r"^\d{9}$", r"^\d{9}$", valid_ssn),
    )),
    "credit_card": Detector("credit_card", (
        _p(r"\b[1-6]\d{3}(?:[ -]?\d){9,15}\b",
           r"\b(?:\d{4}[ -]\d{4}(?:[ -]\d{4}){1,2}[ -]\d{1,4}"   # 4-4-4-4, 4-4-4-1, 4-4-4-4-3
           r"|\d{4}[ -]\d{6}[ -]\d{4,5}"                         # Amex 4-6-5, Diners 4-6-4
           r"|\d{13,19})\b", valid_card, bounded=True),
    )),
    "iban": Detector("iban", (
        _p(r"\b[A-Z]{2}\d{2} ?[A-Z0-9]{4}",
           r"\b[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)\b", valid_iban),
    )),
    "ip_address": Detector("ip_address", (
        _p(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d", r"\b(?:\d{1,3}\.){3}\d{1,3}\b", valid_ipv4, bounded=True),
        _p(r":[0-9A-Fa-f]{0,4}:",
           r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:]|\.\d)",
           valid_ipv6),
    )),
    "secret": Detector("secret", (
        _p(r"(?:AKIA|ASIA)[A-Z0-9]{16}", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
        _p(r"gh[pousr]_[A-Za-z0-9]{36}|github_pat_",
           r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_\w{22,255})\b"),
        _p(r"xox[baprs]-", r"\bxox[baprs]-[A-Za-z0-9-]{10,}"),
        _p(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----", r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"
                                                     r"(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----)?"),
        _p(r"eyJ[A-Za-z0-9_-]+\.eyJ", r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
           _valid_jwt),
        _p(r"(?i:" + _CREDENTIAL_NAMES + r"[\"']?\s*[:=])",
           _CREDENTIAL_NAMES + r"[\"']?\s*[:=]\s*[\"']?(?P<v>[^\s\"',;]{8,})", high_entropy, flags=re.I),
    ), column_hint=re.compile(r"(?i)" + _CREDENTIAL_NAMES), hinted=(
        _p(r"^\S{16,}$", r"^\S{16,}$", high_entropy),
    )),
}
PII_TYPES = tuple(DETECTORS)


def _candidates(values: pa.Array, prefilter: str) -> pa.Array:
    return pc.indices_nonzero(pc.fill_null(pc.match_substring_regex(values, prefilter), False))


def find_spans(values: pa.Array, detector: Detector, column: str) -> dict[int, list[Span]]:
    """Row index → validated spans of ``detector``'s type in a string array.

    One Arrow pass over the whole column with the union of the type's prefilters; each pattern's own
    prefilter then runs on that (usually small) subset only.
    """
    patterns = detector.patterns_for(column)
    rows = _candidates(values, "|".join(f"(?:{p.prefilter})" for p in patterns))
    found: dict[int, list[Span]] = {}
    if not len(rows):
        return found
    subset = values.take(rows)
    for pattern in patterns:
        pattern_rows, texts = rows, subset
        if len(patterns) > 1:
            picked = _candidates(subset, pattern.prefilter)
            pattern_rows, texts = rows.take(picked), subset.take(picked)
        for row, text in zip(pattern_rows.to_pylist(), texts.to_pylist(), strict=True):
            spans = list(pattern.spans(text))
            if spans:
                found.setdefault(row, []).extend(spans)
    return found
