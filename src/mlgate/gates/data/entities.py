"""Person names, postal addresses and dates of birth for ``data.pii``.

These have no checksum, so evidence comes from where they sit. In a table the column header says what
a column holds (``first_name``, ``street``, ``dob``) and every cell must still look the part (a name has
no digits, an address has a number and words, a date of birth parses and lies in a human lifetime). In
free text, an address needs a street word next to a house number, and a date counts as a date of birth
only right after words that say so (``born on``, ``DOB:``, ``geboren am``). Names in free text need a
named-entity model, which this module does not ship: see ADR 0018.
"""

from __future__ import annotations

import re
from datetime import date

NAME_COLUMNS = re.compile(
    r"(?i)^(?:(?:first|last|full|given|family|middle|sur|maiden|customer|patient|employee|user|contact|holder"
    r"|account|person|client|applicant)[_ .-]?)?name$|^(?:vorname|nachname|nom|pr[ée]nom|apellidos?|nombre"
    r"|surname|forename)$")
NAME_VALUE = r"^\s*[^\W\d_][^\W\d_'’.-]*(?:[ '’.-]+[^\W\d_][^\W\d_'’.-]*){0,7}\.?\s*$"

ADDRESS_COLUMNS = re.compile(r"(?i)(?<!email)(?<!e-mail)(?<!ip)(?<!mac)[_ .-]?(?:address|addr)\b|street|adresse"
                             r"|anschrift|stra(?:ss|ß)e|calle|\brue\b|address_line|addressline")
ADDRESS_VALUE = r"\d.*[^\W\d_]{3}|[^\W\d_]{3}.*\d"

_STREET_WORDS = (r"(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl"
                 r"|Square|Sq|Terrace|Parkway|Pkwy|Highway|Hwy|Circle|Crescent|Close|Grove|Gardens|Mews|Row"
                 r"|Walk|Hill|Park|Trail|Route|Loop|Track|Vista|Ridge|Station|Ports?|Points?|Shores?|Springs?"
                 r"|Village|Ville|Plaza|Alley|Via|Estates?|Manor|View|Meadows?|Passage|Pike|Bypass)")
_FR_STREET = r"(?:rue|avenue|boulevard|bd|chemin|allée|place|impasse|quai|cours|route|voie)"
_DE_STREET = r"(?:straße|strasse|str\.|weg|gasse|allee|platz|ring|damm|ufer|chaussee|steig|pfad)"
# Every alternative of STREET holds one of these (a street word, a house number and a French street word,
# a US state and ZIP, ", " and a UK postcode): a house number alone, a French word alone ("place") or a
# postcode shape inside an IBAN or a token would keep most free-text cells.
STREET_PREFILTER = (r"\b" + _STREET_WORDS + r"\b|\d[a-zA-Z]?,? (?i:" + _FR_STREET + r")"
                    r"|(?i:(?:Flat|Studio|Apartment) \d)|(?i:" + _DE_STREET + r") \d|[A-Z]{2} \d{5}"
                    r"|, [A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b")
STREET = re.compile(
    r"\b\d{1,5}[a-zA-Z]?,? (?:[A-Z][\w'’-]+ ){1,4}" + _STREET_WORDS + r"\b\.?(?: (?:Apt\.|Suite) \d+)?"
    r"|\b\d{1,4}[a-zA-Z]?,? (?i:" + _FR_STREET + r")(?: (?:de la|de l'|du|des|de|d')?[ ]?[\w'’-]+){1,4}"
    r"|\b(?:Flat|Studio|Apartment) \d+[a-zA-Z]?,? (?:[\w'’-]+ ){1,3}(?i:" + _STREET_WORDS + r")\b"
    r"|\b[A-ZÄÖÜ][\wäöüß-]*(?i:" + _DE_STREET + r") \d{1,4}[a-zA-Z]?\b"
    # a house number and street words, then a US state and ZIP code or a UK postcode
    r"|\b\d{1,5}[a-zA-Z]? (?:[A-Z][\w'’-]+ ){0,4}[A-Z][\w'’-]+(?:,? (?:Apt\.|Suite) \d+)?, "
    r"(?:[A-Z][\w'’ -]+, )?[A-Z]{2} \d{5}\b"
    r"|\b(?:(?:Flat|Studio|Apartment) )?\d{1,5}[a-zA-Z]?,? [^,\n]{3,40}, (?:[^,\n]{3,40}, )?"
    r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b")

_CONTINUED_NUMBER = re.compile(r"(?:\d[.,]|\d-\d+-|\d/\d+/)$")


def starts_clear(text: str, start: int, end: int) -> bool:
    """An address's house number does not continue a longer number: the cents of an amount (``2594.71 EUR
    Place``), the last part of a dotted version, of a dashed code (``666-28-9314 Voie``) or of a date
    (``11/11/1990 Cours``); a unit before a house number (``3/12 Smith Street``) still starts one."""
    return _CONTINUED_NUMBER.search(text, max(0, start - 12), start) is None


DOB_COLUMNS = re.compile(r"(?i)\bdob\b|d_o_b|birth|geburt|naissance|nacimiento|nascita|born")
_DATE = (r"(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}"
         r"|\d{1,2}\.? (?:[A-Za-zéûä]{3,9}\.?) \d{4}|(?:[A-Za-z]{3,9}\.?) \d{1,2},? \d{4})")
DATE_VALUE = r"^\s*" + _DATE + r"\s*$"
DOB_CONTEXT = (r"(?i)(?:born(?: on| in)?|\bdob\b|d\.o\.b\.?|date of birth|birth ?date|birthday|geboren(?: am)?"
               r"|geburtsdatum|n[ée]e? le|date de naissance|fecha de nacimiento|nacid[oa] el)")
DOB_IN_TEXT = re.compile(DOB_CONTEXT + r"[\s:=,-]{0,4}(?P<v>" + _DATE + r")")

_MONTHS = {m: i + 1 for i, names in enumerate((
    "jan january januar janvier enero", "feb february februar février fevrier febrero",
    "mar march märz mars marzo", "apr april avril abril", "may mai mayo", "jun june juni juin junio",
    "jul july juli juillet julio", "aug august août agosto", "sep sept september septembre septiembre",
    "oct october oktober octobre octubre", "nov november novembre noviembre",
    "dec december dezember décembre decembre diciembre")) for m in names.split()}


def parse_date(text: str) -> date | None:
    """A calendar date from the common numeric and month-name forms (day-first where ambiguous)."""
    text = text.strip().rstrip(".").lower()
    numbers = [int(n) for n in re.findall(r"\d+", text)]
    month_word = re.search(r"[a-zéûä]{3,}", text)
    try:
        if month_word:
            month = _MONTHS.get(month_word.group().rstrip("."))
            if month is None or len(numbers) != 2:
                return None
            day, year = sorted(numbers)
            return date(year, month, day)
        if len(numbers) != 3:
            return None
        if len(str(numbers[0])) == 4 or numbers[0] > 31:
            return date(numbers[0], numbers[1], numbers[2])
        day, month, year = numbers
        if month > 12:
            day, month = month, day
        return date(year + (1900 if year >= 30 else 2000) if year < 100 else year, month, day)
    except ValueError:
        return None


def valid_birth_date(text: str) -> bool:
    """A date within a human lifetime, and not in the future."""
    parsed = parse_date(text)
    return parsed is not None and date(1900, 1, 1) <= parsed <= date.today()
