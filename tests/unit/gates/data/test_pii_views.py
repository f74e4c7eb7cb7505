"""Normalised views of a cell (ADR 0056): both scan paths read them, ``mask`` replaces the whole disguised cell,
no value or decoded value reaches the result, and ordinary non-ASCII text, %-encoded URLs, random base64 and hex
digests raise nothing the cells alone do not."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import urllib.parse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from faker import Faker

from mlgate.core.results import Status
from mlgate.gates.data.pii import PiiPolicy, check_pii, read_table
from mlgate.gates.data.pii_stream import check_pii_source
from mlgate.gates.data.pii_views import trigger, views
from mlgate.gates.data.policies import PII_TYPES
from mlgate.gates.data.sources import open_source
from tests.unit.gates.data.test_pii_redteam import AWS, EMAIL, EVADED, SSN

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "0" * 64
TYPES = ("us_ssn", "email", "credit_card", "secret")


def _write(tmp_path, cells: list[str]):
    path = tmp_path / "supplied.parquet"
    pq.write_table(pa.table({"notes": cells, "id": [str(i) for i in range(len(cells))]}), path)
    return path


def test_the_streamed_scan_reads_the_views_as_the_in_memory_scan_does(tmp_path):
    cells = [value for _, _, value in EVADED] + ["plain words"] * 7
    path = _write(tmp_path, cells)
    in_memory = check_pii(path, PiiPolicy(types=TYPES), DIGEST)
    streamed = check_pii_source(open_source(path, 5), PiiPolicy(types=TYPES), DIGEST)
    assert streamed.status is in_memory.status is Status.BLOCKED
    assert streamed.metrics["cells_by_type"] == in_memory.metrics["cells_by_type"]
    found = sum(in_memory.metrics["cells_by_type"][t].get("notes", 0) for t in TYPES)
    assert found >= len(EVADED)


def test_mask_replaces_the_whole_disguised_cell_and_only_it(tmp_path):
    hidden = SSN.replace("-", "\u200b-")
    cells = [f"mail {EMAIL} and ssn {hidden} end", f"plain {EMAIL} here", "nothing at all"]
    policy = PiiPolicy(types=TYPES, action="mask", mask_with="redact")
    result = check_pii(_write(tmp_path, cells), policy, DIGEST, out_dir=tmp_path)
    masked = read_table(tmp_path / "supplied.masked.parquet").column("notes").to_pylist()
    assert masked[0] == "<us_ssn>"  # the view's find cannot be placed in the cell: nothing of it is kept
    assert masked[1] == "plain <email> here"  # a cell's own span is still masked in place
    assert masked[2] == "nothing at all"
    assert result.metrics["cells_by_type"]["us_ssn"] == {"notes": 1}


def test_no_value_or_decoded_value_reaches_the_result(tmp_path):
    secret = f"aws_access_key_id={AWS}"
    cells = [base64.b64encode(secret.encode()).decode(), EMAIL.replace("@", "&#64;"), SSN.replace("-", "\u2013"),
             urllib.parse.quote(EMAIL, safe="")]
    text = check_pii(_write(tmp_path, cells), PiiPolicy(types=TYPES), DIGEST).to_json()
    for value in [*cells, secret, AWS, EMAIL, SSN, SSN.replace("-", ""), *(v for c in cells for v in views(c))]:
        assert value not in text
    assert json.loads(text)["status"] == "blocked"


def _ordinary(seed: int) -> dict[str, list[str]]:
    """Text in four locales, %-encoded URLs of ordinary words, base64 of random bytes, sha256 digests."""
    rng = random.Random(seed)
    texts, urls = [], []
    for locale in ("de_DE", "fr_FR", "ru_RU", "ja_JP"):
        fake = Faker(locale)
        fake.seed_instance(seed)
        for _ in range(40):
            texts += [fake.text(max_nb_chars=160), fake.name(), fake.city(), fake.company(), fake.job()]
            query = urllib.parse.urlencode({"q": fake.sentence(), "lang": locale[:2]})
            urls.append(f"https://{fake.domain_name()}/{urllib.parse.quote(fake.word())}?{query}")
    blobs = [base64.b64encode(rng.randbytes(rng.randint(12, 300))).decode() for _ in range(400)]
    blobs += [base64.urlsafe_b64encode(rng.randbytes(rng.randint(12, 64))).decode().rstrip("=") for _ in range(200)]
    digests = [hashlib.sha256(rng.randbytes(32)).hexdigest() for _ in range(400)]
    return {"text": texts, "url": urls, "blob": blobs, "digest": digests}


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("kind", ["text", "url", "blob", "digest"])
def test_ordinary_values_raise_no_alarm(tmp_path, seed, kind):
    cells = _ordinary(seed)[kind]
    if kind in ("blob", "digest"):  # the decode pass, run on every cell here, finds no text in random bytes
        assert not any(views(cell) for cell in cells)
    else:  # views were computed: every Russian cell (look-alike letters), those with a line break, URLs with %xx;
        # accented Latin, German or Japanese text alone is no trigger
        triggered = pc.sum(pc.match_substring_regex(pa.array(cells, pa.large_string()), trigger())).as_py()
        assert triggered >= (0.25 if kind == "text" else 0.5) * len(cells)
    types = tuple(t for t in PII_TYPES if t not in ("person_name", "postal_address", "date_of_birth"))
    result = check_pii(_write(tmp_path, cells), PiiPolicy(types=types), DIGEST)
    assert result.status is Status.PASSED, [f.message for f in result.findings]
    assert not result.findings


@pytest.mark.parametrize(("at", "dot"), [(" [at] ", " [dot] "), ("(AT)", "(DOT)"), (" {at} ", "{dot}")])
def test_bracketed_at_and_dot_read_as_an_address_and_plain_words_do_not(tmp_path, at, dot):
    user, domain = EMAIL.split("@")
    hidden = user + at + domain.replace(".", dot)
    assert check_pii(_write(tmp_path, [f"write to {hidden}"]), PiiPolicy(types=("email",)), DIGEST).status \
        is Status.BLOCKED
    plain = [f"look at the dot com bubble, {user} at {domain.split('.')[0]} dot com"]
    assert check_pii(_write(tmp_path, plain), PiiPolicy(types=("email",)), DIGEST).status is Status.PASSED
