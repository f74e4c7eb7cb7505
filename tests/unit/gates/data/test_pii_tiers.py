"""data.pii: the policy's phone regions and the low-confidence tier (ADR 0052). Cases are generated (Faker,
random digits); the maintained libraries (phonenumbers, python-stdnum) say which generated value is valid."""

import json
import random
import string

import phonenumbers
import pyarrow as pa
import pytest
from faker import Faker
from pydantic import ValidationError
from stdnum.in_ import pan

from mlgate.gates.data.pii import PiiPolicy, check_pii, scan, scan_low
from mlgate.gates.data.pii_detectors import PII_TYPES

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "0" * 64
rng = random.Random(52)
FAKES = {locale: Faker(locale) for locale in ("en_US", "it_IT", "pt_BR", "pl_PL", "tr_TR")}
for _fake in FAKES.values():
    _fake.seed_instance(52)


def tiers(text: str, regions: tuple[str, ...] = ()) -> tuple[set[str], set[str]]:
    """(types found, types found at low confidence only) in ``text`` alone in a free-text column."""
    columns = {"notes": pa.array([text], pa.large_string())}
    hits = scan(columns, PII_TYPES, regions)
    return set(hits["notes"]), set(scan_low(columns, PII_TYPES, hits, regions).get("notes", {}))


def _bare_digits(count: int, valid_in_tr: bool) -> list[str]:
    found = []
    while len(found) < count:
        digits = str(rng.randint(10**9, 10**10 - 1))
        if phonenumbers.is_valid_number(phonenumbers.parse(digits, "TR")) == valid_in_tr:
            found.append(digits)
    return found


@pytest.mark.parametrize("digits", _bare_digits(6, valid_in_tr=True))
def test_a_bare_number_valid_in_the_policys_phone_region_is_a_phone(digits):
    text = f"{FAKES['tr_TR'].sentence()} {digits}"
    assert "phone" in tiers(text, ("TR",))[0]
    assert "phone" not in tiers(text)[0]  # without regions, a bare run needs a word that names a phone


@pytest.mark.parametrize("digits", _bare_digits(6, valid_in_tr=False))
def test_a_bare_number_invalid_in_the_policys_phone_region_is_not(digits):
    assert "phone" not in tiers(f"{FAKES['tr_TR'].sentence()} {digits}", ("TR",))[0]


def test_phone_regions_replace_the_default_regions_for_national_numbers():
    """A Chinese mobile number written without +86 is no phone number of a user whose data holds Turkish ones."""
    numbers = [n for n in (f"13{rng.randint(10**8, 10**9 - 1)}" for _ in range(50))
               if phonenumbers.is_valid_number(phonenumbers.parse(n, "CN"))][:3]
    assert numbers
    for number in numbers:
        assert "phone" in tiers(f"WhatsApp {number}")[0]  # a phone word: one of the 28 default regions
        assert "phone" not in tiers(f"WhatsApp {number}", ("TR",))[0]
        assert "phone" not in tiers(f"order {number} shipped")[0]  # bare: no region, word or header says so
        assert "phone" in tiers(f"order {number} shipped", ("CN",))[0]


def test_phone_regions_must_be_regions_the_numbering_plans_know():
    assert PiiPolicy(phone_regions=["tr", "DE"]).phone_regions == ("TR", "DE")
    with pytest.raises(ValidationError, match="phone_regions"):
        PiiPolicy(phone_regions=["XX"])


def _pans(valid: bool, count: int) -> list[str]:
    found = []
    while len(found) < count:
        value = ("".join(rng.choices(string.ascii_uppercase, k=5)) + "".join(rng.choices(string.digits, k=4))
                 + rng.choice(string.ascii_uppercase))
        if pan.is_valid(value) == valid:
            found.append(value)
    return found


def _wrong_last(value: str, alphabet: str) -> str:
    return value[:-1] + rng.choice([c for c in alphabet if c != value[-1]])


def _bad_fiscal_code() -> str:
    return _wrong_last(FAKES["it_IT"].ssn(), string.ascii_uppercase)


def _bad_cpf() -> str:
    return _wrong_last(FAKES["pt_BR"].cpf(), string.digits)


def _bad_pesel() -> str:
    return f"PESEL {_wrong_last(FAKES['pl_PL'].pesel(), string.digits)}"


LOW = [("pan", lambda: _pans(False, 1)[0]), ("codice-fiscale", _bad_fiscal_code), ("cpf", _bad_cpf),
       ("pesel-after-its-name", _bad_pesel)]


@pytest.mark.parametrize(("case", "make"), LOW, ids=[c for c, _ in LOW])
def test_a_national_ids_own_format_failing_its_check_is_a_low_confidence_finding(case, make):
    """A corrupted value that another rule takes at full confidence (a corrupted PESEL is now and then a valid
    CPF, or a Chinese mobile number) is that finding instead; the rest are low-confidence national IDs."""
    texts = [f"{FAKES['en_US'].sentence()} {make()} {FAKES['en_US'].sentence()}" for _ in range(12)]
    untaken = [text for text in texts if not tiers(text)[0]]
    assert len(untaken) >= 6, case
    for text in untaken:
        assert tiers(text)[1] == {"national_id"}, case


@pytest.mark.parametrize("value", _pans(True, 3) + [FAKES["it_IT"].ssn() for _ in range(3)])
def test_a_valid_national_id_is_found_at_full_confidence_only(value):
    found, low = tiers(f"ID {value} on file")
    assert "national_id" in found and "national_id" not in low


@pytest.mark.parametrize("text", [
    str(rng.randint(10**8, 10**9 - 1)),  # a bare 9-digit run (an SSN's shape): no scheme's own format
    f"order {rng.randint(10**7, 10**8 - 1)}{rng.choice(string.ascii_uppercase)}",  # 8 digits and a letter
    f"{rng.randint(10**5, 10**6 - 1)}-{rng.randint(1000, 9999)}",  # a HETU's shape, no letter in its place
    f"build 1.3.6.1.{rng.randint(2, 9)}.1",  # an OID or a version: no IP address, at any tier
])
def test_shapes_shared_with_ordinary_codes_are_no_finding_at_any_tier(text):
    assert tiers(text) == (set(), set())


@pytest.mark.parametrize(("low_confidence", "status"), [("report", "passed"), ("block", "blocked")])
def test_low_confidence_findings_block_only_when_the_policy_says_so(tmp_path, low_confidence, status):
    value = _bad_fiscal_code()
    path = tmp_path / "notes.csv"
    path.write_text(f"notes\ncodice fiscale {value} allegato\n")
    result = check_pii(path, PiiPolicy(low_confidence=low_confidence), DIGEST)
    assert result.status.value == status
    assert result.metrics["low_confidence_cells_by_type"] == {"national_id": {"notes": 1}}
    assert result.metrics["cells_by_type"]["national_id"] == {}
    assert [f.id for f in result.findings] == ["data.pii.national_id.low"]
    assert value not in json.dumps(result.to_dict())


def test_low_confidence_values_are_masked_only_when_they_block(tmp_path, monkeypatch):
    monkeypatch.setenv("MLGATE_PII_KEY", "tier-key")
    value = _bad_cpf()
    path = tmp_path / "notes.csv"
    path.write_text(f"notes\nCPF informado {value} ontem\n")
    kept = check_pii(path, PiiPolicy(action="mask"), DIGEST, out_dir=tmp_path / "report")
    masked = check_pii(path, PiiPolicy(action="mask", low_confidence="block"), DIGEST, out_dir=tmp_path / "block")
    assert value in (tmp_path / "report" / "notes.masked.csv").read_text()
    assert value not in (tmp_path / "block" / "notes.masked.csv").read_text()
    assert kept.artifacts and masked.artifacts
