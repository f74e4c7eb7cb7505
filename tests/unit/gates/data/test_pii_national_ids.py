"""data.pii national_id: the person numbers of ADR 0070. Every case is generated here from the scheme's published
rule (fixed seeds): valid numbers, their one-digit-off twins, other layouts, random look-alikes. For the schemes
python-stdnum holds, stdnum builds the check digits; for the hand-written rules the test builds them itself."""

import random
import string
from datetime import date, timedelta

import pyarrow as pa
import pytest
from faker import Faker
from stdnum import luhn
from stdnum.kr import rrn
from stdnum.th import pin
from stdnum.tr import tckimlik

from mlgate.gates.data.pii import scan, scan_low
from mlgate.gates.data.pii_detectors import PII_TYPES
from mlgate.gates.data.validators import NATIONAL_IDS, UNCHECKED

pytestmark = pytest.mark.unit

rng = random.Random(70)


def _digits(n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _birth() -> date:
    return date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 80))


# ---- generators, one per scheme

def tfn() -> str:
    while True:  # a body some last digit completes (weights 1 4 3 7 5 8 6 9 10, mod 11)
        body = str(rng.randint(1, 9)) + _digits(7)
        last = [d for d in string.digits if sum(w * int(c) for w, c in zip((1, 4, 3, 7, 5, 8, 6, 9, 10), body + d,
                                                                           strict=True)) % 11 == 0]
        if last:
            return body + last[0]


def sin() -> str:
    body = rng.choice("1234567") + _digits(7)
    return body + luhn.calc_check_digit(body)


def kr_rrn(foreigner: bool = False) -> str:
    born = _birth()
    sex = rng.choice("56" if foreigner else "12") if born.year < 2000 else rng.choice("78" if foreigner else "34")
    body = born.strftime("%y%m%d") + sex + f"{rng.randint(0, 96):02d}" + _digits(3)
    return body + rrn.calc_check_digit(body)


def tckn() -> str:
    body = str(rng.randint(1, 9)) + _digits(8)
    return body + tckimlik.calc_check_digits(body)


def za_id() -> str:
    body = _birth().strftime("%y%m%d") + _digits(4) + rng.choice("012") + "8"  # citizen, resident, refugee
    return body + luhn.calc_check_digit(body)


def th_pin() -> str:
    body = rng.choice("12345678") + str(rng.randint(10, 96)) + _digits(9)
    return body + pin.calc_check_digit(body)


def sg_nric() -> str:
    """Check letter: digits weighted 2 7 6 5 4 3 2, +4 for T/G, +3 for M, mod 11, in the prefix's table."""
    prefix, digits = rng.choice("STFGM"), _digits(7)
    total = sum(w * int(d) for w, d in zip((2, 7, 6, 5, 4, 3, 2), digits, strict=True))
    total += {"T": 4, "G": 4, "M": 3}.get(prefix, 0)
    table = {"S": "JZIHGFEDCBA", "T": "JZIHGFEDCBA", "F": "XWUTRQPNMLK", "G": "XWUTRQPNMLK", "M": "XWUTRQPNJLK"}
    return prefix + digits + table[prefix][total % 11]


def medicare() -> str:
    """First digit 2-6; 9th digit = first eight weighted 1 3 7 9 1 3 7 9 mod 10; 10th the issue number."""
    body = rng.choice("23456") + _digits(7)
    check = sum(w * int(d) for w, d in zip((1, 3, 7, 9, 1, 3, 7, 9), body, strict=True)) % 10
    return f"{body}{check}{rng.randint(1, 9)}"


def _cross(n: int) -> int:
    return sum(int(c) for c in str(n))


def rvnr() -> str:
    """Area, DDMMYY, initial, serial, check: the letter as two digits, weights 2 1 2 5 7 1 2 1 2 1 2 1, cross sums."""
    head = f"{rng.randint(2, 89):02d}" + _birth().strftime("%d%m%y")
    letter, serial = rng.choice(string.ascii_uppercase), f"{rng.randint(0, 99):02d}"
    digits = head + f"{ord(letter) - 64:02d}" + serial
    check = sum(_cross(w * int(d)) for w, d in zip((2, 1, 2, 5, 7, 1, 2, 1, 2, 1, 2, 1), digits, strict=True)) % 10
    return f"{head}{letter}{serial}{check}"


def kvnr() -> str:
    """A letter, eight digits, check: the letter as two digits, weights 1 2 1 2 …, cross sums, mod 10."""
    letter, body = rng.choice(string.ascii_uppercase), _digits(8)
    digits = f"{ord(letter) - 64:02d}" + body
    return letter + body + str(sum(_cross((1 + i % 2) * int(d)) for i, d in enumerate(digits)) % 10)


_MBI_LETTERS = "ACDEFGHJKMNPQRTUVWXY"  # no S L O I B Z


def mbi() -> str:
    letter, either = (lambda: rng.choice(_MBI_LETTERS)), (lambda: rng.choice(_MBI_LETTERS + string.digits))
    d = lambda: rng.choice(string.digits)  # noqa: E731
    return (rng.choice("123456789") + letter() + either() + d() + letter() + either() + d() + letter() + letter()
            + d() + d())


def itin() -> str:
    group = rng.choice([*range(50, 66), *range(70, 89), *range(90, 93), *range(94, 100)])
    return f"9{_digits(2)}-{group:02d}-{_digits(4)}"


CHECKED = {"au.tfn": tfn, "ca.sin": sin, "kr.rrn": kr_rrn, "tr.tckimlik": tckn, "za.idnr": za_id, "th.pin": th_pin,
           "sg.nric": sg_nric, "au.medicare": medicare, "de.rvnr": rvnr, "de.kvnr": kvnr}


# where the check digit is (sg.nric: a digit, whose weight changes the check letter)
CHECK_AT = {"au.medicare": 8, "sg.nric": 1}


def off_by_one(value: str, index: int = -1) -> str:
    """``value`` with the digit at ``index`` (the check digit by default) changed."""
    index %= len(value)
    return value[:index] + str((int(value[index]) + rng.randint(1, 9)) % 10) + value[index + 1:]


def tiers(text: str, column: str = "notes") -> tuple[set[str], set[str]]:
    columns = {column: pa.array([text], pa.large_string())}
    hits = scan(columns, PII_TYPES)
    return set(hits[column]), set(scan_low(columns, PII_TYPES, hits).get(column, {}))


def column_found(values: list[str], name: str = "c") -> int:
    hits = scan({name: pa.array(values, pa.large_string())}, ("national_id",))
    return len(hits[name].get("national_id", ()))


# ---- the validators

@pytest.mark.parametrize("scheme", sorted(CHECKED))
def test_generated_numbers_pass_their_scheme_and_their_twins_fail_it(scheme):
    for _ in range(40):
        value = CHECKED[scheme]()
        assert NATIONAL_IDS[scheme](value), value
        assert not NATIONAL_IDS[scheme](off_by_one(value, CHECK_AT.get(scheme, -1))), value


def test_the_schemes_without_a_check_digit_are_unchecked():
    assert {"us.itin", "us.mbi"} <= UNCHECKED
    assert not {"au.tfn", "ca.sin", "kr.rrn", "sg.nric", "de.kvnr", "de.rvnr"} & UNCHECKED


def test_mbi_and_itin_follow_their_character_classes_and_groups():
    for _ in range(40):
        value = mbi()
        assert NATIONAL_IDS["us.mbi"](value) and NATIONAL_IDS["us.mbi"](f"{value[:4]}-{value[4:7]}-{value[7:]}")
        for index in (1, 4, 7, 8):  # a letter place given a forbidden letter
            assert not NATIONAL_IDS["us.mbi"](value[:index] + rng.choice("SLOIBZ") + value[index + 1:])
        assert not NATIONAL_IDS["us.mbi"]("0" + value[1:])
        assert NATIONAL_IDS["us.itin"](itin())
    for group in ("00", "49", "66", "69", "89", "93"):
        assert not NATIONAL_IDS["us.itin"](f"912-{group}-3456")
    assert not NATIONAL_IDS["us.itin"]("812-70-3456")


def test_a_korean_number_of_someone_born_in_the_1800s_is_none():
    body = "051102" + "9" + _digits(5)
    assert rrn.is_valid(body + rrn.calc_check_digit(body))  # stdnum takes it: born 1805
    assert not NATIONAL_IDS["kr.rrn"](body + rrn.calc_check_digit(body))


def test_a_thai_pin_of_no_province_is_none():
    for province in ("00", "05", "97", "98", "99"):
        body = "1" + province + _digits(9)
        assert not NATIONAL_IDS["th.pin"](body + pin.calc_check_digit(body))


def test_a_south_african_number_of_no_citizenship_status_is_none():
    for status in "3456789":
        body = _birth().strftime("%y%m%d") + _digits(4) + status + "8"
        assert not NATIONAL_IDS["za.idnr"](body + luhn.calc_check_digit(body))


def test_a_number_in_another_schemes_grouping_is_not_the_scheme():
    value = th_pin()
    assert NATIONAL_IDS["th.pin"](f"{value[0]}-{value[1:5]}-{value[5:10]}-{value[10:12]}-{value[12]}")
    assert not NATIONAL_IDS["th.pin"](f"{value[:3]}-{value[3:5]}-{value[5:11]}-{value[11:]}")
    value = sin()
    assert NATIONAL_IDS["ca.sin"](f"{value[:3]}-{value[3:6]}-{value[6:]}")
    assert not NATIONAL_IDS["ca.sin"](f"{value[:3]}-{value[3:6]} {value[6:]}")  # one separator throughout


def test_a_medicare_reference_number_glued_to_the_card_number_is_not_one():
    value = medicare()
    assert NATIONAL_IDS["au.medicare"](f"{value[:4]} {value[4:9]} {value[9]} 1")
    assert not NATIONAL_IDS["au.medicare"](value + "1")


# ---- free text

OWN_FORMAT = {
    "kr.rrn": lambda v: f"{v[:6]}-{v[6:]}",
    "sg.nric": lambda v: v,
    "au.medicare": lambda v: f"{v[:4]} {v[4:9]} {v[9]}",
    "de.rvnr": lambda v: v,
}


@pytest.mark.parametrize("scheme", sorted(OWN_FORMAT))
def test_a_valid_number_in_its_own_format_is_found_in_free_text(scheme):
    for _ in range(10):
        assert "national_id" in tiers(f"Kunde {OWN_FORMAT[scheme](CHECKED[scheme]())} hat angerufen")[0]


@pytest.mark.parametrize("scheme", sorted(OWN_FORMAT))
def test_its_twin_with_a_wrong_check_is_not_a_full_finding(scheme):
    for _ in range(10):
        value = CHECKED[scheme]()
        twin = off_by_one(value, CHECK_AT.get(scheme, -1))
        assert "national_id" not in tiers(f"Kunde {OWN_FORMAT[scheme](twin)} hat angerufen")[0]


def test_an_mbi_written_4_3_4_is_found_and_one_with_a_forbidden_letter_is_not():
    value = mbi()
    assert "national_id" in tiers(f"patient {value[:4]}-{value[4:7]}-{value[7:]} seen")[0]
    bad = value[:1] + "S" + value[2:]
    assert "national_id" not in tiers(f"patient {bad[:4]}-{bad[4:7]}-{bad[7:]} seen")[0]


CONTEXT = [("au.tfn", "Tax file number", tfn), ("au.tfn", "TFN", tfn), ("ca.sin", "SIN", sin),
           ("ca.sin", "Numéro d'assurance sociale", sin), ("kr.rrn", "주민등록번호", kr_rrn), ("kr.rrn", "RRN", kr_rrn),
           ("kr.rrn", "FRN", lambda: kr_rrn(foreigner=True)), ("tr.tckimlik", "T.C. Kimlik No", tckn),
           ("tr.tckimlik", "TCKN", tckn), ("za.idnr", "SA ID", za_id), ("za.idnr", "South African ID", za_id),
           ("th.pin", "เลขประจำตัวประชาชน", th_pin), ("th.pin", "Thai ID", th_pin), ("de.kvnr", "KVNR", kvnr),
           ("de.kvnr", "Krankenversichertennummer", kvnr), ("de.rvnr", "Rentenversicherungsnummer", rvnr),
           ("us.mbi", "MBI", mbi), ("us.mbi", "Medicare ID", mbi), ("sg.nric", "NRIC", sg_nric)]


@pytest.mark.parametrize(("scheme", "word", "make"), CONTEXT, ids=[f"{s}:{w}" for s, w, _ in CONTEXT])
def test_a_bare_number_after_a_word_naming_its_scheme_is_found(scheme, word, make):
    value = make()
    assert NATIONAL_IDS[scheme](value)
    assert "national_id" in tiers(f"{word}: {value}")[0]


def test_an_itin_in_its_grouping_is_found_as_an_ssn_is_and_bare_only_after_its_word():
    """9XX-GG-XXXX in the IRS's groups is an ITIN wherever it stands, as the us_ssn detector takes an SSN's
    ranges; nine bare digits are one only after the word (ADR 0070). Outside the groups it is neither."""
    value = itin()
    dashed = value if "-" in value else f"{value[:3]}-{value[3:5]}-{value[5:]}"
    found, _ = tiers(f"ref {dashed} ok")
    assert "national_id" in found and "us_ssn" not in found  # an SSN never has area 9xx
    bare = dashed.replace("-", "")
    assert "national_id" in tiers(f"ITIN: {bare}")[0]
    assert "national_id" not in set().union(*tiers(f"ref {bare} ok"))
    assert "national_id" not in set().union(*tiers(f"ref {dashed[:4]}93{dashed[6:]} ok"))  # group 93: no ITIN's


def test_an_itin_column_is_found_by_its_grouping_or_under_its_header():
    values = [itin().replace("-", "") for _ in range(50)]
    assert column_found(values) == 0  # no check digit: bare runs are never evidence by values
    assert column_found(values, "itin") == 50
    assert column_found([f"{v[:3]}-{v[3:5]}-{v[5:]}" for v in values]) == 50


def test_a_korean_number_with_a_birth_date_and_a_wrong_tail_is_low_confidence():
    # born 1910-1999: a year 00-09 starts with 0 and the number reads as a phone number with its trunk prefix
    # (0xxxxx-xxxxxxx), a full finding that covers a low one (ADR 0052)
    value = next(v for v in iter(kr_rrn, None) if v[0] != "0")
    found, low = tiers(f"고객 {value[:6]}-{off_by_one(value)[6:]}")
    assert "national_id" not in found and "national_id" in low
    found, low = tiers(f"고객 {value[:2]}13{value[4:6]}-{value[6:]}")  # month 13
    assert "national_id" not in found | low


@pytest.mark.parametrize("length", range(9, 14))
def test_a_bare_digit_run_in_neutral_text_is_not_a_national_id(length):
    for _ in range(200):
        found, _ = tiers(f"order {rng.choice('123456789')}{_digits(length - 1)} shipped today")
        assert "national_id" not in found


def test_the_spanish_word_sin_is_no_context():
    value = sin()
    assert "national_id" not in tiers(f"pedido sin {value} enviado")[0]


# ---- columns

@pytest.mark.parametrize("scheme", sorted(CHECKED))
def test_a_column_of_valid_numbers_is_found_by_its_values(scheme):
    values = [CHECKED[scheme]() for _ in range(200)]
    assert column_found(values) == 200


@pytest.mark.parametrize("length", [9, 10, 11, 12, 13])
def test_a_column_of_order_numbers_is_not(length):
    values = [rng.choice("123456789") + _digits(length - 1) for _ in range(2000)]
    assert column_found(values) == 0


@pytest.mark.parametrize(("header", "acronym"), [("fin_year", "FIN"), ("sin_theta", "sin"), ("nas_path", "nas"),
                                                 ("itinerary", "itin_no"), ("mbi_score_raw", "mbi")])
def test_a_header_that_only_contains_an_acronym_does_not_name_the_scheme(header, acronym):
    values = [str(rng.randint(10**8, 10**9 - 1)) for _ in range(200)]  # a quarter pass some 9-digit check
    assert column_found(values, header) == 0
    assert column_found(values, acronym) > 0  # the acronym alone names it: its bare values are read


def test_a_column_of_mbis_is_found_under_its_header_only():
    values = [mbi() for _ in range(100)]
    assert column_found(values) == 0  # no check digit: never evidence by values (ADR 0023)
    assert column_found(values, "medicare_mbi") == 100


def _regroup(value: str) -> str:
    """``value``'s digits in groups of 2, 2, 2 and the rest, dash-joined: no scheme's own grouping."""
    return "-".join((value[:2], value[2:4], value[4:6], value[6:]))


@pytest.mark.parametrize(("scheme", "make"), [
    ("pl.pesel", lambda: Faker("pl_PL").pesel()), ("nl.bsn", lambda: Faker("nl_NL").ssn()),
    ("gb.nhs", lambda: nhs_number()), ("br.cpf", lambda: Faker("pt_BR").cpf().replace(".", "").replace("-", ""))])
def test_the_older_digit_schemes_are_read_bare_or_in_their_own_grouping_only(scheme, make):
    """stdnum's ``compact`` drops a separator anywhere: a valid PESEL written 44-05-14-01359 would be a PESEL
    and a lone cell of it a national ID by its values. Only the bare run or the issuer's grouping counts."""
    for _ in range(20):
        value = make()
        assert NATIONAL_IDS[scheme](value), value
        assert not NATIONAL_IDS[scheme](_regroup(value)), value
        assert column_found([_regroup(value)]) == 0


def nhs_number() -> str:
    from stdnum.gb import nhs

    while True:  # one random 10-digit run in 11 or so passes the mod-11 check
        value = str(rng.randint(1, 9)) + _digits(9)
        if nhs.is_valid(value):
            return value


def test_the_demo_datasets_fake_ssns_are_neither_ssns_nor_itins():
    """The demo's SSN column is fake by construction (area 9XX, groups 10-49): no national_id or us_ssn at any
    size, so `make demo`'s clean run is blocked by nothing but what its policy forbids."""
    from mlgate.demo.dataset import generate_loans

    ssns = generate_loans(5000)["ssn"].tolist()
    hits = scan({"ssn": pa.array(ssns, pa.large_string())}, PII_TYPES)["ssn"]
    assert not {"national_id", "us_ssn"} & hits.keys()
    assert NATIONAL_IDS["us.itin"](f"9{ssns[0][1:3]}-70-{ssns[0][-4:]}")  # the same number in an ITIN group is one
