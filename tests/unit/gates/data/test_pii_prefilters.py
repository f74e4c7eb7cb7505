"""ADR 0051: the speed-ups of ``data.pii`` change no verdict.

A reject-only prefilter must never turn away a value the library accepts; a regex given a leading lookahead
must match exactly what it matched without one. Every case is generated here (fixed seeds), many thousands of
them, with the edge values of each rule drawn on purpose.
"""

import random
import re
import string

import pytest
from stdnum.us import ssn as stdnum_ssn

from mlgate.gates.data import pii_detectors, secrets, validators
from mlgate.gates.data.validators import ssn_may_pass, valid_ssn

pytestmark = pytest.mark.unit


def _ssn_candidates(rng: random.Random, count: int) -> list[str]:
    """Nine-digit strings, a third of them forced onto a rejected area, group or serial (and stdnum's published
    example numbers), plus strings that are not nine ASCII digits at all."""
    edges = ("000", "666", "900", "987", "999", "078", "219", "123")
    values = []
    for i in range(count):
        digits = "".join(rng.choice(string.digits) for _ in range(9))
        if i % 3 == 0:
            area, group, serial = rng.choice(edges), rng.choice(("00", "05", "09", "45")), \
                rng.choice(("0000", "1120", "9999", "6789", "0001"))
            digits = rng.choice((area + digits[3:], digits[:3] + group + digits[5:], digits[:5] + serial,
                                 area + group + serial))
        values.append(digits)
    values += ["", "12345678", "1234567890", "12345678a", "١٢٣٤٥٦٧٨٩", "123 45 6789", "123-45-6789"]
    return values


def test_the_ssn_prefilter_never_rejects_what_stdnum_accepts():
    values = _ssn_candidates(random.Random(51), 60_000)
    wrongly_rejected = [v for v in values if not ssn_may_pass(v) and stdnum_ssn.is_valid(v)]
    assert wrongly_rejected == []
    rejected = sum(not ssn_may_pass(v) for v in values)
    assert rejected > len(values) // 5  # it does turn away the forced edge values, so it saves library calls
    assert not any(ssn_may_pass(v) or stdnum_ssn.is_valid(v)
               for v in ("000123456", "666123456", "912345678", "123001234", "123450000"))


def test_valid_ssn_keeps_its_rule_one_separator_throughout_and_stdnum_on_the_digits():
    rng = random.Random(52)
    alphabet = string.digits * 3 + " .-_a"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.choice((9, 10, 11, 12)))) for _ in range(20_000)]
    texts += [f"{a}{s}{b}{t}{c}" for a, b, c in (("536", "22", "8726"), ("078", "05", "1120"), ("912", "34", "5678"))
              for s in " .-" for t in " .-"]
    texts += ["５３６-２２-８７２６", "536-22-8726"]  # full-width digits take the general path
    for text in texts:
        separators = set(re.sub(r"\d", "", text))
        expected = not (len(separators) > 1 or (separators and len(text) != 11)) \
            and stdnum_ssn.is_valid(re.sub(r"\D", "", text))
        assert valid_ssn(text) == expected, text
    assert valid_ssn("536-22-8726") and not valid_ssn("536-22.8726") and not valid_ssn("078-05-1120")


def _without_lookahead(regex: re.Pattern[str], lookahead: str) -> re.Pattern[str]:
    """The same regex with its speed-up prefix taken out (the form it had before ADR 0051)."""
    assert lookahead in regex.pattern
    return re.compile(regex.pattern.replace(lookahead, "", 1), regex.flags)


def _generated(rng: random.Random, alphabet: str, words: tuple[str, ...], count: int) -> list[str]:
    texts = []
    for _ in range(count):
        parts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))) for _ in range(rng.randint(1, 3))]
        for _ in range(rng.randint(0, 2)):
            word = rng.choice(words)
            word = "".join(c.upper() if rng.random() < 0.3 else c for c in word)
            parts.insert(rng.randint(0, len(parts)), word)
        texts.append("".join(parts))
    return texts + list(words)


def _spans(regex: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    return [m.span() for m in regex.finditer(text)]


def test_the_placeholder_lookahead_changes_no_verdict():
    fast = secrets._PLACEHOLDER_WORDS
    plain = re.compile(fast.pattern.replace("(?:^|(?=[esdpcfi_yrx#*.ogv]))(?:", "", 1)[:-1], fast.flags)
    assert plain.pattern != fast.pattern
    words = ("example", "sample", "dummy", "placeholder", "changeme", "change_me", "fake", "insert", "_here",
             "your_api", "your-secret", "yourkey", "redacted", "xxxx", "####", "***", "...", "process.env",
             "os.environ", "getenv", "vault:", "null", "none", "undefined", "string", "${DB}", "{{ v }}", "<value>",
             "%(name)s", "$(cmd)", "$VAR", "\u017fample", "\u212aey", "\u0130nsert", "exampl", "_herex")
    alphabet = string.ascii_letters + string.digits + "_-.#*${}<>()%:/ \u017f\u212a\u0130é"
    texts = _generated(random.Random(53), alphabet, words, 40_000)
    disagree = [t for t in texts if (plain.search(t) is None) != (fast.search(t) is None)]
    assert disagree == []
    assert sum(fast.search(t) is not None for t in texts) > len(texts) // 4


@pytest.mark.parametrize(("regex", "lookahead", "alphabet", "words"), [
    (pii_detectors.detectors()["phone"].patterns[2].regex, "(?=[(0])", "0123456789 ()-./x",
     ("01234 567890", "(05678) 123456", "0 532 123 45 67", "090-1234-5678", "01 23 45 67 89", "0123456789",
      "0 (532) 123 45 67", "0113 496 0123 x 12")),
    (pii_detectors._IBAN_HEAD, "(?=[A-Z])", "ABDEGRZ0123456789 -_a", ("DE89 ", "GB82 WEST ", "FR76-3000-")),
], ids=["national phone", "iban head"])
def test_a_leading_lookahead_changes_no_match(regex, lookahead, alphabet, words):
    plain = _without_lookahead(regex, lookahead)
    texts = _generated(random.Random(54), alphabet, words, 30_000)
    assert [t for t in texts if _spans(plain, t) != _spans(regex, t)] == []
    assert sum(bool(_spans(regex, t)) for t in texts) > 1000  # the texts do exercise the regex


def test_the_digits_of_a_phone_number_stop_at_its_extension():
    assert validators._digits("+1 (555) 123-4567 ext. 89") == "15551234567"
    assert validators._digits("030 1234567 x 12") == "0301234567"
    assert validators._digits("0301234567") == "0301234567"


def test_the_card_issuer_lookup_by_length_names_the_first_issuer_of_the_table():
    rng = random.Random(55)
    edges = [str(v) for _, ranges in validators._ISSUERS.values() for _, low, high in ranges
             for v in (low, high, low - 1, high + 1)]
    for _ in range(30_000):
        head = rng.choice(edges) if rng.random() < 0.7 else ""
        digits = (head + "".join(rng.choice(string.digits) for _ in range(20)))[:rng.randint(11, 20)]
        expected = next((issuer for issuer, (lengths, ranges) in validators._ISSUERS.items()
                         if len(digits) in lengths and any(low <= int(digits[:n]) <= high for n, low, high in ranges)),
                        None)
        assert validators.card_issuer(digits) == expected, digits
    assert validators.card_issuer("4111111111111111") == "visa" and validators.card_issuer("9111111111111111") is None
