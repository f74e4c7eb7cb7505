"""Identity documents as ``national_id`` (ADR 0071): passports, identity cards, driving licences, voter IDs.

Most document numbers are a short alphanumeric shape without a check digit, as often an order number or a
product code. Such a number is a finding only where **a word naming the document** stands within a few words of
it (the window of ADR 0044), or in a column whose header names the document, and only in that document's own
format. Where the format carries a real rule, it is checked:

- the UK driving licence (DVLA) encodes the holder's surname, birth date and sex in fixed places: a 16-character
  value in that layout whose date is a real date is a finding on its own (7 % of random strings of the layout
  pass, and the layout is rare: about 1 in 10⁶ random 16-character alphanumeric strings pass both);
- the German passport / identity card serial is 9 characters of the ICAO 9303 restricted charset; written with
  its check digit (10 characters, as in the machine-readable zone) the check passes 1 random string in 10: not
  selective, so bare it is a low-confidence finding (ADR 0052), after a word naming it a finding;
- the Korean driving licence's first two digits are a region code (11–26, 28): 18 of 100 pairs pass, so a
  value written in its 2-2-6-2 grouping is low confidence bare, a finding after a word naming it.

No maintained library (python-stdnum included) validates any of these documents; every scheme here is in
``validators.UNCHECKED``: never column evidence on its own (ADR 0023). Sources of the formats, per scheme:
``SOURCES``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable

from mlgate.gates.data.pii_detectors import Pattern, named_by

# scheme -> (what publishes its format)
SOURCES = {
    "us.passport": "US Department of State, passport book/card numbers: 9 digits; Next Generation: a letter + 8",
    "gb.passport": "HM Passport Office: 9 digits; since 2020 two letters + 7 digits",
    "de.passport": "PassV / ICAO Doc 9303 part 3 §4.9: 9-character serial of the restricted charset, "
                   "check digit in the MRZ",
    "es.passport": "Real Decreto 896/2003, pasaporte: 3 letters + 6 digits",
    "it.passport": "Poligrafico dello Stato, passaporto elettronico: 2 letters + 7 digits",
    "in.passport": "Passport Seva (MEA): a letter, 7 digits, the first and last not 0",
    "kr.passport": "외교부 여권: M/S/R/O/D, 3 digits, a letter, 4 digits (since 2021); M/S/R/O/D + 8 digits before",
    "de.id_card": "PAuswG / PAuswV and ICAO Doc 9303: 9-character serial of the restricted charset (since 2010), "
                  "T + 8 digits before; check digit in the MRZ",
    "it.identity_card": "Ministero dell'Interno: CIE 2 letters, 5 digits, 2 letters; paper card 2 letters + 7 "
                        "digits or 7 digits + 2 letters",
    "in.voter": "Election Commission of India, EPIC: 3 letters + 7 digits",
    "us.driver_license": "AAMVA DL/ID card design standard: per state, 1-2 letters + 4-14 digits or 7-14 digits",
    "gb.driving_licence": "DVLA (Road Traffic Act 1988; GOV.UK 'driving licence number'): surname 5, decade, "
                          "month (+50 for women), day, year, 2 initials, a digit, 2 check characters",
    "it.driver_license": "Motorizzazione civile: 2 letters, 7 digits, a letter; U1 + 7 characters + a letter",
    "de.fuehrerschein": "FeV Anlage 8 field 5 (since 2013): 2 letters, 3-digit authority, 5-digit serial, "
                        "1 check character",
    "kr.driver_license": "도로교통법 시행규칙 (National Police Agency): region 11-26/28, 2-digit year, 6-digit serial, "
                         "2 digits",
}

_ICAO_SERIAL = r"[CFGHJKLMNPRTVWXYZ][CFGHJKLMNPRTVWXYZ0-9]{8}"  # ICAO 9303 restricted charset, 9 characters
_UK_DL = (r"[A-Z9]{5} ?\d(?:0[1-9]|1[0-2]|5[1-9]|6[0-2])(?:0[1-9]|[12]\d|3[01])\d ?[A-Z][A-Z9]\d[A-Z]{2}")
_KR_DL = r"\d{2}(?P<sep>[- ]?)\d{2}(?P=sep)\d{6}(?P=sep)\d{2}"

# scheme -> its own format (upper case; whole value)
FORMATS: dict[str, re.Pattern[str]] = {name: re.compile(rule, re.ASCII) for name, rule in {
    "de.passport": _ICAO_SERIAL + r"\d?",
    "us.passport": r"\d{9}|[A-Z]\d{8}",
    "gb.passport": r"\d{9}|[A-Z]{2}\d{7}",
    "it.passport": r"[A-Z]{2}\d{7}",
    "es.passport": r"[A-Z]{3}\d{6}",
    "in.passport": r"[A-Z][1-9]\d ?\d{4}[1-9]",
    "kr.passport": r"[MSROD]\d{3}[A-Z]\d{4}|[MSROD]\d{8}",
    "de.id_card": _ICAO_SERIAL + r"\d?|T\d{8}",
    "it.identity_card": r"[A-Z]{2} ?\d{7}|\d{7}[A-Z]{2}|[A-Z]{2}\d{5}[A-Z]{2}",
    "in.voter": r"[A-Z]{3}\d{7}",
    "gb.driving_licence": _UK_DL,
    "us.driver_license": r"[A-Z]{1,2}\d{4,14}|\d{7,14}",
    "it.driver_license": r"[A-Z]{2}\d{7}[A-Z]|U1[BCDEFGHJKLMNPRSTUWXYZ0-9]{7}[A-Z]",
    "de.fuehrerschein": r"[A-Z]{2}\d{8}[A-Z0-9]",
    "kr.driver_license": _KR_DL,
}.items()}


def icao_check(serial: str) -> bool:
    """ICAO Doc 9303 part 3 §4.9: weights 7, 3, 1; digits as themselves, A–Z as 10–35, ``<`` as 0; the last
    character is the sum modulo 10."""
    values = [int(c) if c.isdigit() else 0 if c == "<" else ord(c) - 55 for c in serial[:-1]]
    return serial[-1:].isdigit() and sum(v * (7, 3, 1)[i % 3] for i, v in enumerate(values)) % 10 == int(serial[-1])


def uk_licence_date(value: str) -> bool:
    """The DVLA number's birth date is a real date: decade (6th character), month + 50 for women (7–8), day
    (9–10), year (11); the century is not written, so 19xx or 20xx. The surname field is letters padded with 9."""
    value = value.replace(" ", "")
    if not re.fullmatch(r"[A-Z]+9*", value[:5]):
        return False
    month, day, year = int(value[6:8]) % 50, int(value[8:10]), int(value[5] + value[10])
    return 1 <= month <= 12 and any(day <= calendar.monthrange(century + year, month)[1] for century in (1900, 2000))


_KR_REGIONS = frozenset({*(f"{n}" for n in range(11, 27)), "28"})

# scheme -> its rule beyond the format (schemes not named have none)
CHECKS: dict[str, Callable[[str], bool]] = {
    "de.passport": lambda v: len(v) == 9 or icao_check(v),
    "de.id_card": lambda v: len(v) == 9 or icao_check(v),
    "gb.driving_licence": uk_licence_date,
    "kr.driver_license": lambda v: v[:2] in _KR_REGIONS,
}


def document_schemes(value: str, schemes: tuple[str, ...] = tuple(FORMATS)) -> tuple[str, ...]:
    """The schemes of ``schemes`` whose own format (and rule, where it has one) ``value`` has."""
    value = value.strip().upper()
    return tuple(s for s in schemes if FORMATS[s].fullmatch(value) and CHECKS.get(s, bool)(value))


def document_scheme(value: str) -> str | None:
    """What a finding names: every document whose format the value has (a shape can be several documents')."""
    return "/".join(sorted(found)) if (found := document_schemes(value)) else None


# Words that name a document, English and the local languages (a word, not a common one: ``pass``, ``license``,
# ``licence number`` or ``patente`` alone name other things too: a software licence, a patent, a number plate).
_FLIGHT = r"(?! ?\d{1,4}\b)"  # ``DL 5514``: Delta's flight, no licence (RE2 has no lookahead: kept out of prefilters)
_PASSPORT = (r"passports?|passport[ _]?(?:no|number|#)|travel[ _]?document|reisepass\w*|pass-?nr|passnummer|pasaporte"
             r"|passaporto|passeport|पासपोर्ट|여권\w*")
_ID_CARD = (r"personalausweis\w*|ausweis(?:nummer|-?nr)?|identity[ _]?card|id[-_ ]?card|identity[ _]?document"
            r"|carta d[’']?\s?identit[àa]|carta di identit[àa]|documento d[’']?\s?identit[àa]|(?-i:\bCIE\b)")
_LICENCE = (r"driver[’']?s?[ _]?licen[cs]e|driving[ _]?licen[cs]e|(?-i:\bDL\b" + _FLIGHT + r")"
            r"|dl_(?:no|nr|num|number)|dvla"
            r"|führerschein\w*|fuehrerschein\w*|fahrerlaubnis\w*|patente di guida|patente n|numero (?:di )?patente"
            r"|licenza di guida|permis de conduire|운전면허\w*|면허번호")
_VOTER = r"voter|voter[’']?s?[ _]?id|(?-i:\bEPIC\b)|elector[’']?s? photo identity card|मतदाता"
_BEFORE, _AFTER = 40, 16  # characters, as ADR 0044's ``near_id_context``


def _words(words: str) -> re.Pattern[str]:
    return re.compile(r"(?i)(?<![^\W\d_])(?:" + words + r")(?![^\W\d_])")


def _clear(text: str, start: int, end: int) -> bool:
    """Nothing of a longer code right before or after the value (an ASCII letter, digit, ``_ . + -``); a word
    of another script may touch it (``M789C1234입니다``)."""
    before, after = text[start - 1:start], text[end:end + 1]
    return not (before and (before.isascii() and (before.isalnum() or before in "_.+-"))) and not (
        after and after.isascii() and (after.isalnum() or after == "_"
                                       or (after in ".-" and text[end + 1:end + 2].isalnum())))


def _near(words: re.Pattern[str]) -> Callable[[str, int, int], bool]:
    """``_clear``, and one of ``words`` within a few words before or after the value, never inside it (the
    ``DL`` of the flight number ``DL1234`` names no driving licence)."""
    def boundary(text: str, start: int, end: int) -> bool:
        return _clear(text, start, end) and named_by(words, text, start, end, _BEFORE, _AFTER)
    return boundary


def _candidates(schemes: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("(?i)(?<![A-Za-z0-9_])(?:" + "|".join(f"(?:{FORMATS[s].pattern})" for s in schemes)
                      .replace("(?P<sep>", "(?:").replace("(?P=sep)", "[- ]?") + ")(?![A-Za-z0-9_])", re.ASCII)


# RE2 (Arrow's prefilter) has no lookbehind: the prefilter is the words alone, case-insensitive (a superset)
def _prefilter(words: str) -> str:
    return "(?i)" + words.replace(r"\w*", "").replace(_FLIGHT, "")


FAMILIES = {  # words that name a document -> the schemes they admit
    _PASSPORT: ("de.passport", "us.passport", "gb.passport", "it.passport", "es.passport", "in.passport",
                "kr.passport"),
    _ID_CARD: ("de.id_card", "it.identity_card"),
    _LICENCE: ("gb.driving_licence", "us.driver_license", "it.driver_license", "de.fuehrerschein",
               "kr.driver_license"),
    _VOTER: ("in.voter",),
}


def _family(words: str, schemes: tuple[str, ...], low: bool = False) -> Pattern:
    """A value in one of ``schemes``' formats near one of ``words``; ``low``: in a checked format whose check
    fails (and in no other format of the family)."""
    def valid(value: str) -> bool:
        return bool(document_schemes(value, schemes))

    def fails(value: str) -> bool:
        upper = value.strip().upper()
        return not valid(value) and any(FORMATS[s].fullmatch(upper) for s in schemes if s in CHECKS)

    return Pattern(_prefilter(words), _candidates(schemes), fails if low else valid, bounded=True,
                   boundary=_near(_words(words)))


_UK_DL_BARE = Pattern(r"\d{6} ?[A-Za-z9]{2}\d[A-Za-z]{2}\b",  # the layout's tail: a cheap superset for RE2
                      re.compile("(?i)(?<![A-Za-z0-9_])" + _UK_DL + r"(?![A-Za-z0-9_])", re.ASCII),
                      lambda v: bool(document_schemes(v, ("gb.driving_licence",))), bounded=True, boundary=_clear)


# A superset of every family's words for the one Arrow pass over the column: short stems cost RE2 less than the
# words themselves (a few hundred cells more, which each family's own words then drop).
_ANY_WORD = (r"(?i)pass|pasaporte|ausweis|identit|licen|f(?:ü|ue)hrer|fahrerl|patente|permis de conduire|voter"
             r"|elector|travel.doc|id.card|dvla|dl_|(?-i:\bDL\b|\bCIE\b|\bEPIC\b)|पासपोर्ट|여권|면허|मतदाता")


def _any_family(low: bool = False) -> Pattern:
    """One Arrow pass for every family's words; each family's own words then pick its cells (``parts``)."""
    families = tuple(_family(words, schemes, low) for words, schemes in FAMILIES.items()
                     if not low or set(schemes) & set(CHECKS))
    return Pattern(_ANY_WORD, None, parts=families)


# A finding: a document's number next to a word naming it, or a UK driving licence in its full format.
DOCUMENTS: tuple[Pattern, ...] = (_any_family(), _UK_DL_BARE)


def _has_letter_inside(value: str) -> bool:
    return any(c.isalpha() for c in value[1:-1])


# Low confidence (ADR 0052): a checked format whose check fails next to a word naming it; bare, a format whose
# check passes too many random strings to decide alone: a German serial with its ICAO check digit (1 in 10; only
# with a letter inside: a letter and digits is an order number's shape), a Korean licence in its 2-2-6-2 grouping.
DOCUMENTS_LOW: tuple[Pattern, ...] = (
    _any_family(low=True),
    Pattern(r"(?i)\b[CFGHJKLMNPRTVWXYZ][CFGHJKLMNPRTVWXYZ0-9]{8}\d\b",
            re.compile(r"(?i)(?<![A-Za-z0-9_])" + _ICAO_SERIAL + r"\d(?![A-Za-z0-9_])", re.ASCII),
            lambda v: icao_check(v.upper()) and _has_letter_inside(v), bounded=True, boundary=_clear),
    Pattern(r"\b\d{2}[- ]\d{2}[- ]\d{6}[- ]\d{2}\b",
            re.compile(r"(?<![\d.+-])\d{2}([- ])\d{2}\1\d{6}\1\d{2}(?![\d-])", re.ASCII),
            lambda v: v[:2] in _KR_REGIONS, bounded=True, boundary=_clear),
)

# Columns whose header names a document: a whole cell in that document's format (ADR 0071).
COLUMNS: tuple[tuple[re.Pattern[str], Pattern], ...] = tuple(
    (re.compile(r"(?i)" + header), Pattern(r"^\s*[0-9A-Za-z][0-9A-Za-z -]{5,18}\s*$",
                                           re.compile(r"^\s*[0-9A-Za-z][0-9A-Za-z -]{5,18}\s*$", re.ASCII),
                                           lambda v, s=schemes: bool(document_schemes(v, s))))
    for header, schemes in (
        (r"passport|reisepass|pasaporte|passaporto|passeport|passnummer|pass.?nr\b", FAMILIES[_PASSPORT]),
        (r"ausweis|id.?card|identity.?card|carta.?d.?identit", FAMILIES[_ID_CARD]),
        (r"driv\w*.{0,3}licen[cs]e|\bdl.?(?:no|num|nr|#)|f(?:ü|ue)hrerschein|fahrerlaubnis|patente",
         FAMILIES[_LICENCE]),
        (r"voter|\bepic(?:\b|_)", FAMILIES[_VOTER]),
    ))
