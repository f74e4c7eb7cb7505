"""redteam10n: the national_id type after ADR 0070 (person numbers) and ADR 0071 (identity documents).

Every value is generated from its scheme's published rule (the generators of ``test_pii_national_ids`` and
``test_pii_documents``, fixed seeds). Each class was a finding on cff3a46:

- evasion: a context word written as a key (``tax_file_number``, ``sin_no``, ``nationalId``, ``dl_number``,
  ``voterId``) named nothing, and some headers (``Passnummer``, ``DL#``, ``DRIVER'S LICENSE``) no document;
- false alarms: a document or ID word took any value in the format within its window, even where another word
  named the value (``passport photo order 632044329``, ``Medicare claim …``, ``DL 5514 … ticket …``, ``voters``);
- cost: a long digit run with a spaced-digit trigger made the views quadratic; an ID word with single spaced
  digits tried every cut of every run against every scheme (12 s per MB).
"""

import json
import logging
import random
import string
import time

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from mlgate.gates.data import pii_detectors
from mlgate.gates.data.national_ids import DIGIT_LAYOUTS
from mlgate.gates.data.pii import PiiPolicy, check_pii, scan, scan_low
from mlgate.gates.data.pii_detectors import PII_TYPES, Detector, detectors, find_spans
from mlgate.gates.data.pii_stream import check_pii_source
from mlgate.gates.data.pii_views import fold
from mlgate.gates.data.sources import open_source
from mlgate.gates.data.validators import national_id_scheme
from tests.unit.gates.data import test_pii_documents as docs
from tests.unit.gates.data import test_pii_national_ids as ids

pytestmark = pytest.mark.unit

rng = random.Random(1010)
DIGEST = "sha256:" + "0" * 64


def tiers(text: str, column: str = "notes") -> tuple[set[str], set[str]]:
    columns = {column: pa.array([text], pa.large_string())}
    hits = scan(columns, PII_TYPES)
    return set(hits.get(column, {})), set(scan_low(columns, PII_TYPES, hits).get(column, {}))


def column_found(values: list[str], name: str) -> int:
    hits = scan({name: pa.array(values, pa.large_string())}, ("national_id",))
    return len(hits[name].get("national_id", ()))


# ---- evasion: a context word written as a key

KEYED = [  # (key, generator): JSON keys and key=value logs write the words with ``_`` or in camelCase
    ("tax_file_number", ids.tfn), ("taxFileNumber", ids.tfn), ("tfn_no", ids.tfn),
    ("sin_no", ids.sin), ("social_insurance_number", ids.sin), ("socialInsuranceNumber", ids.sin),
    ("resident_registration_number", ids.kr_rrn), ("rrn_no", ids.kr_rrn),
    ("sa_id", ids.za_id), ("national_id", ids.za_id), ("nationalId", ids.th_pin), ("id_number", ids.th_pin),
    ("idNumber", ids.tckn), ("itin_number", ids.itin), ("nric_no", ids.sg_nric), ("kvnr_nr", ids.kvnr),
]


@pytest.mark.parametrize(("key", "make"), KEYED)
@pytest.mark.parametrize("layout", ['{{"{k}": "{v}"}}', "{k}={v}", '{{"customer": {{"{k}": "{v}"}}}}'])
def test_a_context_word_written_as_a_key_names_the_value(key, make, layout):
    # a 13-digit ZA ID or Thai PIN may also pass Luhn as a card of 13 digits, which takes the span: blocked all the same
    assert tiers(layout.format(k=key, v=make()))[0] & {"national_id", "credit_card"}


def test_a_lower_case_sin_names_the_value_as_a_json_key_only():
    assert "national_id" in tiers(json.dumps({"sin": ids.sin()}))[0]


@pytest.mark.parametrize("text", [
    f"sin {ids.sin()} azúcar",  # Spanish 'sin' (without) is still no context word
    f"sin_theta {ids.sin()}",
    f"fin_year {ids.sin()}",
])
def test_a_key_that_only_contains_an_acronym_still_names_nothing(text):
    assert "national_id" not in tiers(text)[0]


DOC_KEYS = [("dl_number", "us.driver_license"), ("driver_license_number", "it.driver_license"),
            ("id_card_number", "it.identity_card"), ("voterId", "in.voter"), ("travel_document", "es.passport"),
            ("identity_card", "de.id_card")]


@pytest.mark.parametrize(("key", "scheme"), DOC_KEYS)
def test_a_document_word_written_as_a_key_names_the_document(key, scheme):
    value = docs.DOCUMENTS[scheme][0]()
    assert "national_id" in tiers(json.dumps({key: value}))[0]


@pytest.mark.parametrize(("header", "scheme"), [
    ("Passnummer", "gb.passport"), ("N° de passeport", "es.passport"), ("numéro de passeport", "in.passport"),
    ("DL#", "us.driver_license"), ("DRIVER'S LICENSE", "de.fuehrerschein"),
])
def test_a_column_under_a_header_variant_naming_the_document_holds_it(header, scheme):
    values = [docs.DOCUMENTS[scheme][0]() for _ in range(12)]
    assert column_found(values, header) == 12


# ---- false alarms: another word names the value

def _valid(scheme: str) -> str:
    return {**ids.CHECKED, "us.itin": ids.itin}[scheme]()


OTHER_NAMED = [  # (template, value): the value is in the named document's or scheme's format (and check)
    ("Passport photo order {v} paid", lambda: docs.DOCUMENTS["us.passport"][0]()),
    ("Booking {v}; passport required at check-in", lambda: docs.DOCUMENTS["gb.passport"][0]()),
    ("Passport check OK, booking ref {v}", lambda: docs.DOCUMENTS["it.passport"][0]()),
    ("driver's license renewal fee, receipt {v}", lambda: "".join(rng.choice(string.digits) for _ in range(9))),
    ("DL link for build {v}", lambda: "".join(rng.choice(string.digits) for _ in range(8))),
    ("Medicare claim {v} processed", lambda: _valid("au.medicare")),
    ("ITIN application receipt {v}", lambda: _valid("au.tfn")),
    ("national ID card fee: invoice {v}", lambda: _valid("ca.sin")),
]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("template", "make"), OTHER_NAMED)
def test_a_value_another_word_names_is_no_national_id(template, make, seed):
    assert "national_id" not in tiers(template.format(v=make()))[0]


@pytest.mark.parametrize(("text", "make"), [
    ("Passport {v} paid", lambda: docs.DOCUMENTS["us.passport"][0]()),
    ("{v} is my passport number", lambda: docs.DOCUMENTS["gb.passport"][0]()),
    ("order shipped; Medicare {v}", lambda: _valid("au.medicare")),
    ("ITIN {v} (receipt attached)", ids.itin),
    ("DL {v}", lambda: docs.DOCUMENTS["us.driver_license"][0]()),
])
def test_without_a_word_between_the_word_still_names_it(text, make):
    """The control of the test above: the rule drops only values another word names."""
    assert "national_id" in tiers(text.format(v=make()))[0]


@pytest.mark.parametrize("seed", range(4))
def test_delta_flight_numbers_are_no_driving_licence_word(seed):
    flight, ticket = rng.randint(1, 9999), "".join(rng.choice(string.digits) for _ in range(rng.choice((10, 13))))
    assert "national_id" not in tiers(f"DL {flight} JFK-ATL {ticket}")[0]
    assert "national_id" not in tiers(f"DL{flight} {ticket}")[0]


def test_voters_in_the_plural_name_people_not_a_voter_id():
    assert "national_id" not in tiers(f"voters in ward {docs.DOCUMENTS['in.voter'][0]()}")[0]
    assert "national_id" in tiers(f"voter {docs.DOCUMENTS['in.voter'][0]()}")[0]


def test_the_rate_on_multi_row_travel_notes_is_zero():
    """300 generated notes a travel desk writes: document words next to booking, ticket and order numbers."""
    notes = [rng.choice((
        "Booking {n}; passport required at check-in", "passport scanned; PNR ABCDEF, ticket {t}",
        "DL {f} departs gate C12, ticket {t}", "Passport photo order {n} paid", "visa + passport courier, "
        "tracking {n}")).format(n="".join(rng.choice(string.digits) for _ in range(9)),
                                t="".join(rng.choice(string.digits) for _ in range(13)), f=rng.randint(1, 9999))
             for _ in range(300)]
    assert column_found(notes, "notes") == 0


# ---- cost

def test_views_close_a_long_spaced_digit_run_in_linear_time():
    """``_MIXED`` backtracked the whole closed-up run from every digit of it: 40 KB cost 1.3 s, 200 KB minutes."""
    cell = "1 2 3 4 5 6 " + "1 " * 100_000
    started = time.process_time()
    fold(cell)
    assert time.process_time() - started < 2.0


def test_an_id_word_with_single_spaced_digits_reaches_no_validator(monkeypatch):
    """No scheme writes single spaced digits: a run in no scheme's layout is dropped before the context search
    and the validators (each cut of each run was tried against every scheme)."""
    calls = []
    real = pii_detectors.national_id_scheme
    monkeypatch.setattr(pii_detectors, "national_id_scheme", lambda *a: calls.append(a) or real(*a))
    cell = "ID number 1 2 3 4 5 6 7 8 9 0 1 2 3 " * 200
    strict = Detector("national_id", detectors()["national_id"].patterns)
    find_spans(pa.array([cell], pa.large_string()), strict, "notes")
    assert calls == []


def test_every_scheme_value_of_digits_is_in_some_layout():
    """``DIGIT_LAYOUTS`` is a necessary condition: generated values in their own groupings, and random digit runs
    with separators that some scheme takes, are all in one of them."""
    makers = [*ids.CHECKED.values(), ids.itin]
    for _ in range(3000):
        value = rng.choice(makers)()
        if not any(c.isalpha() for c in value):
            assert any(layout.fullmatch(value) for layout in DIGIT_LAYOUTS), value
    for _ in range(20000):
        value = "".join(rng.choice(string.digits) + (rng.choice(" -:") if rng.random() < 0.25 else "")
                        for _ in range(rng.randint(8, 14))).strip(" -:")
        if national_id_scheme(value) is not None:
            assert any(layout.fullmatch(value) for layout in DIGIT_LAYOUTS), value


# ---- streamed and in memory alike, and no value leaks

def _table() -> tuple[pa.Table, list[str]]:
    tfns = [ids.tfn() for _ in range(400)]
    tfns[::40] = ["n/a"] * 10  # 2.5 % junk: the column is still elected by its values
    payload = [json.dumps({"customer": i, "tax_file_number": ids.tfn()}) if i % 7 == 0 else f"note {i}"
               for i in range(400)]
    licences = [docs.DOCUMENTS["us.driver_license"][0]() for _ in range(400)]
    canaries = [tfns[1], json.loads(payload[0])["tax_file_number"], licences[3]]
    return pa.table({"ref": tfns, "payload": payload, "DL#": licences}), canaries


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_streamed_and_in_memory_verdicts_agree_and_no_value_leaks(tmp_path, fmt, caplog):
    table, canaries = _table()
    path = tmp_path / f"data.{fmt}"
    pq.write_table(table, path) if fmt == "parquet" else pa_csv.write_csv(table, path)
    policy = PiiPolicy(types=("national_id",))
    with caplog.at_level(logging.DEBUG):
        in_memory = check_pii(path, policy, DIGEST)
        streamed = check_pii_source(open_source(path, 97), policy, DIGEST)
    for result in (in_memory, streamed):
        assert str(result.status) == "blocked", result.status
        cells = result.metrics["cells_by_type"]["national_id"]
        assert cells["ref"] == 390 and cells["payload"] == 58 and cells["DL#"] == 400
        report = json.dumps(result.to_dict(), default=str)
        for canary in canaries:
            assert canary not in report and canary not in caplog.text
    assert in_memory.metrics["cells_by_type"] == streamed.metrics["cells_by_type"]


# ---- a column of IDs with a few junk cells (ADR 0023's 95 % share)

@pytest.mark.parametrize("junk", ["n/a", "N/A", "unknown", "-", "null", "?", " "])
@pytest.mark.parametrize("share", [0.06, 0.3])
def test_placeholder_cells_do_not_hide_a_column_of_ids(junk, share, tmp_path):
    """A placeholder says "no value": it takes no part in the vote, in memory and streamed alike."""
    values = [ids.tfn() for _ in range(400)]
    for i in rng.sample(range(400), int(400 * share)):
        values[i] = junk
    assert column_found(values, "ref") == 400 - int(400 * share)
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"ref": values}), path)
    policy = PiiPolicy(types=("national_id",))
    streamed = check_pii_source(open_source(path, 97), policy, DIGEST)
    assert streamed.metrics["cells_by_type"]["national_id"]["ref"] == 400 - int(400 * share)


@pytest.mark.xfail(strict=True, reason="redteam10n: more than 5 % of cells that hold some other value (a word, a "
                   "0) take a column below ADR 0023's share, and a neutral header names nothing; the share is what "
                   "keeps a column of order numbers (1 in 10 pass a check digit) from being an ID column, so any "
                   "cell with content must count. A naming header or a context word still finds the values")
def test_arbitrary_junk_cells_do_not_hide_a_column_of_ids():
    values = [ids.tfn() for _ in range(400)]
    for i in rng.sample(range(400), 40):
        values[i] = "pending"
    assert column_found(values, "ref") == 360


def test_a_column_of_placeholders_and_order_numbers_is_no_id_column():
    """The control: placeholders raise no column of random numbers to the share."""
    values = ["n/a"] * 300 + ["".join(rng.choice(string.digits) for _ in range(9)) for _ in range(300)]
    assert column_found(values, "ref") == 0


@pytest.mark.parametrize("template", ["Order ID number {v} shipped", "order_id_no={v}", '{{"product_id_code": "{v}"}}',
                                      "item id no {v}", "ticket passport {v}"])
@pytest.mark.parametrize("scheme", ["ca.sin", "au.tfn", "tr.tckimlik"])
def test_another_word_qualifying_the_context_word_names_the_value(template, scheme):
    """``order ID number``: the ID number of an order (a valid check digit is 1 in 10 of such numbers)."""
    assert "national_id" not in tiers(template.format(v=_valid(scheme)))[0]


# ---- left open

@pytest.mark.xfail(strict=True, reason="redteam10n: lower-case 'sin' before a number is Spanish ('sin 123456789': "
                   "without); only 'SIN', 'sin_no' and a JSON key '\"sin\":' name a SIN. A header 'sin' still does")
def test_a_lower_case_sin_in_a_log_line_names_the_value():
    assert "national_id" in tiers(f"sin={ids.sin()}")[0]


@pytest.mark.xfail(strict=True, reason="redteam10n: 'ID number' names any kind of ID (ADR 0044), and a 9-digit run "
                   "passes one of the checked schemes (BSN, SIN, TFN, ...) about 3 times in 10; 'customer ID number' "
                   "is flagged at that rate. Only words naming another number (order, booking, ...) are excluded")
def test_random_customer_id_numbers_are_rarely_national_ids():
    notes = [f"customer_id_number={''.join(rng.choice(string.digits) for _ in range(9))}" for _ in range(300)]
    assert column_found(notes, "notes") < 15
