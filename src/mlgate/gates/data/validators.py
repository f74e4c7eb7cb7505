"""Validators for ``data.pii`` candidates, built on maintained libraries where one exists.

``python-stdnum`` holds the check-digit and range rules (Luhn, IBAN mod-97 and country lengths, US SSN
ranges and its published example numbers, national identifiers); ``phonenumbers`` holds every region's
numbering plan. These run only on the few cells the Arrow prefilter keeps, so their cost is not the
scan's cost.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable
from functools import cache, lru_cache

import phonenumbers
from stdnum import iban as _iban
from stdnum import luhn as _luhn
from stdnum.br import cnpj, cpf
from stdnum.de import idnr
from stdnum.dk import cpr
from stdnum.es import dni, nie
from stdnum.fi import hetu
from stdnum.fr import nir
from stdnum.gb import nhs
from stdnum.in_ import aadhaar, pan
from stdnum.iso7064 import mod_97_10 as _mod_97_10
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.pl import pesel
from stdnum.se import personnummer
from stdnum.us import ssn as _ssn

from mlgate.gates.data.national_ids import PERSON_NUMBERS, PERSON_NUMBERS_UNCHECKED, written


def luhn_ok(digits: str) -> bool:
    return digits.isdigit() and _luhn.checksum(digits) == 0


# issuer: (card lengths, issuer prefixes as (prefix length, low, high)). Luhn is not the issuer's rule
# (stdnum has no issuer table), so the IIN ranges stay here.
_ISSUERS: dict[str, tuple[frozenset[int], tuple[tuple[int, int, int], ...]]] = {
    "visa": (frozenset({13, 16, 19}), ((1, 4, 4),)),
    "mastercard": (frozenset({16}), ((2, 51, 55), (4, 2221, 2720))),
    "amex": (frozenset({15}), ((2, 34, 34), (2, 37, 37))),
    "discover": (frozenset(range(16, 20)), ((4, 6011, 6011), (3, 644, 649), (2, 65, 65),
                                            (6, 622126, 622925))),
    "jcb": (frozenset(range(15, 20)), ((4, 3528, 3589), (4, 2131, 2131), (4, 1800, 1800))),
    "diners": (frozenset(range(14, 20)), ((3, 300, 305), (2, 36, 36), (2, 38, 39))),
    "maestro": (frozenset(range(12, 20)), ((2, 50, 50), (2, 56, 69))),
    "dankort": (frozenset({16}), ((4, 5019, 5019),)),
    "uatp": (frozenset({15}), ((1, 1, 1),)),
    "unionpay": (frozenset(range(16, 20)), ((2, 62, 62), (2, 81, 81))),
    "mir": (frozenset(range(16, 20)), ((4, 2200, 2204),)),
    "rupay": (frozenset({16}), ((2, 60, 60), (3, 508, 508), (3, 652, 653), (2, 82, 82))),
}


# per card length, the issuers that issue it, in _ISSUERS' order: the lookup a candidate needs, built once
_ISSUERS_BY_LENGTH = {size: tuple((issuer, ranges) for issuer, (lengths, ranges) in _ISSUERS.items() if size in lengths)
                      for size in range(1, 20)}


def card_issuer(digits: str) -> str | None:
    for issuer, ranges in _ISSUERS_BY_LENGTH.get(len(digits), ()):
        for size, low, high in ranges:
            if low <= int(digits[:size]) <= high:
                return issuer
    return None


def valid_card(text: str) -> bool:
    if " " in text and "-" in text:  # one separator throughout
        return False
    digits = text.replace(" ", "").replace("-", "")
    return card_issuer(digits) is not None and luhn_ok(digits)


def valid_ssn(text: str) -> bool:
    """One separator throughout (``-``, ``.`` or space, or none); stdnum's ranges and its list of
    published example numbers (078-05-1120, 219-09-9999, ...)."""
    if not text.isascii():  # non-ASCII digits: the general path below
        separators = set(re.sub(r"\d", "", text))
        digits = re.sub(r"\D", "", text)
    else:
        separators = set(text.translate(_DROP_DIGITS))
        digits = text.translate(_KEEP_DIGITS)
    if len(separators) > 1 or (separators and len(text) != 11):
        return False
    return ssn_may_pass(digits) and _ssn.is_valid(digits)


# ---- reject-only prefilters (ADR 0051): exact arithmetic that turns away what the library refuses too, so the
# library is asked less often; a value the prefilter passes is accepted only on the library's own verdict.

_DROP_DIGITS = str.maketrans("", "", "0123456789")
_KEEP_DIGITS = {c: None for c in range(128) if not chr(c).isdigit()}


def ssn_may_pass(digits: str) -> bool:
    """False only for what stdnum's SSN rule rejects as well: nine ASCII digits in area 000, 666 or 9xx, group 00
    or serial 0000 (its ``validate``); any other string is left to stdnum. test_pii_prefilters checks this."""
    if len(digits) != 9 or not digits.isascii() or not digits.isdigit():
        return True
    return digits[0] != "9" and digits[:3] not in ("000", "666") and digits[3:5] != "00" and digits[5:] != "0000"


def valid_iban(text: str) -> bool:
    """stdnum's country formats and mod-97 (not the national account checks, which many real IBANs' test
    fixtures fail); check digits 00, 01 and 99 are never issued (00 ≡ 97). This is ``iban.validate`` with
    ``check_country=False``, its per-country format looked up once per country instead of once per value
    (the lookup was most of the IBAN check's time)."""
    compact = text.replace("-", "").replace(" ", "").upper()
    if compact[2:4] in ("00", "01", "99"):
        return False
    bban = _bban_format(compact[:2])
    return bban is not None and bban.match(compact[4:]) is not None and _mod_97_10.is_valid(compact[4:] + compact[:4])


@cache
def _bban_format(country: str) -> re.Pattern[str] | None:
    props = _iban._ibandb.info(country)[0][1]
    return _iban._struct_to_re(props["bban"]) if props.get("bban") else None


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


# Regions tried for a number written without its country code, most populous and most common first.
# phonenumbers knows every region; a national number is ambiguous without one, so the list is bounded.
NATIONAL_REGIONS = ("US", "GB", "DE", "FR", "IN", "CN", "JP", "BR", "TR", "IL", "IT", "ES", "NL", "CA",
                    "AU", "MX", "RU", "KR", "PL", "SE", "CH", "AT", "BE", "IE", "PT", "ZA", "NG", "PH")


_EXTENSION = re.compile(r"(?i)\s*(?:x|ext\.?)\s*\d")
_NOT_DIGIT = re.compile(r"\D")


def _digits(text: str) -> str:
    return _NOT_DIGIT.sub("", _EXTENSION.split(text, 1)[0])


@lru_cache(maxsize=65536)
def phone_region(text: str, strict: bool = False, regions: tuple[str, ...] = NATIONAL_REGIONS) -> str | None:
    """The region whose plan ``text`` fits: ``+``/``00`` numbers by their country code, others by the
    first of ``regions`` that takes them. ``strict``: a valid number (assigned range), not just a
    possible one (right length) — for bare digit runs, which are too often something else."""
    number = text.strip()
    if number.startswith("00"):
        number = "+" + number[2:]
    regions = (None,) if number.startswith("+") else regions
    check = phonenumbers.is_valid_number if strict else phonenumbers.is_possible_number
    for region in regions:
        try:
            parsed = phonenumbers.parse(number, region)
        except phonenumbers.NumberParseException:
            continue
        if check(parsed):
            return phonenumbers.region_code_for_number(parsed) or region or "001"
    return None


@lru_cache(maxsize=65536)
def possible_phone(text: str, regions: tuple[str, ...] = NATIONAL_REGIONS) -> bool:
    """``phone_region(text)`` is not None, without naming the region (finding it was half the time)."""
    number = text.strip()
    if number.startswith("00"):
        number = "+" + number[2:]
    if number.startswith("+") and "(" not in number and (built := _international(number)) is not None:
        return phonenumbers.is_possible_number(built)
    # any region will do, so those whose trunk prefix the number starts with are asked first (fewer parses)
    regions = (None,) if number.startswith("+") else _trunk_zero_first(regions) if number[:1] in "0(" else regions
    for region in regions:
        try:
            if phonenumbers.is_possible_number(phonenumbers.parse(number, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


@cache
def _trunk_zero_first(regions: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(regions, key=lambda region: getattr(
        phonenumbers.PhoneMetadata.metadata_for_region(region), "national_prefix", None) != "0"))


def _international(number: str) -> phonenumbers.PhoneNumber | None:
    """``+CC digits`` as phonenumbers' number object, built without ``parse`` (three quarters of the check's
    time, spent on formats a ``+``, digits and separators never need); the length test stays the library's.
    None when the country code is unknown, a trunk 0 follows it, or an extension or letters are there
    (``parse`` decides those)."""
    digits = number[1:].replace(" ", "").replace("-", "").replace(".", "")
    if not digits.isdigit() or len(digits) > 17:
        return None
    code = next((size for size in (1, 2, 3) if int(digits[:size]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE), None)
    if digits[0] == "0" or code is None or len(digits) == code or digits[code] == "0" \
            or _trunk_prefix(int(digits[:code])).match(digits[code:]):  # a trunk prefix after the code: parse strips it
        return None
    return phonenumbers.PhoneNumber(country_code=int(digits[:code]), national_number=int(digits[code:]))


@cache
def _trunk_prefix(country_code: int) -> re.Pattern[str]:
    """The country's national prefix for parsing (phonenumbers' metadata), or a pattern that never matches."""
    region = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[country_code][0]
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    prefix = metadata.national_prefix_for_parsing if metadata is not None else None
    return re.compile(prefix or r"(?!)")


def valid_phone(text: str, regions: tuple[str, ...] = NATIONAL_REGIONS) -> bool:
    return 7 <= len(_digits(text)) <= 15 and possible_phone(text, regions)


def valid_bare_phone(text: str, regions: tuple[str, ...] = NATIONAL_REGIONS) -> bool:
    return phone_region(text, strict=True, regions=regions) is not None


def valid_international_phone(text: str) -> bool:
    """A country code written without ``+`` (``91-415-555-0132``) must make a valid number."""
    return phone_region("+" + _digits(text), strict=True) is not None


# Finland's century signs added in 2023 (Y X W V U for the 1900s, B C D E F for the 2000s) stand for
# ``-`` and ``A`` in the check (the check character covers date and serial only); stdnum 2.x knows the old
# signs only. Temporary numbers (serial 900-999) identify a person as well.
_HETU_SIGNS = str.maketrans("YXWVUBCDEF", "-----AAAAA")


def _valid_hetu(text: str) -> bool:
    text = text.strip().upper()
    return len(text) == 11 and hetu.is_valid(text[:6] + text[6].translate(_HETU_SIGNS) + text[7:], allow_temporary=True)


# ---- national identifiers: scheme -> stdnum validator. A scheme's candidates come from pii_detectors.
NATIONAL_IDS: dict[str, Callable[[str], bool]] = {
    "gb.nino": lambda v: bool(re.fullmatch(r"(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
                                           r"\d{6}[A-D]", re.sub(r"\s", "", v.upper()))),
    "in.pan": pan.is_valid,
    # one digit eleven times passes CPF's check digits, but Brazil's revenue service never issues it (a filler)
    "br.cpf": written("br.cpf", lambda v: cpf.is_valid(v) and len(set(cpf.compact(v))) > 1),
    "br.cnpj": written("br.cnpj", cnpj.is_valid),
    "it.codicefiscale": written("it.codicefiscale", codicefiscale.is_valid),
    # a DNI below ten million is often written without its leading zero (1111111-G)
    "es.dni": lambda v: dni.is_valid(v) or (len(dni.compact(v)) == 8 and dni.is_valid("0" + dni.compact(v))),
    "es.nie": nie.is_valid,
    "fi.hetu": _valid_hetu,
    "se.personnummer": written("se.personnummer", personnummer.is_valid),
    "dk.cpr": written("dk.cpr", cpr.is_valid),
    "pl.pesel": written("pl.pesel", pesel.is_valid),
    "de.idnr": written("de.idnr", idnr.is_valid),  # Steuer-IdNr, Germany's personal tax identifier
    # bare digit runs last: a shaped value (130552-308T) must not be taken for a mod-11 number
    "in.aadhaar": written("in.aadhaar", lambda v: aadhaar.is_valid(v.replace(":", " "))),  # stdnum: " " and "-"
    "fr.nir": written("fr.nir", nir.is_valid),
    "gb.nhs": written("gb.nhs", nhs.is_valid),
    "nl.bsn": written("nl.bsn", bsn.is_valid),
    # the person numbers of ADR 0070 (stdnum's, and the hand-written rules of national_ids for those it lacks)
    **PERSON_NUMBERS,
}


# Schemes whose rule is a format or a date only, no check digit (stdnum's dk.cpr stopped checking the
# mod-11 digit, which Denmark gave up in 2007).
UNCHECKED = frozenset({"gb.nino", "in.pan", "dk.cpr"}) | PERSON_NUMBERS_UNCHECKED
# identity documents (national_documents.FORMATS, ADR 0071): a format, at most a weak rule; never column evidence
UNCHECKED |= frozenset({"us.passport", "gb.passport", "de.passport", "es.passport", "it.passport", "in.passport",
                        "kr.passport", "de.id_card", "it.identity_card", "in.voter", "gb.driving_licence",
                        "us.driver_license", "it.driver_license", "de.fuehrerschein", "kr.driver_license"})


def national_id_scheme(text: str, schemes: tuple[str, ...] = tuple(NATIONAL_IDS)) -> str | None:
    """The first scheme whose format and check digits ``text`` passes (stdnum's ``is_valid`` never raises)."""
    return next((scheme for scheme in schemes if NATIONAL_IDS[scheme](text)), None)


def national_id_schemes(text: str) -> frozenset[str]:
    return frozenset(scheme for scheme, valid in NATIONAL_IDS.items() if valid(text))


def shannon_entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())
