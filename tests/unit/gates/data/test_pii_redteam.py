"""Red team (session 6) of ``data.pii``: how a data supplier could write a value so that a person reading or a
model training on it still gets it, while the detectors miss it (docs/notes/2026-12-04-s6/redteam6.md lists them
beside detect-secrets). The plain values are the control that the same harness blocks. The classes the normalised
views catch (ADR 0056, ``pii_views``) are plain tests; each class left is a strict xfail saying why."""

from __future__ import annotations

import base64
import urllib.parse

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from faker import Faker

from mlgate.core.results import Status
from mlgate.gates.data.pii import PiiPolicy, check_pii
from mlgate.gates.data.pii_detectors import luhn_ok, valid_ssn

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "0" * 64
_FAKE = Faker("en_US")
_FAKE.seed_instance(6)
SSN = next(s for s in iter(_FAKE.ssn, None) if valid_ssn(s))
EMAIL = _FAKE.email()
CARD = " ".join(c[i:i + 4] for c in [next(n for n in iter(_FAKE.credit_card_number, None)
                                          if len(n) == 16 and luhn_ok(n))] for i in range(0, 16, 4))
AWS = "AKIA" + _FAKE.pystr_format("????????????????", letters="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
SECRET = f"aws_access_key_id={AWS}"

ZW, SHY, NBSP = "\u200b", "\u00ad", "\u00a0"
_FULL = str.maketrans("0123456789@.-", "０１２３４５６７８９＠．－")
_ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_CYRILLIC = str.maketrans("aeoAEO", "аеоАЕО")

# (evasion class, pii type, the cell as the supplier writes it): caught by the normalised views (ADR 0056)
EVADED = [
    ("zero_width", "us_ssn", SSN.replace("-", ZW + "-")),
    ("zero_width", "credit_card", CARD.replace(" ", ZW)),
    ("zero_width", "secret", f"aws_access_key_id={AWS[:8]}{ZW}{AWS[8:]}"),
    ("soft_hyphen", "us_ssn", SSN[:2] + SHY + SSN[2:]),
    ("soft_hyphen", "credit_card", CARD[:3] + SHY + CARD[3:]),
    ("soft_hyphen", "secret", f"aws_access_key_id={AWS[:8]}{SHY}{AWS[8:]}"),
    ("fullwidth_digits", "us_ssn", SSN.translate(_FULL)),
    ("fullwidth_digits", "email", EMAIL.translate(_FULL)),
    ("fullwidth_digits", "credit_card", CARD.translate(_FULL)),
    ("arabic_indic_digits", "us_ssn", SSN.translate(_ARABIC)),
    ("arabic_indic_digits", "credit_card", CARD.translate(_ARABIC)),
    ("lookalike_letters", "email", EMAIL.translate(_CYRILLIC)),
    ("lookalike_letters", "secret", "aws_access_key_id=" + AWS.translate(_CYRILLIC)),
    ("unicode_dashes", "us_ssn", SSN.replace("-", "\u2013")),
    ("unicode_dashes", "credit_card", CARD.replace(" ", "\u2212")),
    ("nbsp_separator", "us_ssn", SSN.replace("-", NBSP)),
    ("nbsp_separator", "credit_card", CARD.replace(" ", NBSP)),
    ("mixed_separators", "credit_card", f"{CARD[:4]}-{CARD[5:9]} {CARD[10:14]}.{CARD[15:]}"),
    ("url_encoded", "us_ssn", SSN.replace("-", "%2D")),
    ("url_encoded", "email", urllib.parse.quote(EMAIL, safe="")),
    ("url_encoded", "secret", "aws_access_key_id%3D" + AWS),  # detect-secrets' AWS rule still finds it
    ("html_entity", "us_ssn", SSN.replace("-", "&#45;")),
    ("html_entity", "email", EMAIL.replace("@", "&#64;")),
    ("base64", "us_ssn", base64.b64encode(SSN.encode()).decode()),
    ("base64", "email", base64.b64encode(EMAIL.encode()).decode()),
    ("base64", "secret", base64.b64encode(SECRET.encode()).decode()),
    ("hex", "us_ssn", SSN.encode().hex()),
    ("hex", "email", EMAIL.encode().hex()),
    ("hex", "secret", AWS.encode().hex()),
    ("line_continuation", "us_ssn", SSN[:4] + "\\\n" + SSN[4:]),
    ("line_continuation", "email", EMAIL.replace("@", "@\n")),
    ("line_continuation", "secret", f"aws_access_key_id={AWS[:10]}\\\n{AWS[10:]}"),
    ("obfuscated_at", "email", EMAIL.replace("@", " [at] ").replace(".", " [dot] ")),
    ("spaced_digits", "credit_card", " ".join(CARD.replace(" ", ""))),
    # a bare 9-digit run is an SSN only beside the word (or in a column named for it), spaced or not
    ("spaced_digits", "us_ssn", "SSN: " + " ".join(SSN.replace("-", ""))),
]
# Left, with the reason: (evasion class, pii type, cell, why)
LEFT = [
    ("spaced_digits", "us_ssn", " ".join(SSN.replace("-", "")),
     "closed up it is a bare 9-digit run, which is no SSN in free text either (no context word, no column name)"),
    ("mixed_separators", "us_ssn", f"{SSN[:3]} {SSN[4:6]}.{SSN[7:]}",
     "three digit groups with mixed separators are no SSN (Presidio's own negative `693-09.4444`): the SSN ranges "
     "take 89 % of random 3-2-4 digits, so reading every such run as one would flag codes and dates (ADR 0023); "
     "four or more groups (a card, Luhn-checked) are read"),
    ("reversed", "us_ssn", SSN[::-1],
     "nobody reads a value backwards; a reversed twin of every format would double the patterns and their false "
     "alarms for a form no reader or parser takes as the value"),
]


def blocked(tmp_path, columns: dict[str, list[str]], pii_type: str) -> bool:
    pq.write_table(pa.table(columns), tmp_path / "supplied.parquet")
    return check_pii(tmp_path / "supplied.parquet", PiiPolicy(types=(pii_type,)), DIGEST).status is Status.BLOCKED


def cells(value: str) -> dict[str, list[str]]:
    return {"notes": [f"see {value} here", "nothing to see", "plain words only"]}


@pytest.mark.parametrize(("pii_type", "value"), [("us_ssn", SSN), ("email", EMAIL), ("credit_card", CARD),
                                                 ("secret", SECRET)])
def test_the_plain_value_is_blocked(tmp_path, pii_type, value):
    assert blocked(tmp_path, cells(value), pii_type)


@pytest.mark.parametrize(("evasion", "pii_type", "value"), [pytest.param(*case, id=f"{case[0]}-{case[1]}")
                                                             for case in EVADED])
def test_an_evaded_value_is_blocked(tmp_path, evasion, pii_type, value):
    assert blocked(tmp_path, cells(value), pii_type)


@pytest.mark.parametrize(("evasion", "pii_type", "value"), [
    pytest.param(*case[:3], id=f"{case[0]}-{case[1]}", marks=pytest.mark.xfail(strict=True, reason=case[3]))
    for case in LEFT])
def test_an_evaded_value_left_is_blocked(tmp_path, evasion, pii_type, value):
    assert blocked(tmp_path, cells(value), pii_type)


@pytest.mark.xfail(strict=True, reason="cells are judged alone: which columns join into one value is the schema's "
                   "meaning, not a rule a scan can guess without pairing every column with every other")
def test_a_value_split_across_columns_is_blocked(tmp_path):
    assert blocked(tmp_path, {"ssn_head": [SSN[:6]] * 3, "ssn_tail": [SSN[6:]] * 3}, "us_ssn")


@pytest.mark.xfail(strict=True, reason="rows are judged alone: rows have no order a reader is bound to (a "
                   "shuffle splits them), and joining neighbours would make values of unrelated rows")
def test_a_secret_split_across_rows_is_blocked(tmp_path):
    assert blocked(tmp_path, {"notes": [f"aws_access_key_id={AWS[:10]}", AWS[10:], "plain words"]}, "secret")
