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

import math
import random
import re
import string
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cache, partial

import pyarrow as pa
import pyarrow.compute as pc

from mlgate.gates.data import entities, secrets
from mlgate.gates.data.national_ids import DIGIT_LAYOUTS, kr_rrn_format
from mlgate.gates.data.policies import PII_TYPES
from mlgate.gates.data.secrets import high_entropy, valid_jwt, valid_token
from mlgate.gates.data.validators import (
    NATIONAL_IDS,
    NATIONAL_REGIONS,
    UNCHECKED,
    card_issuer,
    luhn_ok,
    national_id_scheme,
    national_id_schemes,
    valid_bare_phone,
    valid_card,
    valid_international_phone,
    valid_ipv4,
    valid_ipv6,
    valid_phone,
    valid_ssn,
)
from mlgate.gates.data.validators import valid_iban as valid_iban

__all__ = ["PII_TYPES", "Detector", "Pattern", "Span", "card_issuer", "detectors", "find_spans",
           "high_entropy", "luhn_ok", "valid_iban", "valid_ssn"]

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


_IBAN_HEAD = re.compile(r"(?=[A-Z])\b[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]{4})*[ -]$")


def not_in_iban(text: str, start: int, end: int) -> bool:
    """A digit run right after an IBAN's country and check digits (``DE89 3704 …``) is that IBAN's body,
    valid or not, never a phone number."""
    return clear_of_neighbours(text, start, end) and not _IBAN_HEAD.search(text, max(0, start - 40), start)


def not_in_address(text: str, start: int, end: int) -> bool:
    """``not_in_iban``, no ``:`` on either side (the groups of an IPv6 address), and no further group after
    it (``2345 6789 0123 4567``: the first twelve digits of a longer grouped number pass Verhoeff 1 in 10)."""
    return (not_in_iban(text, start, end) and not (start and text[start - 1] == ":")
            and text[end:end + 1] != ":" and not _NEXT_GROUP.match(text, end))


_NEXT_GROUP = re.compile(r"[ :-]\d{4}\b")


def clear_of_digits(text: str, start: int, end: int) -> bool:
    """No digit (or ``digit.``/``-digit``) touching the value; letters before it may (a missing space)."""
    if start and (text[start - 1].isdigit() or text[start - 1] in ".+-"):
        return False
    return end >= len(text) or not (text[end].isdigit() or (text[end] in ".-" and text[end + 1:end + 2].isdigit()))


def not_in_code(text: str, start: int, end: int) -> bool:
    """``clear_of_neighbours``, and no further dash-joined group after the value: ``4846295b`` (a DNI's shape,
    its letter right 1 time in 23) starting a UUID ``4846295b-fe73-…`` is part of that code."""
    return clear_of_neighbours(text, start, end) and not (text[end:end + 1] == "-" and text[end + 1:end + 2].isalnum())


_SSN_SHAPE = re.compile(r"\d{3}[ .-]\d{2}[ .-]\d{4}")


def phone_bounded(text: str, start: int, end: int) -> bool:
    """``not_in_iban``, and the US SSN's 3-2-4 grouping is never read as a phone number."""
    return not_in_iban(text, start, end) and not _SSN_SHAPE.fullmatch(text, start, end)


@dataclass(frozen=True)
class Pattern:
    """One shape of a type: RE2 ``prefilter`` for Arrow, exact Python ``regex``, and its ``validate``.

    When ``regex`` has a group named ``v``, only that group is the value. ``bounded``: the value must
    pass ``boundary`` (by default: clear of neighbouring word characters). When validation fails, the
    match is cut back at each separator inside it and the shorter candidates are tried (a card number
    followed by `` 123``). ``finder`` replaces regex + validate for rules that are more than one regex.
    ``parts``: finer patterns, each with its own prefilter, run on the cells this one's prefilter kept
    (one Arrow pass per group of rules over the column, one per rule over the group's few cells).
    """

    prefilter: str
    regex: re.Pattern[str] | None
    validate: Callable[[str], bool] | None = None
    bounded: bool = False
    boundary: Callable[[str, int, int], bool] = clear_of_neighbours
    finder: Callable[[str], list[Span]] | None = None
    parts: tuple[Pattern, ...] = ()

    def _accept(self, text: str, start: int, end: int) -> bool:
        if self.bounded and not self.boundary(text, start, end):
            return False
        return self.validate is None or self.validate(text[start:end])

    def add_spans(self, rows: list[int], texts: list[str], found: dict[int, list[Span]]) -> None:
        """Append each text's spans to ``found[row]``. One loop over the batch, its lookups hoisted: a generator
        and two method calls per cell were a large share of the scan's Python time (ADR 0051)."""
        if self.finder is not None:
            finder = self.finder
            for row, text in zip(rows, texts, strict=True):
                if spans := finder(text):
                    found.setdefault(row, []).extend(spans)
            return
        group = "v" if "v" in self.regex.groupindex else 0
        finditer, bounded, boundary, validate = self.regex.finditer, self.bounded, self.boundary, self.validate
        for row, text in zip(rows, texts, strict=True):
            for match in finditer(text):
                start, end = match.span(group)
                if (not bounded or boundary(text, start, end)) and (validate is None or validate(text[start:end])):
                    found.setdefault(row, []).append((start, end))
                elif group == 0 and bounded:  # unbounded regexes check their edges with lookarounds,
                    for span in self._shorter(text, start, end):  # which a cut-short endpos would fool
                        found.setdefault(row, []).append(span)

    def _shorter(self, text: str, start: int, end: int) -> Iterator[Span]:
        for cut in range(end - 1, start, -1):
            if text[cut] not in " -.":
                continue
            match = self.regex.match(text, start, cut)
            if match and match.end() == cut and self._accept(text, start, cut):
                yield start, cut
                return


@dataclass(frozen=True)
class ColumnEvidence:
    """A whole-cell shape that classifies a column by its values when its header does not name the type.

    ``classes`` names what one value is (the ID schemes whose check it passes); ``member`` checks one value
    against one class. The column holds the type when one class covers ``EVIDENCE_SHARE`` of its non-empty
    cells: a column of PESELs passes, a column of order numbers does not (a check digit passes 1 in 10 or 11
    of them). A column of a few cells is judged on those (nothing else to weigh). Only schemes with a check
    digit: digits that are not random (timestamps, sequential IDs) pass a rule of ranges or plans wholesale —
    a column of epoch seconds is 100% valid German mobile numbers, sequential 9-digit IDs valid SSNs.
    """

    regex: re.Pattern[str]  # whole cell; group ``v`` is the value
    classes: Callable[[str], frozenset[str]]
    member: Callable[[str, str], bool]
    universe: tuple[str, ...]  # every class ``classes`` can name

    @property
    def prefilter(self) -> str:
        return self.regex.pattern


EVIDENCE_SHARE = 0.95
# The column's share must also be unlikely for random values of the same shape (a one-sided binomial test):
# one lone cell counts only for a class that rejects most random values of its shape (a check digit, a
# selective numbering plan), not for one that takes most (the SSN ranges, Germany's or India's phone plan).
EVIDENCE_CHANCE = 0.5
_CHANCE_TRIALS = 200
_EVIDENCE_SAMPLE = 400  # cells the vote is taken on; the winning class is then checked on every cell


@dataclass(frozen=True)
class Detector:
    type: str
    patterns: tuple[Pattern, ...]
    column_hint: re.Pattern[str] | None = None  # column names that admit ``hinted`` shapes
    hinted: tuple[Pattern, ...] = ()
    by_values: ColumnEvidence | None = None  # for columns whose name does not say
    # One Arrow pass with the union of every prefilter first; off where the union is too big for RE2's DFA
    # (the secret rules), which then runs slower than one pass per pattern.
    union_prefilter: bool = True
    # The type's own formats whose check failed: findings of low confidence (ADR 0052), never merged with these.
    weak: tuple[Pattern, ...] = ()
    # (header, pattern): a pattern admitted only in columns whose header names what it finds (ADR 0071)
    hinted_by: tuple[tuple[re.Pattern[str], Pattern], ...] = ()

    def named(self, column: str) -> bool:
        return self.column_hint is not None and self.column_hint.search(column) is not None

    def patterns_for(self, column: str) -> tuple[Pattern, ...]:
        by_header = tuple(pattern for header, pattern in self.hinted_by if header.search(column))
        return (self.patterns + self.hinted if self.named(column) else self.patterns) + by_header


def _p(prefilter: str, regex: str, validate: Callable[[str], bool] | None = None, bounded: bool = False,
       flags: int = 0, boundary: Callable[[str, int, int], bool] = clear_of_neighbours) -> Pattern:
    return Pattern(prefilter, re.compile(regex, re.ASCII | flags), validate, bounded, boundary)


_EXT = r"(?:\s?(?:x|ext\.?)\s?\d{1,6})?"
# Python regexes start with ``\b`` or a literal where they can: Python's engine then skips ahead fast.
_PHONE_INTL = r"(?:\+|\b00)[1-9]\d{0,2}(?:[ .-]?\(0\)|[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){2,6}" + _EXT
_PHONE_NANP = r"(?:\(\d{3}\)[ .-]?\d{3}[ .-]|\b\d{3}([ .-])\d{3}\1)\d{4}" + _EXT
# Every alternative starts with ``(`` or ``0``: the leading lookahead lets Python's engine skip other positions
# (a third of the time of the plain alternation on the corpus).
_PHONE_NATIONAL = (r"(?=[(0])(?:\(0\d{2,5}\)[ /-]?\d{3,8}"          # (05678) 123456
                   r"|\b0[ -]?\(\d{3}\)[ -]?\d{3}[ -]?\d{2}[ -]?\d{2}"  # 0 (532) 123 45 67
                   r"|\b0[ -]\d{3}[ -]\d{3}[ -]\d{2}[ -]\d{2}"  # 0 532 123 45 67
                   r"|\b0\d{1,4}-\d{1,4}-\d{4}"             # 090-1234-5678
                   r"|\b0\d{1,5}[ /-]\d{5,8}"               # 01234 567890, 09-7625400
                   r"|\b0\d{2,4} \d{3,4} \d{2,4}(?: \d\d)?"  # 0113 496 0123, 0216 123 45 67
                   r"|\b0\d(?:[ .]\d\d){4}"                 # 01 23 45 67 89
                   r"|\b0[1-9]\d{8,10})") + _EXT            # 0123456789 (trunk prefix, national number)


_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "_~.-")


def _word_bounded(text: str, start: int, end: int) -> bool:
    """A token rule's match must not sit inside a longer word: no word character right before or after
    it where its own first or last character is a token character (a rule whose tail may end in ``~``
    or ``-`` otherwise takes a cut-off piece of a longer run)."""
    value = text[start:end]
    if start and value[:1] in _TOKEN_CHARS and (text[start - 1].isalnum() or text[start - 1] == "_"):
        return False
    return not (end < len(text) and value[-1:] in _TOKEN_CHARS and (text[end].isalnum() or text[end] == "_"))


_TOKEN_TAIL = re.compile(r"[\w#*.~-]*")


def _token_finder(rules: tuple[str, ...]) -> Callable[[str], list[Span]]:
    """Spans of provider tokens matching ``rules``, trimmed of the rule's delimiters (``=``, quotes)."""
    regexes = tuple(re.compile(rule) for rule in rules)

    def spans(text: str) -> list[Span]:
        found = []
        for regex in regexes:
            for match in regex.finditer(text):
                start, end = match.span()
                while start < end and text[start] in " \t=:\"'/":
                    start += 1
                while end > start and text[end - 1] in " \t\"'\r\n":
                    end -= 1
                tail = _TOKEN_TAIL.match(text, end).end()  # masked rest (xoxp-1-2-3-####) makes a placeholder
                # valid_token has asked is_placeholder about text[start:end] already: ask again only for a longer tail
                if (end - start >= 8 and _word_bounded(text, start, end) and valid_token(text[start:end])
                        and (tail == end or not secrets.is_placeholder(text[start:tail]))):
                    found.append((start, end))
        return found
    return spans


_LARGE_REPEAT = re.compile(r"\{(\d+),(\d{4,})\}")
_COUNTED = re.compile(r"(?<!\\)\{(\d+)(?:,\d*)?\}")
# RE2's cost per pass grows with every counted repeat in the union (``[A-Za-z0-9]{34,}`` costs as much as a
# dozen literal rules), so a group's pass runs a looser copy of its rules: a superset, never a miss; each
# rule's exact pattern then runs on the group's few cells.
_GROUP_MIN_REPEAT = 4
_RULES_PER_PASS = 26  # RE2 slows down sharply on one union of every rule; two passes are faster


def _loose(rule: str) -> str:
    """A superset of ``rule`` for the group pass: each ``X{m,n}`` becomes ``X{min(m, 4),}``."""
    return "(?:" + _COUNTED.sub(lambda m: f"{{{min(int(m.group(1)), _GROUP_MIN_REPEAT)},}}", rule) + ")"


def _token_patterns() -> tuple[Pattern, ...]:
    """detect-secrets' token rules (and ours) in groups: one Arrow pass per group (with ``_loose`` rules),
    then one per exact rule on the cells that group kept, then Python on the cells each rule kept. RE2
    caps counted repeats at 1000, so larger bounds are opened in the prefilter."""
    rules = secrets.token_rules()
    groups = [rules[i:i + _RULES_PER_PASS] for i in range(0, len(rules), _RULES_PER_PASS)]
    def rule_prefilter(rule: str) -> str:
        return "(?:" + _LARGE_REPEAT.sub(r"{\1,}", rule) + ")"

    return tuple(Pattern("|".join(_loose(rule) for rule in group), None, finder=_token_finder(group),
                         parts=tuple(Pattern(rule_prefilter(rule), None, finder=_token_finder((rule,)))
                                     for rule in group))
                 for group in groups)


def _scheme(*schemes: str) -> Callable[[str], bool]:
    return lambda value: national_id_scheme(value, schemes) is not None


# US SSN columns are not in the list: us_ssn has its own detector, and a value that fails the SSN rules would
# otherwise be judged against every other scheme (a 9-digit run is often a valid Dutch BSN).
_ID_COLUMNS = re.compile(r"(?i)national|\bnin|nino|tax.?id|personal.?(?:id|code|number)|id.?(?:number|no|card)"
                         r"|passport|cpf|pesel|bsn|nhs|aadhaar|\bnir\b|insee|steuer|fiscal|\bdni|\bnie\b"
                         r"|hetu|\bcpr\b|personnummer|citizen|identity"
                         # ADR 0070: an acronym only as the whole name (not ``fin_year``, ``sin_theta``)
                         r"|^(?:sin|nas|tfn|rrn|frn|itin|nric|fin|mbi|tckn)(?:[ _-]?(?:no|nr|number|id))?$|tax.?file"
                         r"|social.?ins|resident.?reg|kimlik|medicare|rvnr|svnr|kvnr|versicherungs|versicherten"
                         r"|주민등록|외국인등록|ประชาชน")
# Words that name a national identifier in free text: they admit bare digit runs (a PESEL, an NHS number)
# that would be any number's look-alike without them; the value must still pass its scheme's check.
# ``NIE`` only as the acronym: ``nie`` is German for "never".
# A word may end in ``_`` (``tfn_no``, ``nhs_number``) and its parts be joined by ``_`` or nothing (``tax_file_number``,
# ``nationalId``): JSON keys and ``key=value`` logs in a cell write them so (redteam10n).
_ID_CONTEXT = re.compile(r"(?i)pesel|personnummer|\bpnr(?:\b|_)|aadhaa?r|\bnhs(?:\b|_)|hetu|henkilötunnus"
                         r"|\bnif(?:\b|_)|(?-i:\bNIE\b)|steuer-?id|\bidnr(?:\b|_)"
                         r"|steuer(?:liche )?identifikationsnummer"
                         r"|\bdni(?:\b|_)|\bbsn(?:\b|_)|burgerservice|\bnir(?:\b|_)|insee|\bcpf(?:\b|_)"
                         r"|national[ _]?(?:id|insurance)|(?:personal[ _]?)?identity[ _]?(?:code|number)"
                         r"|(?:\b|_)id[ _]?(?:code|number|no)\b|social[ _]?security"
                         # ADR 0070: AU TFN, CA SIN, KR RRN/FRN, TR kimlik, US ITIN, ZA/TH ID, SG NRIC/FIN, Medicare,
                         # DE RVNR/KVNR; ``SIN``, ``NAS`` and ``FIN`` only as acronyms (Spanish "sin", French "fin"),
                         # lower-case ``sin`` only as a key (``sin_no``, ``"sin":``).
                         # Few, short words: each costs the column's Arrow pass about 0.5 ms per 20k cells.
                         r"|\btfn(?:\b|_)|tax[ _]?file|(?-i:\b(?:SIN|NAS|FIN)(?:\b|_))|\bsin_(?:no|nr|num|number)\b"
                         r"|\"sin\" ?:|social[ _]?insurance|assurance[ _]?sociale"
                         r"|\b[rf]rn(?:\b|_)|resident[ _]?(?:registration|number)|주민등록번호|외국인등록번호|kimlik"
                         r"|\btckn(?:\b|_)|\bitin(?:\b|_)|\b(?:turkish|thai|african|rsa|sa|korean)[ _]?id\b|ประชาชน"
                         r"|\btnin\b"
                         r"|\bnric(?:\b|_)|medicare|\bmbi(?:\b|_)|versicherungsnummer|versichertennummer"
                         r"|\b[rsk]vnr(?:\b|_)|\begk\b")
_CONTEXT_BEFORE, _CONTEXT_AFTER = 40, 16  # characters: the word names the value next to it, not the whole cell


# Words that name another kind of number (ADR 0044: a word names the value next to it). Between a context word and
# the value (``passport photo order 632044329``, ``Medicare claim 7607581996``), or before a value whose context
# word follows it (``booking 995146178; passport required``), such a word names the value, not the context word.
OTHER_NUMBER = re.compile(r"(?i)(?:\b|_)(?:order|booking|invoice|receipt|ticket|tracking|shipment|sku|claim"
                          r"|transaction|confirmation|reservation|build|flight|item|product|parcel|article)s?(?:\b|_)")


def named_by(words: re.Pattern[str], text: str, start: int, end: int, before: int, after: int) -> bool:
    """One of ``words`` within ``before`` characters before the value or ``after`` after it, with no word of
    ``OTHER_NUMBER`` closer to the value or right before the word."""
    low = max(0, start - before)
    word = other = None
    for word in words.finditer(text, low, start):  # noqa: B007 - the last one, the closest
        pass
    for other in OTHER_NUMBER.finditer(text, low, start):  # noqa: B007
        pass
    # ``order ID number``, ``order_id_no``: the other word qualifies the context word, and names the value
    if word is not None and (other is None or (other.start() < word.start()
                                               and text[other.end():word.start()].strip(" _-"))):
        return True
    if other is not None:
        return False
    word = words.search(text, end, min(len(text), end + after))
    return word is not None and OTHER_NUMBER.search(text, end, word.start()) is None


def near_id_context(text: str, start: int, end: int) -> bool:
    """``clear_of_digits``, and a word of ``_ID_CONTEXT`` within a few words before or after the value
    (``named_by``)."""
    return clear_of_digits(text, start, end) and named_by(_ID_CONTEXT, text, start, end, _CONTEXT_BEFORE,
                                                          _CONTEXT_AFTER)


# Values in a scheme's own format: letters in the scheme's places (a PAN, a codice fiscale), its punctuation
# (a CPF's dots and dash), or the digits a word that names the scheme stands next to. Failing the scheme's
# check, such a value is still reported at low confidence (ADR 0052). Not one: a bare digit run, 8 digits and a
# letter, 6 digits, a sign and 4 characters (a HETU's shape) — as often an order number or a dated code.
_NATIONAL_OWN_FORMATS = (
    _p(r"\b[A-Z]{5}\d{4}[A-Z]\b", r"\b[A-Z]{5}\d{4}[A-Z]\b", _scheme("in.pan")),
    _p(r"\b\d{3}\.\d{3}\.\d{3}-\d{2}\b|\b\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}\b",
       r"\b(?:\d{3}\.\d{3}\.\d{3}-\d{2}|\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2})\b", _scheme("br.cpf", "br.cnpj"),
       bounded=True),
    _p(r"\b[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]\b", r"\b[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]\b",
       _scheme("it.codicefiscale")),
    # the prefilter is the context words (rarer than digit runs); the value's shape is checked in Python
    # the value may be glued to the word before it (``id code is030594W903B``): the context word
    # already says what it is
    # (ADR 0070) also a letter and 9 digits (a KVNR) or an MBI written bare
    _p(_ID_CONTEXT.pattern, r"(?<!\d)(?:\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]|(?:\d[ :-]?){8,12}\d)(?![\w])"
       r"|(?<![\w-])(?i:[A-Z]\d{9}|[1-9][A-Z][A-Z0-9]\d[A-Z][A-Z0-9]\d[A-Z]{2}\d\d)(?![\w-])",
       lambda v: national_id_scheme(v) is not None, bounded=True, boundary=near_id_context),
)


def _written_somewhere(text: str, start: int, end: int) -> bool:
    """A digit run (with separators) in some scheme's own layout, checked before the context words and the
    validators: ``ID number 1 2 3 4 5 6 7 8 9 0 1 2 3`` repeated cost 12 s per MB, every cut of every run tried
    against every scheme (a value with a letter is not judged here)."""
    value = text[start:end]
    return any(c.isalpha() for c in value) or any(layout.fullmatch(value) for layout in DIGIT_LAYOUTS)


# strict: the layout first (a cheap necessary condition of every scheme); the low tier keeps every grouping
_NATIONAL_OWN_FORMATS = (*_NATIONAL_OWN_FORMATS[:3], replace(
    _NATIONAL_OWN_FORMATS[3], boundary=lambda text, start, end: _written_somewhere(text, start, end)
    and near_id_context(text, start, end)))
_NATIONAL_CONTEXT_WEAK = replace(_NATIONAL_OWN_FORMATS[3], boundary=near_id_context, validate=lambda v: (
    _written_somewhere(v, 0, len(v)) and national_id_scheme(v) is not None))
# ADR 0070: formats no other number is written in, strict when their check passes: a Korean RRN/FRN (YYMMDD-
# then 7 digits), a Singapore NRIC/FIN, an Australian Medicare card (4-5-1), a German RVNR (8 digits, a letter,
# 3 digits), a US MBI written 4-3-4. A KVNR and a bare MBI count after a context word (``_NATIONAL_OWN_FORMATS[3]``),
# as do bare 3-3-3 groups (SIN, TFN; a Spanish mobile number too) and 11- or 13-digit runs, or as a column's values;
# an ITIN in its 3-2-4 grouping (as an SSN is), bare after a word only. One group: one loose prefilter in the
# column's pass, each shape's own on the few cells it keeps (ADR 0051).
_PERSON_SHAPES = (
    _p(r"\d{6}-[1-8]\d{6}", r"\b\d{6}-[1-8]\d{6}\b", _scheme("kr.rrn"), bounded=True),
    _p(r"[STFGM]\d{7}[A-Z]", r"\b[STFGM]\d{7}[A-Z]\b", _scheme("sg.nric"), bounded=True),
    _p(r"\d{4} \d{5} \d", r"\b[2-6]\d{3} \d{5} \d(?: [1-9])?\b", _scheme("au.medicare"), bounded=True),
    _p(r"\d{6} ?[A-Z] ?\d{3}", r"\b\d{2}( ?)\d{6}\1[A-Z]\1\d{3}\b", _scheme("de.rvnr"), bounded=True),
    _p(r"\d-[A-Za-z][A-Za-z0-9]\d-[A-Za-z]", r"\b[1-9][A-Z][A-Z0-9]\d-[A-Z][A-Z0-9]\d-[A-Z]{2}\d\d\b",
       _scheme("us.mbi"), bounded=True, flags=re.I),
    # an ITIN in the SSN's 3-2-4 grouping: area 9XX (never an SSN's) and the IRS's group ranges, as the us_ssn
    # detector takes an SSN's ranges (44 % of 9XX-GG-XXXX are valid ITINs; an invalid SSN is written otherwise)
    _p(r"9\d\d[ -]\d\d[ -]\d{4}", r"\b9\d\d([ -])\d\d\1\d{4}\b", lambda v: NATIONAL_IDS["us.itin"](v.replace(" ", "-")),
       bounded=True),
)
_PERSON_FORMATS = Pattern("|".join(p.prefilter for p in _PERSON_SHAPES), None, parts=_PERSON_SHAPES)
# Low confidence (ADR 0052): an RRN's birth date and century digit with a wrong or random tail (its own format,
# check failed).
_PERSON_WEAK = (
    _p(r"\b\d{6}-[1-8]\d{6}\b", r"\b\d{6}-[1-8]\d{6}\b", lambda v: kr_rrn_format(v) and not NATIONAL_IDS["kr.rrn"](v),
       bounded=True),
)


def _fails(check: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda value: not check(value)


_NATIONAL_BARE = _p(r"^\s*[0-9A-Za-z][0-9A-Za-z ./+-]{7,22}\s*$", r"^\s*[0-9A-Za-z][0-9A-Za-z ./+-]{7,22}\s*$",
                    lambda v: national_id_scheme(v.strip()) is not None)


def _evidence(value: str, classes: Callable[[str], frozenset[str]], member: Callable[[str, str], bool],
              universe: tuple[str, ...]) -> ColumnEvidence:
    return ColumnEvidence(re.compile(r"^\s*(?P<v>" + value + r")\s*$"), classes, member, universe)


# a scheme without a check digit (a date and a serial, a letter pattern) is no evidence on its own
_NATIONAL_VALUES = _evidence(r"[0-9A-Za-z .:/+-]{0,22}\d[0-9A-Za-z .:/+-]{0,22}",
                             lambda v: national_id_schemes(v) - UNCHECKED if 8 <= len(v) <= 23 else frozenset(),
                             lambda v, scheme: NATIONAL_IDS[scheme](v), tuple(set(NATIONAL_IDS) - UNCHECKED))


# Words that name the number next to them: a bare digit run after one may be that type.
_PHONE_CONTEXT = (r"(?i)\b(?:phone|tel|telephone|mobile|cell|fax|gsm|telefon|téléphone|portable|handy|whatsapp"
                  r"|cep|mobil)\b")  # Turkish: cep (telefonu), mobil
_SSN_CONTEXT = r"(?i)\b(?:ssn|social security(?: number| no\.?)?)\b"


def _phone_detector(regions: tuple[str, ...] = ()) -> Detector:
    """Phone numbers; a number without its country code is read as one of ``regions`` (the policy's
    ``phone_regions``), else of ``NATIONAL_REGIONS``. Regions the user names also admit a bare digit run that
    is a valid number there: a short list of the data's own regions makes validity selective (Turkey's plan
    takes 15 % of random 10-digit runs; some one of 28 regions nearly all)."""
    possible = partial(valid_phone, regions=regions or NATIONAL_REGIONS)
    valid = partial(valid_bare_phone, regions=regions or NATIONAL_REGIONS)
    bare = (_p(r"\b\d{8,12}\b", r"\b\d{8,12}\b", valid, bounded=True, boundary=phone_bounded),) if regions else ()
    return Detector("phone", (
        _p(r"(?:^|[^\w.+-])(?:\+|00)[1-9]", _PHONE_INTL, possible, bounded=True, boundary=phone_bounded),
        _p(r"\d{3}(?:\)[ .-]?|[ .-])\d{3}[ .-]\d{4}", _PHONE_NANP, possible, bounded=True, boundary=phone_bounded),
        _p(r"\(0\d{2,5}\)|\b0[ -]?\(\d{3}\)|\b0[ -]\d{3}[ -]\d{3}|\b0\d{1,5}[ /-]\d{4}|\b0\d{2,4} \d{3,4} \d\d"
           r"|\b0\d(?:[ .]\d\d){3}|\b0[1-9]\d{8}",
           _PHONE_NATIONAL, possible, bounded=True, boundary=phone_bounded),
        # without a trunk prefix or country code: the number must be valid (an assigned range)
        _p(r"\b\d{3}[ .-]\d{3}[ .-]\d{2}[ .-]\d{2}\b", r"\b\d{3}([ .-])\d{3}\1\d{2}\1\d{2}\b", valid,
           bounded=True, boundary=phone_bounded),
        _p(r"\b\d{1,3}-\d{3}-\d{3}-\d{4}\b", r"\b\d{1,3}-\d{3}-\d{3}-\d{4}\b", valid_international_phone,
           bounded=True, boundary=phone_bounded),
        # a bare digit run right after a word that names a phone (as Presidio's context words raise
        # a weak match); it must still be a valid number of one of the regions tried
        _p(_PHONE_CONTEXT, _PHONE_CONTEXT + r"[^\d\n]{0,15}?(?P<v>\d{9,12})\b", valid, bounded=True, flags=re.I),
        *bare,
    ), column_hint=re.compile(r"(?i)phone|mobile|\btel|fax|cell"), hinted=(
        _p(r"^\+?\d{10,15}$", r"^\+?\d{10,15}$", possible),
    ))


def _detectors() -> dict[str, Detector]:
    from mlgate.gates.data import national_documents  # it builds on Pattern: imported once this module is

    return {
        "email": Detector("email", (
            _p(r"[A-Za-z0-9._%+-]@[A-Za-z0-9-]+\.[A-Za-z]",
               r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b"),
        )),
        "phone": _phone_detector(),
        "us_ssn": Detector("us_ssn", (
            _p(r"\d{3}[ .-]\d{2}[ .-]\d{4}", r"\b\d{3}([ .-])\d{2}\1\d{4}\b", valid_ssn, bounded=True),
            # one of the two dashes left out (078-051121); not 5-4, which is how a US ZIP+4 code is written
            _p(r"\b\d{3}-\d{6}\b", r"\b\d{3}-\d{6}\b", lambda v: valid_ssn(v.replace("-", "")), bounded=True),
            _p(_SSN_CONTEXT, _SSN_CONTEXT + r"[^\d\n]{0,15}?(?P<v>\d{9})\b", valid_ssn, bounded=True, flags=re.I),
        ), column_hint=re.compile(r"(?i)ssn|social.?sec"), hinted=(
            _p(r"^\d{9}$", r"^\d{9}$", valid_ssn),
        )),
        "credit_card": Detector("credit_card", (
            _p(r"\b[1-8]\d{3}(?:[ -]?\d){9,15}\b",
               r"\b(?:\d{4}[ -]\d{4}(?:[ -]\d{4}){1,2}[ -]\d{1,4}"   # 4-4-4-4, 4-4-4-1, 4-4-4-4-3
               r"|\d{4}[ -]\d{6}[ -]\d{4,5}"                         # Amex 4-6-5, Diners 4-6-4
               r"|\d{13,19})\b", valid_card, bounded=True, boundary=not_in_iban),
        )),
        "iban": Detector("iban", (
            _p(r"\b[A-Z]{2}\d{2}[ -]?[A-Z0-9]{4}",
               r"\b[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?:([ -])[A-Z0-9]{4})(?:\1[A-Z0-9]{4}){1,6}(?:\1[A-Z0-9]{1,3})?)\b",
               valid_iban, bounded=True),
        )),
        "ip_address": Detector("ip_address", (
            _p(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d", r"\b(?:\d{1,3}\.){3}\d{1,3}\b", valid_ipv4, bounded=True),
            _p(r":[0-9A-Fa-f]{0,4}:",
               r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:=]|\.\d)",
               valid_ipv6),
        )),
        "national_id": Detector("national_id", (
            _p(r"(?i)\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", r"\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
               _scheme("gb.nino"), flags=re.I),
            *_NATIONAL_OWN_FORMATS[:3],
            _p(r"(?i)\b\d{7,8}-?[A-Z]\b|\b[XYZ]-?\d{7}-?[A-Z]\b", r"\b(?:\d{7,8}-?[A-Z]|[XYZ]-?\d{7}-?[A-Z])\b",
               _scheme("es.dni", "es.nie"), bounded=True, flags=re.I, boundary=not_in_code),
            _p(r"\b\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]\b", r"\b\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]\b", _scheme("fi.hetu"),
               bounded=True),
            _p(r"\b(?:\d{2})?\d{6}[-+]\d{4}\b", r"\b(?:\d{2})?\d{6}[-+]\d{4}\b", _scheme("se.personnummer", "dk.cpr"),
               bounded=True),
            _p(r"\b[2-9]\d{3}[ :-]\d{4}[ :-]\d{4}\b", r"\b[2-9]\d{3}([ :-])\d{4}\1\d{4}\b", _scheme("in.aadhaar"),
               bounded=True, boundary=not_in_address),
            # the prefilter is the context words (rarer than digit runs); the value's shape is checked in Python
            # the value may be glued to the word before it (``id code is030594W903B``): the context word
            # already says what it is
            _NATIONAL_OWN_FORMATS[3],
            _PERSON_FORMATS,
            *national_documents.DOCUMENTS,  # passports, identity cards, driving licences, voter IDs (ADR 0071)
        ), column_hint=_ID_COLUMNS, hinted=(_NATIONAL_BARE,), by_values=_NATIONAL_VALUES,
            weak=tuple(replace(p, validate=_fails(p.validate))
                       for p in (*_NATIONAL_OWN_FORMATS[:3], _NATIONAL_CONTEXT_WEAK)) + _PERSON_WEAK
            + national_documents.DOCUMENTS_LOW, hinted_by=national_documents.COLUMNS),
        # No free-text shape without a named-entity model: a column named for names, whose cells read as one.
        "person_name": Detector("person_name", (), column_hint=entities.NAME_COLUMNS, hinted=(
            Pattern(r"^\s*[^\d@/:]+$", re.compile(entities.NAME_VALUE)),
        )),
        "postal_address": Detector("postal_address", (
            Pattern(entities.STREET_PREFILTER, entities.STREET, bounded=True, boundary=entities.starts_clear),
        ), column_hint=entities.ADDRESS_COLUMNS, hinted=(
            Pattern(r"\d", re.compile(r"^.*(?:" + entities.ADDRESS_VALUE + r").*$", re.S)),
        )),
        "date_of_birth": Detector("date_of_birth", (
            Pattern(entities.DOB_CONTEXT, entities.DOB_IN_TEXT, entities.valid_birth_date),
        ), column_hint=entities.DOB_COLUMNS, hinted=(
            _p(r"^\s*\d|^\s*[A-Za-z]{3}", entities.DATE_VALUE, entities.valid_birth_date),
        )),
        "secret": Detector("secret", (
            *_token_patterns(),
            _p(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY", r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----"
                                                    r"(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----)?",
               secrets.valid_private_key),
            _p(r"eyJ[A-Za-z0-9_-]+\.eyJ", r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}(?:\.[A-Za-z0-9_-]*)?",
               valid_jwt),
            Pattern(secrets.ASSIGNMENT_PREFILTER, None, finder=secrets.credential_spans),
        ), column_hint=re.compile(r"(?i)" + secrets.CREDENTIAL_NAMES), hinted=(
            _p(r"^\S{16,}$", r"^\S{16,}$", high_entropy),
        ), union_prefilter=False),
    }


@cache
def detectors(phone_regions: tuple[str, ...] = ()) -> dict[str, Detector]:
    """Built on first use: detect-secrets' rules cost a second to import, which a policy check or the CLI's
    --help should not pay. ``phone_regions``: the policy's, which only the phone detector reads."""
    if phone_regions:
        return {**detectors(), "phone": _phone_detector(phone_regions)}
    built = _detectors()
    if tuple(built) != PII_TYPES:
        raise RuntimeError(f"detector types {tuple(built)} differ from PII_TYPES {PII_TYPES}")
    return built


def __getattr__(name: str):
    if name == "DETECTORS":  # the module attribute callers used before detectors() existed
        return detectors()
    raise AttributeError(name)


def _candidates(values: pa.Array, prefilter: str) -> pa.Array:
    return pc.indices_nonzero(pc.fill_null(pc.match_substring_regex(values, prefilter), False))


def judged_by_values(column: str) -> bool:
    """A column whose name says which number it holds (ssn, phone, pesel) is judged by that type's rules alone, not
    by the vote of ``ColumnEvidence`` (ADR 0070: a lone value failing the SSN rules in a column named ``ssn`` is
    no Canadian SIN)."""
    return not any(d.named(column) for d in detectors().values() if d.by_values or d.type in ("us_ssn", "phone"))


def find_spans(values: pa.Array, detector: Detector, column: str) -> dict[int, list[Span]]:
    """Row index → validated spans of ``detector``'s type in a string array.

    One Arrow pass over the whole column with the union of the type's prefilters; each pattern's own
    prefilter then runs on that (usually small) subset only.
    """
    patterns = detector.patterns_for(column)
    found: dict[int, list[Span]] = {}
    if detector.by_values is not None and judged_by_values(column):
        for row, span in _by_values(values, detector.by_values).items():
            found[row] = [span]
    if not patterns:  # person_name outside a column named for names
        return found
    if detector.union_prefilter:
        rows = _candidates(values, "|".join(f"(?:{p.prefilter})" for p in patterns))
        if not len(rows):
            return found
        subset = values.take(rows)
    else:
        rows, subset = pa.array(range(len(values)), pa.int64()), values
    for pattern in patterns:
        pattern_rows, texts = rows, subset
        if len(patterns) > 1 or not detector.union_prefilter:
            picked = _candidates(subset, pattern.prefilter)
            pattern_rows, texts = rows.take(picked), subset.take(picked)
        for part in pattern.parts or (pattern,):
            part_rows, part_texts = pattern_rows, texts
            if pattern.parts:
                picked = _candidates(texts, part.prefilter)
                part_rows, part_texts = pattern_rows.take(picked), texts.take(picked)
            part.add_spans(part_rows.to_pylist(), part_texts.to_pylist(), found)
    return {row: _outermost(spans) for row, spans in found.items()}


def _shape(value: str) -> str:
    return value.translate(_SHAPE)


_SHAPE = str.maketrans(string.digits + string.ascii_letters, "9" * 10 + "a" * 26 + "A" * 26)


@cache
def _chance(evidence: ColumnEvidence, cls: str, shape: str) -> float:
    """How often a random value of ``shape`` (same digits, letters and separators) is in ``cls``: what the
    class's check is worth as evidence, measured on the validator itself rather than kept in a table."""
    rng = random.Random(f"{cls}:{shape}")  # noqa: S311 - a fixed sample of the null model, not a secret
    pools = {"9": string.digits, "a": string.ascii_lowercase, "A": string.ascii_uppercase}
    hits = sum(evidence.member("".join(rng.choice(pools[c]) if c in pools else c for c in shape), cls)
               for _ in range(_CHANCE_TRIALS))
    return hits / _CHANCE_TRIALS


def _tail(n: int, k: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return min(1.0, sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1)))


def _by_values(values: pa.Array, evidence: ColumnEvidence) -> dict[int, Span]:
    """Whole-cell values of the one class that covers ``EVIDENCE_SHARE`` of the column's non-empty cells
    (voted on a spread sample of the candidates); nothing when no class does."""
    rows = _candidates(values, evidence.prefilter)
    if not len(rows):
        return {}
    nonempty = filled_cells(values)
    if len(rows) < EVIDENCE_SHARE * nonempty:
        return {}
    cells = {row: match.span("v") + (match.group("v"),) for row, text in
             zip(rows.to_pylist(), values.take(rows).to_pylist(), strict=True)
             if (match := evidence.regex.match(text))}
    sample = [value for *_, value in list(cells.values())[::evidence_stride(len(cells))]]
    best = evidence_class(evidence, sample, len(cells), nonempty)
    if best is None:
        return {}
    return {row: (start, end) for row, (start, end, value) in cells.items() if evidence.member(value, best)}


# A cell that says "no value" (blank, ``n/a``, ``unknown``, ``-``) takes no part in a column's vote: a column of
# valid IDs with 6 % ``n/a`` fell below ``EVIDENCE_SHARE`` and passed whole (redteam10n).
_PLACEHOLDER = (r"(?i)^\s*(?:n/?a|null|none|nil|nan|unknown|tbd|missing|not (?:available|applicable)"
                r"|[-?./_*–—]*)\s*$")


def filled_cells(values: pa.Array) -> int:
    """Cells of ``values`` that hold a value: not null, not blank, no placeholder (``_PLACEHOLDER``)."""
    return pc.sum(pc.invert(pc.match_substring_regex(values, _PLACEHOLDER))).as_py() or 0


def evidence_stride(cells: int) -> int:
    """The vote is taken on every ``evidence_stride``-th matching cell, in row order."""
    return max(1, cells // _EVIDENCE_SAMPLE)


Traits = tuple[tuple[str, ...], str]  # what the vote reads of one value: its classes and its shape


def evidence_traits(evidence: ColumnEvidence, value: str) -> Traits:
    """The classes and the shape of one sampled value: all the vote needs, and not the value itself (a
    Spark partition returns these, never the values)."""
    return tuple(sorted(evidence.classes(value))), _shape(value)


def evidence_class(evidence: ColumnEvidence, sample: list[str], cells: int, nonempty: int) -> str | None:
    """The class ``sample`` (every ``evidence_stride(cells)``-th of a column's ``cells`` matching values out
    of ``nonempty`` cells) votes for, or None; a separate step so a column read in batches is judged alike."""
    return traits_class(evidence, [evidence_traits(evidence, value) for value in sample], cells, nonempty)


def traits_class(evidence: ColumnEvidence, sample: list[Traits], cells: int, nonempty: int) -> str | None:
    """``evidence_class`` of a sample given as its values' ``evidence_traits``."""
    votes = Counter(cls for classes, _ in sample for cls in classes)
    if not votes:
        return None
    shares = {cls: count for cls, count in votes.items()
              if count * cells >= EVIDENCE_SHARE * nonempty * len(sample)}
    shapes = [shape for _, shape in sample]
    # every class that random values of these shapes can fall in is a test taken (Bonferroni): a bare
    # 10-digit number is valid in some region's phone plan nearly always, in Turkey's 1 time in 10
    tests = sum(any(_chance(evidence, cls, shape) for shape in set(shapes)) for cls in evidence.universe)
    tails = {cls: tests * _tail(len(sample), count, sum(_chance(evidence, cls, shape) for shape in shapes)
                                / len(sample)) for cls, count in shares.items()}
    best = min(tails, key=tails.get, default=None)
    return None if best is None or tails[best] > EVIDENCE_CHANCE else best


def _outermost(spans: list[Span]) -> list[Span]:
    """Spans in order, overlapping ones merged (two shapes of one type matching one value)."""
    if len(spans) == 1:
        return spans
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
