"""Person numbers of ``data.pii``'s ``national_id`` type beyond the first schemes (ADR 0070).

python-stdnum holds every scheme it knows (ADR 0018): Australia's TFN, Canada's SIN, Korea's RRN (its 7th
digit 5-8 is the foreigner registration number, the same rule), Turkey's T.C. Kimlik No, the US ITIN, South
Africa's ID number and Thailand's PIN. The rules written here are for schemes stdnum 2.2 does not have
(``stdnum.sg`` holds the UEN only, ``stdnum.au`` no Medicare, ``stdnum.de`` neither the Rentenversicherungsnummer
nor the KVNR, ``stdnum.us`` no MBI); each names its published source. Each takes a value as written and says
whether it is one; none raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from stdnum import luhn
from stdnum.au import tfn
from stdnum.ca import sin
from stdnum.kr import rrn
from stdnum.th import pin
from stdnum.tr import tckimlik
from stdnum.us import itin
from stdnum.za import idnr as za_idnr

# ---- hand-written: no maintained library covers these

_NRIC = re.compile(r"([STFGM])(\d{7})([A-Z])")
_NRIC_WEIGHTS = (2, 7, 6, 5, 4, 3, 2)
# prefix -> (offset added to the weighted sum, check letters indexed by the sum mod 11)
_NRIC_LETTERS = {"S": (0, "JZIHGFEDCBA"), "T": (4, "JZIHGFEDCBA"), "F": (0, "XWUTRQPNMLK"),
                 "G": (4, "XWUTRQPNMLK"), "M": (3, "XWUTRQPNJLK")}


def sg_nric(value: str) -> bool:
    """Singapore NRIC / FIN: a prefix (S, T citizens and PRs born before / from 2000; F, G, M foreigners), seven
    digits and a check letter. Check: digits weighted 2 7 6 5 4 3 2, plus 4 for T and G and 3 for M, mod 11,
    read in the prefix's letter table. Source: the Immigration & Checkpoints Authority's rule as published in
    "National Registration Identity Card", Wikipedia, section "Structure of the NRIC number/FIN" (the M series
    of 2022 included)."""
    match = _NRIC.fullmatch(value.strip().upper())
    if match is None:
        return False
    prefix, digits, letter = match.groups()
    offset, letters = _NRIC_LETTERS[prefix]
    return letters[(sum(w * int(d) for w, d in zip(_NRIC_WEIGHTS, digits, strict=True)) + offset) % 11] == letter


_SEPARATORS = re.compile(r"[ -]")
_MEDICARE_LAYOUT = re.compile(r"\d{10}(?:[ -]\d)?|\d{4}([ -])\d{5}\1\d(?:[ -]\d)?")


def au_medicare(value: str) -> bool:
    """Australian Medicare card number: ten digits (eight of identifier, a check digit, the issue number), an
    eleventh (the person's reference number, 1-9) optional. The first digit is 2-6; the check digit is the sum
    of the first eight weighted 1 3 7 9 1 3 7 9, mod 10. Source: Services Australia's Medicare card number
    check-digit rule, as published in the Australian Digital Health Agency's / HL7 Australia's AU Base
    "Medicare Card Number" identifier profile."""
    text = value.strip()
    if not _MEDICARE_LAYOUT.fullmatch(text):  # bare, or 4-5-1 as the card prints it (the IRN apart)
        return False
    digits = _SEPARATORS.sub("", text)
    if not (digits.isascii() and digits.isdigit() and len(digits) in (10, 11)) or digits[0] not in "23456":
        return False
    # the reference number is printed apart from the card number: eleven digits in one run are something else
    if len(digits) == 11 and (digits[10] == "0" or not _SEPARATORS.fullmatch(text[-2])):
        return False
    return sum(w * int(d) for w, d in zip((1, 3, 7, 9, 1, 3, 7, 9), digits, strict=False)) % 10 == int(digits[8])


def _cross_sum(n: int) -> int:
    return n // 10 + n % 10


_RVNR = re.compile(r"(\d{2})(\d{2})(\d{2})(\d{2})([A-Z])(\d{2})(\d)")


def de_rvnr(value: str) -> bool:
    """German Rentenversicherungsnummer (Versicherungsnummer): area number, birth date DDMMYY, the surname's
    initial, a serial, a check digit (the day is raised by 50 when the date's serials are used up). The letter
    becomes its two-digit place in the alphabet; the twelve
    digits so written are weighted 2 1 2 5 7 1 2 1 2 1 2 1, the cross sums of the products added, mod 10.
    Source: Verordnung über die Vergabe und Zusammensetzung der Versicherungsnummer (VKVV) § 2 and its
    annex (Prüfziffer); SGB VI § 147."""
    match = _RVNR.fullmatch(_SEPARATORS.sub("", value.strip().upper()))
    if match is None:
        return False
    area, day, month, year, letter, serial, check = match.groups()
    try:
        # a day raised by 50 once a date's serial numbers are used up (VKVV § 2 Abs. 3); any century's leap year
        date(2000 + int(year), int(month), int(day) - 50 * (int(day) > 50))
    except ValueError:
        return False
    digits = area + day + month + year + f"{ord(letter) - 64:02d}" + serial
    total = sum(_cross_sum(w * int(d)) for w, d in zip((2, 1, 2, 5, 7, 1, 2, 1, 2, 1, 2, 1), digits, strict=True))
    return total % 10 == int(check)


_KVNR = re.compile(r"([A-Z])(\d{8})(\d)")


def de_kvnr(value: str) -> bool:
    """German Krankenversichertennummer (KVNR, the unchangeable part on the eGK): a letter, eight digits, a check
    digit. The letter becomes its two-digit place in the alphabet; the ten digits so written are weighted
    1 2 1 2 …, the cross sums of the products added, mod 10. Source: GKV-Spitzenverband, "Richtlinien nach
    § 290 Abs. 2 Satz 1 SGB V für den unveränderbaren Teil der Krankenversichertennummer", Anlage 1."""
    match = _KVNR.fullmatch(value.strip().upper())
    if match is None:
        return False
    letter, body, check = match.groups()
    digits = f"{ord(letter) - 64:02d}" + body
    return sum(_cross_sum((1 + i % 2) * int(d)) for i, d in enumerate(digits)) % 10 == int(check)


# no S L O I B Z among the letters (they read as digits)
_MBI_LETTER = "[AC-HJKMNP-RT-Y]"
_MBI = re.compile(rf"[1-9]{_MBI_LETTER}[0-9AC-HJKMNP-RT-Y]\d{_MBI_LETTER}[0-9AC-HJKMNP-RT-Y]\d{_MBI_LETTER}{{2}}\d\d")


def us_mbi(value: str) -> bool:
    """US Medicare Beneficiary Identifier: eleven characters in fixed classes (digit 1-9, letter, letter or
    digit, digit, letter, letter or digit, digit, letter, letter, digit, digit; letters without S L O I B Z),
    written bare or 4-3-4 with dashes. No check digit: a format only (``UNCHECKED``). Source: Centers for Medicare
    & Medicaid Services, "Understanding the Medicare Beneficiary Identifier (MBI) Format"."""
    text = value.strip().upper()
    if len(text) == 13:
        if text[4] != "-" or text[8] != "-":
            return False
        text = text.replace("-", "")
    return _MBI.fullmatch(text) is not None


# ---- from python-stdnum, with the published corrections it lacks

# The IRS assigns ITIN groups 50-65 as well (since 2011): "a range of numbers from 50-65, 70-88, 90-92 and 94-99
# for the fourth and fifth digit" (IRS, "Individual Taxpayer Identification Number"). stdnum 2.2 knows 70-99 only.
_ITIN_MORE = re.compile(r"9\d\d(-?)(?:5\d|6[0-5])\1\d{4}")


def us_itin(value: str) -> bool:
    text = value.strip()
    return itin.is_valid(text) or _ITIN_MORE.fullmatch(text) is not None


def kr_rrn(value: str) -> bool:
    """stdnum's RRN (a foreigner's number, 7th digit 5-8, included); the century digits 9 and 0 (born 1800-1899)
    name nobody alive."""
    return rrn.is_valid(value) and rrn.compact(value)[6] not in "90"


def th_pin(value: str) -> bool:
    """stdnum's PIN, and the province code in digits 2-3 (the registering office's province, 10 Bangkok to
    96 Narathiwat; Department of Provincial Administration's province codes): 97-99 and below 10 are none."""
    return pin.is_valid(value) and 10 <= int(pin.compact(value)[1:3]) <= 96


def za_id(value: str) -> bool:
    """stdnum's South African ID number (birth date, Luhn), and the citizenship digit 2 of a refugee's number, which
    stdnum 2.2 rejects (it knows 0 citizen, 1 permanent resident). Sources: TPN Credit Bureau, "How does the South
    African ID number work?" (2009: "when the third last number is a 2, this individual has refugee status");
    the rsa-id-number library's REFUGEE_DIGIT (teamgeek-io/rsa-id-number, 2025)."""
    number = za_idnr.compact(value)
    if len(number) != 13 or number[10] != "2":
        return za_idnr.is_valid(value)
    try:
        za_idnr.get_birth_date(number)
    except ValueError:
        return False
    return luhn.is_valid(number)


# How each scheme is written: bare, or in its own grouping (stdnum's ``compact`` drops any separator anywhere, and
# ``111-22-123456-12`` is no Thai PIN).
_WRITTEN = {
    "au.tfn": r"\d{8,9}|\d{3}([ -])\d{3}\1\d{2,3}",
    "ca.sin": r"\d{9}|\d{3}([ -])\d{3}\1\d{3}",
    "kr.rrn": r"\d{6}-?\d{7}",
    "tr.tckimlik": r"\d{11}",
    "za.idnr": r"\d{13}|\d{6} \d{4} \d{3}",
    "th.pin": r"\d{13}|\d([ -])\d{4}\1\d{5}\1\d{2}\1\d",
    # the digit schemes of ADR 0018/0023: bare, or as their issuer (and stdnum's ``format``) writes them
    "pl.pesel": r"\d{11}",
    "nl.bsn": r"\d{8,9}|\d{4}\.\d{2}\.\d{3}",
    "gb.nhs": r"\d{10}|\d{3}([ -])\d{3}\1\d{4}",
    "in.aadhaar": r"\d{12}|\d{4}([ :-])\d{4}\1\d{4}",
    "br.cpf": r"\d{11}|\d{3}\.\d{3}\.\d{3}-\d{2}",
    "br.cnpj": r"\d{14}|\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}",
    "de.idnr": r"\d{11}|\d{2} \d{3} \d{3} \d{3}",
    "fr.nir": r"(?i)[12]\d{4}(?:\d\d|2[AB])\d{6}(?:\d\d)?|[12] \d\d \d\d (?:\d\d|2[AB]) \d{3} \d{3}(?: \d\d)?",
    "se.personnummer": r"(?:\d\d)?\d{6}[-+]?\d{4}",
    "dk.cpr": r"\d{6}-?\d{4}",
    # a person's 16 characters (digits may be letters: omocodia); stdnum also takes a company's 11 digits, which
    # are its VAT number, no person's identifier
    "it.codicefiscale": r"(?i)[A-Z]{6}[0-9LMNP-V]{2}[A-Z][0-9LMNP-V]{2}[A-Z][0-9LMNP-V]{3}[A-Z]",
}


# every layout a scheme's value of digits and separators alone may have (``_WRITTEN``, the Medicare card's, the
# ITIN's 3-2-4 as stdnum reads it, the HETU's): a value in none of them is no scheme's (pii_detectors' cheap test)
DIGIT_LAYOUTS = tuple(re.compile(layout) for layout in (*_WRITTEN.values(), _MEDICARE_LAYOUT.pattern,
                                                         r"\d{3}[ -]?\d{2}[ -]?\d{4}",
                                                         r"\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]"))


def written(scheme: str, check: Callable[[str], bool]) -> Callable[[str], bool]:
    """``check``, on a value written bare or in ``scheme``'s own grouping only."""
    layout = re.compile(_WRITTEN[scheme])
    return lambda value: layout.fullmatch(value.strip()) is not None and check(value)


PERSON_NUMBERS: dict[str, Callable[[str], bool]] = {
    "sg.nric": sg_nric,
    "au.tfn": written("au.tfn", tfn.is_valid),
    "ca.sin": written("ca.sin", sin.is_valid),
    "kr.rrn": written("kr.rrn", kr_rrn),
    "tr.tckimlik": written("tr.tckimlik", tckimlik.is_valid),
    "za.idnr": written("za.idnr", za_id),
    "th.pin": written("th.pin", th_pin),
    "au.medicare": au_medicare,
    "de.rvnr": de_rvnr,
    "de.kvnr": de_kvnr,
    "us.itin": us_itin,
    "us.mbi": us_mbi,
}
# no check digit: a format (or ranges) only, never evidence of a column on its own (ADR 0023)
PERSON_NUMBERS_UNCHECKED = frozenset({"us.itin", "us.mbi"})


def kr_rrn_format(value: str) -> bool:
    """An RRN's own format, its check aside: a YYMMDD birth date, then the digit 1-8 that says the century and
    whether a citizen or a foreigner (numbers issued since October 2020 end in random digits, not a check)."""
    digits = value.replace("-", "")
    if len(digits) != 13 or not digits.isdigit() or digits[6] not in "12345678":
        return False
    try:
        rrn.get_birth_date(digits)
    except ValueError:
        return False
    return True
