import json
import random
import string
from pathlib import Path
from typing import get_args

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from faker import Faker

from mlgate.core.errors import GateInputError
from mlgate.gates.data.integrity import build_manifest
from mlgate.gates.data.pii import PiiPolicy, check_pii, read_table, scan, string_columns
from mlgate.gates.data.pii_detectors import PII_TYPES, luhn_ok, valid_iban, valid_ssn
from mlgate.gates.data.policies import PiiType
from mlgate.gates.data.validators import UNCHECKED, national_id_schemes

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "0" * 64
rng = random.Random(11)
FAKES = {loc: Faker(loc) for loc in ("en_US", "de_DE", "fr_FR", "en_GB")}
for _fake in FAKES.values():  # each its own random: what other test modules draw cannot shift these cases
    _fake.seed_instance(11)
US = FAKES["en_US"]

CANARY_SSN = "536-22-8726"
CANARY_CARD = "4539 1488 0343 6467"
CANARY_AWS = "AKIAZ7QWERTYUIOP1234"


def _token(size: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


def _with_luhn(body: str) -> str:
    return next(body + d for d in string.digits if luhn_ok(body + d))


def _grouped(value: str, sep: str = " ") -> str:
    return sep.join(value[i:i + 4] for i in range(0, len(value), 4))


def _formatted_phone(locale: str) -> str:
    """A Faker phone number that is a valid number of the locale's region (Faker also writes numbers no
    numbering plan has, e.g. ``00211 23622``: +211 with five digits), but not a bare 10-digit US one: that
    shape counts only in a phone column."""
    import phonenumbers

    region = locale.split("_")[1]
    while True:
        number = FAKES[locale].phone_number()
        if number.isdigit() and not number.startswith("0"):
            continue
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(number, region)):
                return number
        except phonenumbers.NumberParseException:
            continue


def detect(text: str, column: str = "notes") -> set[str]:
    return set(scan({column: pa.array([text], pa.large_string())}, PII_TYPES)[column])


# ---- every type, generated with Faker in several locales, inside free text

POSITIVES = [
    ("email", lambda f: f.email()),
    ("phone-en_US", lambda f: _formatted_phone("en_US")),
    ("phone-de_DE", lambda f: _formatted_phone("de_DE")),
    ("phone-fr_FR", lambda f: _formatted_phone("fr_FR")),
    ("phone-en_GB", lambda f: _formatted_phone("en_GB")),
    ("us_ssn", lambda f: US.ssn()),
    ("credit_card-visa", lambda f: f.credit_card_number("visa16")),
    ("credit_card-mastercard", lambda f: f.credit_card_number("mastercard")),
    ("credit_card-mastercard2", lambda f: _with_luhn("2221" + _token(11, string.digits))),
    ("credit_card-amex", lambda f: f.credit_card_number("amex")),
    ("credit_card-discover", lambda f: f.credit_card_number("discover")),
    ("credit_card-jcb", lambda f: _with_luhn("3530" + _token(11, string.digits))),
    ("credit_card-diners", lambda f: f.credit_card_number("diners")),
    ("credit_card-spaced", lambda f: _grouped(_with_luhn("4" + _token(14, string.digits)))),
    ("credit_card-dashed", lambda f: _grouped(f.credit_card_number("mastercard"), "-")),
    ("iban-de", lambda f: FAKES["de_DE"].iban()),
    ("iban-fr-spaced", lambda f: _grouped(FAKES["fr_FR"].iban())),
    ("iban-gb", lambda f: FAKES["en_GB"].iban()),
    ("ip_address-v4", lambda f: f.ipv4()),
    ("ip_address-v6", lambda f: f.ipv6()),
    ("secret-aws", lambda f: "AKIA" + _token(16, string.ascii_uppercase + string.digits)),
    ("secret-aws-session", lambda f: "ASIA" + _token(16, string.ascii_uppercase + string.digits)),
    ("secret-github", lambda f: "ghp_" + _token(36)),
    ("secret-github-pat", lambda f: "github_pat_" + _token(22) + "_" + _token(59)),
    ("secret-slack", lambda f: "xoxb-" + _token(12, string.digits) + "-" + _token(24)),
    ("secret-private-key", lambda f: "-----BEGIN OPENSSH PRIVATE KEY-----"),
    ("secret-jwt", lambda f: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0." + _token(43)),
    ("secret-keyed", lambda f: f"db_password={_token(20)}"),
    ("secret-keyed-json", lambda f: f'"api_key": "{_token(32)}"'),
]


@pytest.mark.parametrize(("case", "make"), POSITIVES, ids=[c for c, _ in POSITIVES])
@pytest.mark.parametrize("locale", list(FAKES))
def test_finds_each_type_inside_free_text(case, make, locale):
    fake = FAKES[locale]
    for _ in range(5):
        text = f"{fake.sentence()} ref {make(fake)}. {fake.sentence()}"
        assert case.split("-")[0] in detect(text), case


# ---- decoys: shapes that look like PII but are not

def _luhn_failing() -> str:
    number = "4" + _token(15, string.digits)
    return number if not luhn_ok(number) else number[:-1] + str((int(number[-1]) + 1) % 10)


DECOYS = [
    ("16-digit-luhn-fails", _luhn_failing),
    ("luhn-valid-no-issuer", lambda: _with_luhn("9" + _token(14, string.digits))),
    ("ssn-area-000", lambda: f"000-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"),
    ("ssn-area-666", lambda: f"666-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"),
    # area 9XX in a group the IRS gives no ITIN (50-65, 70-88, 90-92, 94-99 are ITINs: national_id)
    ("ssn-area-9xx", lambda: f"{rng.randint(900, 999)}-{rng.choice([*range(1, 50), 66, 67, 68, 69, 89, 93]):02d}-"
                             f"{rng.randint(1, 9999):04d}"),
    ("ssn-group-00", lambda: f"{rng.randint(1, 665):03d}-00-{rng.randint(1, 9999):04d}"),
    ("ssn-serial-0000", lambda: f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-0000"),
    ("date-iso", lambda: US.date(pattern="%Y-%m-%d")),
    ("date-eu", lambda: US.date(pattern="%d/%m/%Y")),
    ("date-dotted", lambda: US.date(pattern="%d.%m.%Y")),
    ("zip-us", lambda: US.zipcode()),
    ("zip-de", lambda: FAKES["de_DE"].postcode()),
    ("uuid", lambda: str(US.uuid4())),
    ("sku", lambda: f"SKU-{rng.randint(10000, 99999)}-{_token(2, string.ascii_uppercase)}"),
    ("amount", lambda: f"${rng.uniform(1, 99999):,.2f}"),
    ("version", lambda: f"v{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}"),
    ("iban-bad-checksum", lambda: "DE00" + FAKES["de_DE"].iban()[4:]),
    ("ip-out-of-range", lambda: f"{rng.randint(256, 999)}.10.0.1"),
    ("time", lambda: f"{rng.randint(10, 23)}:{rng.randint(10, 59)}:{rng.randint(10, 59)}"),
    ("password-placeholder", lambda: "password=********"),
    ("password-plain-word", lambda: "password: required"),
    ("jwt-not-json", lambda: "eyJub3QganNvbg.eyJub3QganNvbg.sig"),
]


@pytest.mark.parametrize(("case", "make"), DECOYS, ids=[c for c, _ in DECOYS])
def test_decoys_are_not_reported(case, make):
    for _ in range(20):
        value = make()
        assert detect(f"{US.sentence()} id {value} {US.sentence()}") == set(), value


@pytest.mark.parametrize(("ssn", "valid"), [
    ("123-45-6789", True), ("000-12-3456", False), ("666-12-3456", False), ("900-12-3456", False),
    ("899-12-3456", True), ("123-00-4567", False), ("123-45-0000", False), ("123 45 6789", True),
], ids=lambda v: str(v))
def test_ssn_ranges(ssn, valid):
    assert valid_ssn(ssn) is valid


@pytest.mark.parametrize(("iban", "valid"), [
    ("GB82WEST12345698765432", True), ("GB82WEST1234569876543", False), ("GB83WEST12345698765432", False),
    ("DE89370400440532013000", True), ("NO9386011117947", True), ("XX89370400440532013000", False),
], ids=lambda v: str(v))
def test_iban_length_and_mod97(iban, valid):
    assert valid_iban(iban) is valid


def test_column_name_admits_bare_values_but_never_decides_alone():
    assert detect("536228726", column="ssn") == {"us_ssn"}
    assert detect("536228726", column="order_id") == set()
    assert detect("666099999", column="ssn") == set()  # the name alone does not make it an SSN
    assert detect("5551234567", column="phone") == {"phone"}
    assert detect("kJ8#mQ2!vX9@pL4$", column="api_token") == {"secret"}
    assert detect("aaaaaaaaaaaaaaaaaaaa", column="api_token") == set()


def test_policy_types_match_detectors():
    assert get_args(PiiType) == PII_TYPES


# ---- formats

ROWS = [
    {"id": "1", "email": "ana@example.org", "notes": f"call +49 (0) 9141 777631, ssn {CANARY_SSN}"},
    {"id": "2", "email": "bo@example.com", "notes": f"card {CANARY_CARD} on 2023-04-05"},
    {"id": "3", "email": "cy@example.net", "notes": f"key {CANARY_AWS} v1.2.3"},
]


def write(fmt: str, directory: Path, rows: list[dict] = ROWS) -> Path:
    if fmt == "csv":
        path = directory / "data.csv"
        import pyarrow.csv as pa_csv

        pa_csv.write_csv(pa.Table.from_pylist(rows), path)
    elif fmt == "parquet":
        path = directory / "data.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif fmt == "jsonl":
        path = directory / "data.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        path = directory / "data.txt"
        path.write_text("".join(f"{r['email']} {r['notes']}\n" for r in rows))
    return path


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "text"])
def test_each_format_blocks_what_policy_forbids(fmt, tmp_path):
    path = write(fmt, tmp_path)
    column = "text" if fmt == "text" else "notes"
    allowed = {"text": ["email"]} if fmt == "text" else {"email": ["email"]}
    result = check_pii(path, PiiPolicy(allowed=allowed), DIGEST)
    assert result.status == "blocked"
    assert result.subject.kind == "dataset" and result.subject.digest == build_manifest(path).digest
    cells = result.metrics["cells_by_type"]
    assert cells["us_ssn"] == {column: 1} and cells["credit_card"] == {column: 1}
    assert cells["secret"] == {column: 1} and cells["phone"] == {column: 1}
    assert cells["email"] == {("text" if fmt == "text" else "email"): 3}
    blocked = {(f.id, f.location) for f in result.findings if f.severity != "info"}
    assert ("data.pii.credit_card", column) in blocked and ("data.pii.email", column) not in blocked


def test_everything_allowed_passes(tmp_path):
    result = check_pii(write("csv", tmp_path), PiiPolicy(allowed={"*": list(PII_TYPES)}), DIGEST)
    assert result.status == "passed" and result.metrics["violations"] == 0
    assert all(f.severity == "info" for f in result.findings)


def test_report_passes_with_findings(tmp_path):
    result = check_pii(write("csv", tmp_path), PiiPolicy(action="report"), DIGEST)
    assert result.status == "passed" and result.metrics["violations"] > 0
    finding = next(f for f in result.findings if f.id == "data.pii.us_ssn")
    assert "rows 0 (#" in finding.message and finding.location == "notes"


def test_only_enabled_types_are_scanned(tmp_path):
    result = check_pii(write("csv", tmp_path), PiiPolicy(types=["email"]), DIGEST)
    assert set(result.metrics["cells_by_type"]) == {"email"} and result.status == "blocked"


def test_integer_columns_are_scanned(tmp_path):
    path = tmp_path / "cards.parquet"
    pq.write_table(pa.table({"ssn": pa.array([536228726, 7], pa.int64()), "score": [0.5, 0.7]}), path)
    result = check_pii(path, PiiPolicy(), DIGEST)
    assert result.metrics["cells_by_type"]["us_ssn"] == {"ssn": 1}
    assert result.metrics["columns_skipped"] == ["score"]


def test_nested_json_objects_are_flattened(tmp_path):
    path = tmp_path / "nested.jsonl"
    path.write_text(json.dumps({"user": {"contact": "x@example.org"}}) + "\n")
    result = check_pii(path, PiiPolicy(), DIGEST)
    assert result.metrics["cells_by_type"]["email"] == {"user.contact": 1}


@pytest.mark.parametrize(("name", "content", "error"), [
    ("data.xlsx", b"x", "unsupported file type"),
    ("data.jsonl", b'{"tags": ["a@b.org"]}\n', "nested type"),
    ("data.parquet", b"not parquet", "not valid parquet"),
    ("data.txt", b"\xff\xfe bad utf8", "not valid utf-8 text at byte 0; pass the file's encoding"),
], ids=["unknown-suffix", "json-list", "corrupt-parquet", "bad-utf8"])
def test_bad_input_fails_closed(tmp_path, name, content, error):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(GateInputError, match=error):
        check_pii(path, PiiPolicy(), DIGEST)


def test_missing_file_fails_closed(tmp_path):
    with pytest.raises(GateInputError, match="no such file or directory"):
        check_pii(tmp_path / "absent.csv", PiiPolicy(), DIGEST)


# ---- mask mode

@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "text"])
def test_mask_writes_a_sanitized_copy_keeping_joins(fmt, tmp_path, monkeypatch):
    monkeypatch.setenv("MLGATE_PII_KEY", "k" * 32)
    rows = [{"id": str(i), "email": e, "notes": f"contact {e} about {CANARY_CARD}"}
            for i, e in enumerate(["a@x.org", "b@x.org", "a@x.org"])]
    path = write(fmt, tmp_path, rows)
    result = check_pii(path, PiiPolicy(action="mask"), DIGEST, out_dir=tmp_path / "out")
    masked = Path(result.artifacts[0])
    assert result.status == "passed" and result.metrics["masked_digest"] == build_manifest(masked).digest
    column = "text" if fmt == "text" else "notes"
    cells = string_columns(read_table(masked))[0][column].to_pylist()
    assert cells[0] == cells[2] != cells[1]  # same input, same token: joins survive
    assert all("<credit_card:" in c and "<email:" in c and "@x.org" not in c for c in cells)
    assert check_pii(masked, PiiPolicy(), DIGEST).status == "passed"


def test_mask_tokens_depend_on_the_key(tmp_path, monkeypatch):
    path = write("csv", tmp_path)
    tokens = []
    for key in ("key-one", "key-two"):
        monkeypatch.setenv("MLGATE_PII_KEY", key)
        result = check_pii(path, PiiPolicy(action="mask"), DIGEST, out_dir=tmp_path / key)
        tokens.append(Path(result.artifacts[0]).read_text())
    assert tokens[0] != tokens[1]


def test_mask_redact_needs_no_key(tmp_path, monkeypatch):
    monkeypatch.delenv("MLGATE_PII_KEY", raising=False)
    policy = PiiPolicy(action="mask", mask_with="redact", allowed={"email": ["email"]})
    result = check_pii(write("csv", tmp_path), policy, DIGEST, out_dir=tmp_path / "out")
    text = Path(result.artifacts[0]).read_text()
    assert "<us_ssn>" in text and "ana@example.org" in text


def test_mask_without_key_or_out_dir_fails_closed(tmp_path, monkeypatch):
    monkeypatch.delenv("MLGATE_PII_KEY", raising=False)
    with pytest.raises(GateInputError, match="MLGATE_PII_KEY"):
        check_pii(write("csv", tmp_path), PiiPolicy(action="mask"), DIGEST, out_dir=tmp_path / "out")
    with pytest.raises(GateInputError, match="output directory"):
        check_pii(write("csv", tmp_path), PiiPolicy(action="mask"), DIGEST)


# ---- the canary: known values never leave the scan

CANARIES = (CANARY_SSN, CANARY_CARD, CANARY_CARD.replace(" ", ""), CANARY_AWS)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "text"])
def test_canary_values_never_appear_in_results_or_masked_files(fmt, tmp_path, monkeypatch):
    monkeypatch.setenv("MLGATE_PII_KEY", "canary-key")
    path = write(fmt, tmp_path)
    outputs = [check_pii(path, PiiPolicy(action=action), DIGEST, out_dir=tmp_path / "out").to_json()
               for action in ("block", "report", "mask")]
    outputs.append((tmp_path / "out" / f"data.masked{path.suffix}").read_bytes().decode("utf-8", "replace"))
    assert detect(" ".join(r["notes"] for r in ROWS)) >= {"us_ssn", "credit_card", "secret"}
    for output in outputs:
        assert not any(canary in output for canary in CANARIES)


def test_canary_values_never_appear_in_exception_text(tmp_path, monkeypatch):
    monkeypatch.delenv("MLGATE_PII_KEY", raising=False)
    broken = tmp_path / "broken.csv"
    broken.write_text(f"a,b\n{CANARY_SSN},{CANARY_AWS},{CANARY_CARD},{CANARY_NAME},{CANARY_STREET},{CANARY_DOB},"
                      f"{CANARY_ID}\n")  # a row with too many fields
    errors = []
    for path, policy in ((broken, PiiPolicy()), (write("csv", tmp_path), PiiPolicy(action="mask"))):
        with pytest.raises(GateInputError) as caught:
            check_pii(path, policy, DIGEST, out_dir=tmp_path / "out")
        errors.append(f"{caught.value!r} {caught.getrepr()}")
    canaries = CANARIES + (CANARY_NAME, CANARY_STREET, CANARY_DOB, CANARY_ID)
    assert not any(canary in error for error in errors for canary in canaries)


# ---- validators on real-world shapes (issue 16)

def spans_of(text: str, column: str = "notes") -> dict[str, list[str]]:
    hits = scan({column: pa.array([text], pa.large_string())}, PII_TYPES)[column]
    return {t: [text[s:e] for s, e in rows[0]] for t, rows in hits.items()}


@pytest.mark.parametrize("tail", [" 123", " 2027", " 7", " 42"])
def test_card_followed_by_short_number_is_still_a_card(tail):
    number = _grouped(US.credit_card_number("visa16"), rng.choice([" ", ""]))
    assert spans_of(f"card {number}{tail} thanks")["credit_card"] == [number]


def test_empty_credential_never_takes_the_next_line(tmp_path, monkeypatch):
    value = _token(20)
    assert spans_of(f"password=\nnext={value}") == {}
    path = tmp_path / "conf.txt"
    path.write_text(f"password=\nuser_note {value}\n")
    monkeypatch.setenv("MLGATE_PII_KEY", "k")
    result = check_pii(path, PiiPolicy(action="mask"), DIGEST, out_dir=tmp_path / "out")
    assert Path(result.artifacts[0]).read_text() == path.read_text()


@pytest.mark.parametrize("sep", ["-", ".", " "])
def test_ssn_separators_and_published_examples(sep):
    ssn = US.ssn().replace("-", sep)
    assert spans_of(f"ssn {ssn}") == {"us_ssn": [ssn]}
    for example in ("078-05-1120", "219-09-9999"):  # advertised numbers are not anyone's SSN
        assert "us_ssn" not in spans_of(f"ssn {example}") and "phone" not in spans_of(f"ssn {example}")


@pytest.mark.parametrize("locale", ["de_DE", "fr_FR", "en_GB", "nl_NL"])
def test_iban_with_dashes_and_a_trailing_letter(locale):
    iban = Faker(locale).iban()
    dashed = _grouped(iban, "-")
    assert spans_of(f"pay to {dashed} now")["iban"] == [dashed]
    assert spans_of(f"pay to {_grouped(iban)} A")["iban"] == [_grouped(iban)]


@pytest.mark.parametrize("locale", ["de_DE", "fr_FR", "en_GB", "es_ES", "it_IT"])
def test_invalid_iban_is_nothing_at_all(locale):
    iban = Faker(locale).iban()
    broken = iban[:4] + iban[4:-1] + str((int(iban[-1]) + 1) % 10) if iban[-1].isdigit() else iban[:-1] + "0"
    for text in (broken, _grouped(broken)):
        assert spans_of(f"account {text}") == {}, text


PLACEHOLDERS = ["AKIAIOSFODNN7EXAMPLE", "ghp_" + "x" * 36, "xoxb-xxxxxxxxxxxx-xxxxxxxxxxxx", "password=********",
                "password=${DB_PASSWORD}", "api_key: <your-api-key>", 'token = "changeme"', "secret={{ vault.secret }}",
                "password = os.environ['DB_PASSWORD']", "sk_live_" + "0" * 24, "password: required"]


@pytest.mark.parametrize("text", PLACEHOLDERS)
def test_placeholders_and_references_are_not_secrets(text):
    assert "secret" not in spans_of(f"{text}\n")


ASSIGNMENTS = ['db_pass := "{v}"', "creds => '{v}'", "PASSWORD ::= {v}", "DB_PASSWORD ?= {v}", "$password .= '{v}';",
               "<password>{v}</password>", 'connect(host, password="{v}")', 'setPassword("{v}")',
               "password: {v}", '{{"api_key": "{v}"}}', "export API_TOKEN={v}", "SECRET_KEY = {v}",
               "client_secret={v}", "auth_token -> {v}",
               # GNU make's immediate assignment, null-coalescing and or-assignment
               'DEPLOY_TOKEN :::= "{v}"', '$apiToken ??= "{v}"', "@token ||= '{v}'",
               # a type declared between the name and ``=``
               'var deployToken string = "{v}"', 'val apiToken: String = "{v}"', 'token: str = "{v}"',
               'password: Optional[str] = "{v}"', 'const authToken: Record<string, string> = "{v}"',
               # an element whose text has lines of its own; a prefix before the credential word in the tag
               "<password>\n    {v}\n</password>", "<deployToken>{v}</deployToken>"]


@pytest.mark.parametrize("template", ASSIGNMENTS)
def test_credential_assignments_in_every_common_syntax(template):
    value = _token(8) + "#" + _token(8)
    assert spans_of(template.format(v=value)) == {"secret": [value]}


NOT_ASSIGNMENTS = ["password: Optional[str] = None", "token: Dict[str, str] = {{}}", "password: getpass()",
                   "<jsonwebtoken>{v}</jsonwebtoken>", "<token_id>{v}</token_id>", "<password>\n</password>\n<user>{v}",
                   '<input type="hidden" name="authenticity_token" value="{v}">', "var password string\n{v}",
                   "export DB_PASSWORD=`vault kv get -field=pw secret/{v}`"]


@pytest.mark.parametrize("template", NOT_ASSIGNMENTS)
def test_types_code_metadata_and_empty_elements_are_no_credential(template):
    """A type annotation, a call, a name that holds metadata or a public token, an empty element: the value
    next to them (or on the next line) is no credential's."""
    assert "secret" not in spans_of(template.format(v=_token(8) + "#" + _token(8)))


def test_credential_values_may_hold_spaces():
    value = " ".join(Faker().words(4)) + " " + _token(4)
    assert spans_of(f'password = "{value}"') == {"secret": [value]}


_LOWER_UPPER = string.ascii_letters
TOKEN_FAMILIES = [
    ("hugging-face-letters-only", lambda: "hf_" + _token(34, _LOWER_UPPER)),
    ("hugging-face-org", lambda: "api_org_" + _token(34, _LOWER_UPPER)),
    ("slack-app", lambda: f"xapp-1-A{_token(10, string.ascii_uppercase + string.digits)}-{_token(13, string.digits)}-"
                          + _token(64, "0123456789abcdef")),
    ("slack-rotating", lambda: "xoxe.xoxp-1-" + _token(140)),
    ("stripe-restricted-prod", lambda: "rk_prod_" + _token(99)),
    ("anthropic", lambda: "sk-ant-api03-" + _token(93, string.ascii_letters + string.digits + "_-") + "AA"),
    ("azure-client-secret", lambda: _token(3) + "8Q~" + _token(32, string.ascii_letters + string.digits + "_~.-")
     .rstrip("~.-") + _token(1)),
    ("vault-service", lambda: "hvs." + _token(95)),
    ("vault-legacy", lambda: "s." + _token(22) + "7" + _token(1, string.ascii_uppercase)),
    ("discord-long", lambda: "M" + _token(25) + "." + _token(6) + "." + _token(38)),
    ("slack-webhook", lambda: f"hooks.slack.com/workflows/T{_token(10, string.ascii_uppercase + string.digits)}/"
                              f"A{_token(10, string.ascii_uppercase + string.digits)}/{_token(18, string.digits)}/"
                              + _token(24)),
]


@pytest.mark.parametrize(("family", "make"), TOKEN_FAMILIES, ids=[f for f, _ in TOKEN_FAMILIES])
@pytest.mark.parametrize("template", ["{v}", 'token="{v}"', "--token {v} --verbose", "`{v}`"])
def test_provider_token_families(family, make, template):
    value = make()
    assert spans_of(template.format(v=value))["secret"] == [value]


TOKEN_FILLERS = ["xoxb-12345-abcd" + _token(3, string.digits), "xoxp-1234-1234-1234-" + _token(32, "0123456789abcdef"),
                 "xoxp-" + _token(12, string.digits) + "-" + _token(12, string.digits) + "-####################",
                 "xoxe.xoxp-1-initial", "hf_requiredCharacteristicTypesAndValues", "GR1348941" + "123" * 7,
                 'curl -u "${{ secrets.user }}:${{ secrets.pass }}" https://h']


@pytest.mark.parametrize("text", TOKEN_FILLERS)
def test_token_fixtures_fillers_and_identifiers_are_not_secrets(text):
    assert "secret" not in spans_of(text)


CLI_AND_HEADERS = ["curl -u {user}:{v} https://{host}", "curl --user '{user}:{v}' -X POST",
                   'curl -H "Authorization: Bearer {v}" https://{host}', "Authorization: Basic {v}",
                   'getenv("db_password", "{v}")', 'curl -u "{v}:" https://{host}',
                   'curl --user "{{{user}}}":"{{{v}}}" https://{host}', 'secret.assign("{v}", 17);']


@pytest.mark.parametrize("template", CLI_AND_HEADERS)
def test_credentials_on_command_lines_and_in_headers(template):
    value = _token(10) + "~" + _token(10)
    text = template.format(user=US.user_name(), host=US.domain_name(), v=value)
    assert spans_of(text)["secret"] == [value]


@pytest.mark.parametrize("text", ["curl -u <user:password> https://h", "curl --user neo4j:[PASSWORD] http://h"])
def test_command_line_placeholders_are_not_secrets(text):
    assert "secret" not in spans_of(text)


def test_short_hex_key_under_a_credential_name():
    value = "".join(rng.sample("0123456789abcdef", 16))  # every hex digit once: 4 bits each
    assert spans_of(f'-H "Token: {value}" -d x')["secret"] == [value]


def test_a_uuid_is_an_api_key_only_under_an_api_key_name():
    value = str(US.uuid4())
    assert spans_of(f'-H "X-Api-Key: {value}"')["secret"] == [value]
    assert spans_of(f"Authorization: {value}")["secret"] == [value]
    assert "secret" not in spans_of(f"session_token={value}")


@pytest.mark.parametrize(("old", "new"), [("-", "YXWVU"), ("A", "BCDEF")])
def test_finnish_ids_with_the_2023_century_signs_and_temporary_serials(old, new):
    hetu = Faker("fi_FI").ssn()
    while hetu[6] != old:
        hetu = Faker("fi_FI").ssn()
    for sign in new:
        value = hetu[:6] + sign + hetu[7:]
        assert spans_of(f"henkilötunnus {value}.")["national_id"] == [value]


def test_aadhaar_grouped_with_dashes():
    value = _aadhaar().replace(" ", "-")
    assert spans_of(f"id {value} ok")["national_id"] == [value]


@pytest.mark.parametrize("region", ["GB", "IT", "TR", "FR"])
def test_bare_phone_number_after_a_phone_word(region):
    import phonenumbers

    number = str(phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE).national_number)
    assert spans_of(f"Mobile: {number}")["phone"] == [number]
    assert "phone" not in spans_of(f"order {number} shipped")


def test_bare_ssn_after_an_ssn_word():
    value = US.ssn().replace("-", "")
    assert spans_of(f"SSN: {value}")["us_ssn"] == [value]
    assert spans_of(f"social security number {value}")["us_ssn"] == [value]
    assert "us_ssn" not in spans_of(f"invoice {value}") and "us_ssn" not in spans_of("SSN: 666123456")


NATIONAL_IDS = [("it.codicefiscale", lambda: Faker("it_IT").ssn()), ("br.cpf", lambda: Faker("pt_BR").cpf()),
                ("es.nie", lambda: Faker("es_ES").nie()), ("fi.hetu", lambda: Faker("fi_FI").ssn()),
                ("se.personnummer", lambda: Faker("sv_SE").ssn(long=True, dash=True)),
                ("in.aadhaar", lambda: _aadhaar())]


def _aadhaar() -> str:
    from stdnum import verhoeff

    body = str(rng.randint(2, 9)) + _token(10, string.digits)
    return _grouped(body + verhoeff.calc_check_digit(body))


@pytest.mark.parametrize(("scheme", "make"), NATIONAL_IDS, ids=[s for s, _ in NATIONAL_IDS])
def test_national_ids_in_free_text_name_their_scheme(scheme, make, tmp_path):
    from mlgate.gates.data.validators import national_id_scheme

    value = make()
    assert spans_of(f"id number {value} on file")["national_id"] == [value]
    assert national_id_scheme(value) == scheme
    path = tmp_path / "ids.csv"
    path.write_text(f"notes\nholder {value} ok\n")
    finding = next(f for f in check_pii(path, PiiPolicy(), DIGEST).findings if f.id == "data.pii.national_id")
    assert f"({scheme})" in finding.message and value not in finding.message


@pytest.mark.parametrize(("column", "make"), [("pesel", lambda: Faker("pl_PL").pesel()),
                                              ("bsn", lambda: Faker("nl_NL").ssn())])
def test_bare_national_ids_count_in_a_column_named_for_them(column, make):
    value = make()
    assert spans_of(value, column=column) == {"national_id": [value]}
    # among a column of order numbers of the same length, the one valid ID is not evidence
    orders = [_token(len(value), string.digits) for _ in range(300)] + [value]
    hits = scan({"order_id": pa.array(orders, pa.large_string())}, PII_TYPES)["order_id"]
    assert 300 not in hits.get("national_id", {})


def _column_types(values: list[str], column: str = "ref") -> dict[str, int]:
    hits = scan({column: pa.array(values, pa.large_string())}, PII_TYPES)[column]
    return {t: len(rows) for t, rows in hits.items()}


@pytest.mark.parametrize("make", [lambda: Faker("pl_PL").pesel(), lambda: Faker("nl_NL").ssn(),
                                  lambda: _aadhaar().replace(" ", "")], ids=["pesel", "bsn", "aadhaar"])
def test_a_column_of_ids_is_known_by_its_values(make):
    """No header says so, but every cell passes one scheme's check: the column holds that scheme."""
    values = [make() for _ in range(200)]
    assert _column_types(values) == {"national_id": 200}
    assert _column_types(values[:1]) == {"national_id": 1}  # a lone cell: its check is the only evidence


@pytest.mark.parametrize("digits", [9, 10, 11, 12])
def test_a_column_of_random_numbers_is_not_known_by_its_values(digits):
    """Random 9-digit numbers pass the SSN ranges 87% of the time, random 10-digit numbers some region's phone
    plan nearly always: below the share a column of real values reaches, or no better than chance."""
    values = [str(rng.randrange(10 ** (digits - 1), 10 ** digits)) for _ in range(300)]
    found = _column_types(values)
    assert not {"us_ssn", "national_id", "phone"} & found.keys()  # an 11-digit ID column is no column of
    # China's 1[3-9] mobiles: a bare run needs a region, word or header. A lone cell is a national ID only when
    # it passes a scheme with a check digit (ADR 0023: its check is the only evidence a one-cell column has).
    for value in values[:20]:
        checked = bool(national_id_schemes(value) - UNCHECKED)
        assert _column_types([value]) == ({"national_id": 1} if checked else {})


def test_bare_numbers_are_no_phone_or_ssn_column_by_their_values_alone():
    """Phone plans and SSN ranges have no check digit: a column of epoch seconds is all valid German mobile
    numbers, sequential IDs all valid SSNs; 1234567890 alone is a valid number in Britain, India, Brazil."""
    epoch = [str(rng.randrange(1_600_000_000, 1_760_000_000)) for _ in range(300)]
    sequential = [str(123_456_789 + i) for i in range(300)]
    assert _column_types(epoch) == {} and _column_types(sequential) == {}
    assert _column_types(["1234567890"]) == {}
    assert _column_types(epoch, column="phone") == {"phone": 300}  # the header says so


# ---- names, addresses, dates of birth: column header plus cell evidence; addresses and DOBs in free text

def _one_line_address(locale: str) -> str:
    while "PSC" in (address := FAKES[locale].address()) or "FPO" in address or "APO" in address:
        pass  # US military mail has no street
    return address.replace("\n", ", ")


@pytest.mark.parametrize("locale", list(FAKES))
def test_columns_named_for_names_addresses_and_birth_dates(locale):
    fake = FAKES[locale]
    table = {"full_name": [fake.name() for _ in range(20)],
             "home_address": [_one_line_address(locale) for _ in range(20)],
             "dob": [fake.date_of_birth().isoformat() for _ in range(20)],
             "email_address": [fake.email() for _ in range(20)],
             "product_name": [f"{fake.word()} {rng.randint(2, 99)}" for _ in range(20)],
             "created": [fake.date_this_decade().isoformat() for _ in range(20)]}
    hits = scan({k: pa.array(v, pa.large_string()) for k, v in table.items()}, PII_TYPES)
    assert len(hits["full_name"]["person_name"]) == 20
    assert len(hits["home_address"]["postal_address"]) == 20
    assert len(hits["dob"]["date_of_birth"]) == 20
    assert set(hits["email_address"]) == {"email"}
    assert "person_name" not in hits["product_name"] and hits["created"] == {}


@pytest.mark.parametrize("locale", ["en_US", "de_DE", "en_GB"])
def test_addresses_and_birth_dates_in_free_text(locale):
    fake = FAKES[locale]
    address = _one_line_address(locale)
    assert "postal_address" in detect(f"{fake.sentence()} ship to {address}. {fake.sentence()}"), address
    born = fake.date_of_birth().strftime(rng.choice(["%d/%m/%Y", "%Y-%m-%d", "%d.%m.%Y"]))
    assert spans_of(f"{fake.sentence()} Born on {born}.")["date_of_birth"] == [born]
    assert "date_of_birth" not in detect(f"{fake.sentence()} shipped on {born}.")


def test_birth_dates_must_lie_in_a_lifetime():
    assert spans_of("dob 1850-01-01", column="dob") == {}
    assert spans_of("2999-01-01", column="dob") == {}
    assert spans_of("31/02/1990", column="dob") == {}


CANARY_NAME, CANARY_STREET, CANARY_DOB, CANARY_ID = "Zebulon Quaxworth", "4417 Quaxworth Lane", "1961-07-13", \
    "RSSMRA85T10A562S"


@pytest.mark.parametrize("action", ["block", "report", "mask"])
def test_canary_values_of_new_types_never_leave_the_scan(action, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MLGATE_PII_KEY", "canary-key")
    path = tmp_path / "people.csv"
    path.write_text(f"customer_name,address,date_of_birth,notes\n{CANARY_NAME},\"{CANARY_STREET}, Springfield, "
                    f"IL 62704\",{CANARY_DOB},codice fiscale {CANARY_ID} born on {CANARY_DOB}\n")
    with caplog.at_level("DEBUG"):
        result = check_pii(path, PiiPolicy(action=action), DIGEST, out_dir=tmp_path / "out")
    found = result.metrics["cells_by_type"]
    assert found["person_name"] and found["postal_address"] and found["date_of_birth"] and found["national_id"]
    outputs = [result.to_json(), caplog.text]
    if action == "mask":
        outputs.append(Path(result.artifacts[0]).read_text())
    for output in outputs:
        assert not any(canary in output for canary in (CANARY_NAME, CANARY_STREET, CANARY_DOB, CANARY_ID))


# ---- directories, encodings, empty data (a new user's data, not the demo's)

def test_a_partitioned_directory_is_scanned_file_by_file(tmp_path):
    root = tmp_path / "loans"
    for part, rows in (("year=2024", ROWS[:1]), ("year=2025", ROWS[1:])):
        (root / part).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), root / part / "part-0.parquet")
    (root / "_SUCCESS").write_text("")
    result = check_pii(root, PiiPolicy(allowed={"email": ["email"]}), DIGEST)
    assert result.status == "blocked" and result.metrics["rows"] == 3 and result.metrics["files"] == 2
    assert result.metrics["cells_by_type"]["us_ssn"] == {"year=2024/part-0.parquet:notes": 1}
    assert result.subject.digest == build_manifest(root).digest


def test_a_directory_with_a_file_the_scan_cannot_read_fails_closed(tmp_path):
    write("csv", tmp_path)
    (tmp_path / "notes.docx").write_bytes(b"x")
    with pytest.raises(GateInputError, match=r"holds files the scan cannot read: \['notes.docx'\]"):
        check_pii(tmp_path, PiiPolicy(), DIGEST)


def test_masking_a_directory_masks_every_file(tmp_path, monkeypatch):
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    write("csv", root / "a")
    result = check_pii(root, PiiPolicy(action="mask", mask_with="redact"), DIGEST, tmp_path / "out")
    masked = tmp_path / "out" / "data.masked" / "a" / "data.csv"
    assert result.artifacts == (str(tmp_path / "out" / "data.masked"),)
    assert CANARY_SSN not in masked.read_text() and "<us_ssn>" in masked.read_text()


def test_latin_1_csv_says_so_and_reads_with_its_encoding(tmp_path):
    path = tmp_path / "people.csv"
    path.write_bytes("name,notes\nJosé Müller,ssn 536-22-8726\n".encode("latin-1"))
    with pytest.raises(GateInputError, match="not valid utf-8 text; pass the file's encoding"):
        check_pii(path, PiiPolicy(), DIGEST)
    result = check_pii(path, PiiPolicy(), DIGEST, encoding="latin-1")
    assert result.metrics["cells_by_type"]["us_ssn"] == {"notes": 1} and result.thresholds["encoding"] == "latin-1"


def test_an_unknown_encoding_is_refused(tmp_path):
    with pytest.raises(GateInputError, match="unknown text encoding 'klingon'"):
        check_pii(write("csv", tmp_path), PiiPolicy(), DIGEST, encoding="klingon")


@pytest.mark.parametrize(("content", "match"), [
    (b"", "the file is empty"),
    (b"id,email\n", "holds no rows"),
], ids=["empty-file", "header-only"])
def test_no_rows_is_an_error_never_a_pass(tmp_path, content, match):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(GateInputError, match=match):
        check_pii(path, PiiPolicy(), DIGEST)


def test_an_empty_directory_is_an_error(tmp_path):
    with pytest.raises(GateInputError, match="holds no data files"):
        check_pii(tmp_path, PiiPolicy(), DIGEST)


# ---- formats of national IDs, SSNs and Aadhaars as people write them (values generated with stdnum's rules)

def _dni_short() -> str:
    from stdnum.es import dni

    number = str(rng.randint(1_000_000, 9_999_999))
    return number + rng.choice(["", "-"]) + dni.calc_check_digit(number.zfill(8))


def _steuer_idnr() -> str:
    from stdnum.iso7064 import mod_11_10

    digits = rng.sample("0123456789", 9)
    while digits[0] == "0":
        rng.shuffle(digits)
    body = "".join(digits) + rng.choice(digits[1:])  # one digit twice, the others once
    return body + mod_11_10.calc_check_digit(body)


@pytest.mark.parametrize(("make", "scheme"), [(_dni_short, "es.dni"), (_steuer_idnr, "de.idnr")])
def test_national_id_formats(make, scheme):
    from mlgate.gates.data.validators import national_id_schemes

    value = make()
    assert scheme in national_id_schemes(value)  # an IdNr may also pass Italy's 11-digit codice fiscale check
    assert spans_of(f"DNI {value} en el expediente" if scheme == "es.dni" else f"Steuer-ID: {value}.") == {
        "national_id": [value]}


def test_an_id_glued_to_the_word_before_it_counts_after_a_context_word():
    pesel = Faker("pl_PL").pesel()
    assert spans_of(f"my id number is{pesel}.")["national_id"] == [pesel]
    assert "national_id" not in spans_of(f"order is{pesel}.")  # no word names it


def test_ssn_with_one_dash_left_out_but_not_a_zip_plus_four():
    ssn = US.ssn()
    while not valid_ssn(ssn):
        ssn = US.ssn()
    digits = ssn.replace("-", "")
    assert spans_of(f"ssn on file {digits[:3]}-{digits[3:]} ok")["us_ssn"] == [f"{digits[:3]}-{digits[3:]}"]
    assert "us_ssn" not in spans_of(f"ship to {digits[:5]}-{digits[5:]} ok")
    assert "us_ssn" not in spans_of(f"ref 666-{digits[3:]} ok")


def test_aadhaar_in_colon_groups_but_not_inside_an_ipv6_address():
    value = _aadhaar().replace(" ", ":")
    assert spans_of(f"aadhaar {value} on file")["national_id"] == [value]
    groups = value.split(":")
    ipv6 = f"2001:db8:{groups[0]}:{groups[1]}:{groups[2]}:1:2:3"
    assert spans_of(f"host {ipv6} up") == {"ip_address": [ipv6]}


def test_a_cpf_of_one_repeated_digit_is_a_filler():
    assert _column_types(["111.111.111-11"]) == {}
    assert spans_of("cpf 111.111.111-11 ok") == {}


# ---- false alarms found on the benchmark corpus (session 5): words and numbers that only look the part

def _verhoeff_twelve() -> str:
    return _aadhaar().replace(" ", "")


@pytest.mark.parametrize("sentence", ["Die Lieferung {v} kam nie an.", "Er war nie da, Auftrag {v}.",
                                      "nie wieder: Bestellung {v}"])
def test_the_german_word_nie_is_no_context_for_a_spanish_nie(sentence):
    """``nie`` is German for "never"; the Spanish NIE is written as the acronym."""
    value = _verhoeff_twelve()
    assert "national_id" not in detect(sentence.format(v=value))
    assert spans_of(f"NIE {value}")["national_id"] == [value]


def test_a_context_word_names_the_number_next_to_it_not_any_number_in_the_cell():
    value = Faker("pl_PL").pesel()
    filler = " ".join(US.words(12))
    assert spans_of(f"PESEL: {value}. {filler}")["national_id"] == [value]
    assert spans_of(f"{value} is my pesel")["national_id"] == [value]
    assert "national_id" not in detect(f"PESEL checked. {filler} order {value} shipped")


def test_aadhaar_groups_inside_a_longer_grouped_number_are_not_an_aadhaar():
    """The first twelve digits of a 16-digit number in groups of four pass Verhoeff one time in ten."""
    value = _aadhaar()
    tail = next(t for t in (f"{n:04d}" for n in range(10000))
                if not luhn_ok((value + t).replace(" ", "")))  # no card either
    text = f"ref {value} {tail} received"
    assert "national_id" not in detect(text) and "credit_card" not in detect(text)
    assert spans_of(f"aadhaar {value} received")["national_id"] == [value]
    assert spans_of(f"aadhaar {value} 2 copies")["national_id"] == [value]  # a count, not a fourth group


@pytest.mark.parametrize("template", ["paid {a}.{b:02d} EUR Place of delivery", "total {a},{b:02d} Court fees",
                                      "ref 666-{b:02d}-{a:04d} Voie express", "id 4.6.{b} Place calme"])
def test_a_house_number_does_not_continue_an_amount_or_a_code(template):
    text = template.format(a=rng.randint(100, 9999), b=rng.randint(10, 99))
    assert "postal_address" not in detect(text)
    assert spans_of(f"ship to {rng.randint(1, 999)} Baker Street today")["postal_address"]


# one value of every type: none of them may leave the scan raw, whatever the action
CANARY_BY_TYPE = {"email": "zebulon.quaxworth@quax-canary.org", "phone": "+44 20 7946 0391",
                  "us_ssn": CANARY_SSN, "credit_card": CANARY_CARD, "iban": "GB82 WEST 1234 5698 7654 32",
                  "ip_address": "203.0.113.77", "national_id": CANARY_ID, "person_name": CANARY_NAME,
                  "postal_address": CANARY_STREET, "date_of_birth": CANARY_DOB, "secret": CANARY_AWS}


def test_the_canaries_cover_every_type():
    assert set(CANARY_BY_TYPE) == set(PII_TYPES)


@pytest.mark.parametrize("action", ["block", "report", "mask"])
def test_canary_values_of_every_type_never_leave_the_scan(action, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MLGATE_PII_KEY", "canary-key")
    c = CANARY_BY_TYPE
    path = tmp_path / "people.csv"
    path.write_text("customer_name,address,date_of_birth,notes\n"
                    f"{c['person_name']},\"{c['postal_address']}, Springfield, IL 62704\",{c['date_of_birth']},"
                    f"\"mail {c['email']} phone {c['phone']} ssn {c['us_ssn']} card {c['credit_card']} iban "
                    f"{c['iban']} from {c['ip_address']} codice fiscale {c['national_id']} key {c['secret']}\"\n")
    with caplog.at_level("DEBUG"):
        result = check_pii(path, PiiPolicy(action=action), DIGEST, out_dir=tmp_path / "out")
    assert set(result.metrics["cells_by_type"]) == set(PII_TYPES)
    outputs = [result.to_json(), caplog.text]
    if action == "mask":
        outputs.append(Path(result.artifacts[0]).read_text())
    for output in outputs:
        assert not [t for t, value in c.items() if value in output]


@pytest.mark.parametrize("word", ["Cep no:", "cep telefonu", "Mobil:"])
def test_turkish_words_for_a_mobile_number_are_phone_context(word):
    import phonenumbers

    number = str(phonenumbers.example_number_for_type("TR", phonenumbers.PhoneNumberType.MOBILE).national_number)
    number = number[:-4] + f"{rng.randrange(10000):04d}"
    assert spans_of(f"{word} {number}")["phone"] == [number]
    assert "phone" not in spans_of(f"sipariş {number} kargoda")


@pytest.mark.parametrize(("text", "found"), [
    ("Concern every wrong toward instead. id 26486 Place or interest nice usually.", False),  # a 5-digit code
    ("Elle habite au 12 place de la Concorde depuis mai.", True),
    ("Livraison au 1207 rue des Lilas, deuxième étage.", True),
], ids=["code-before-place", "place-de-la", "rue-des"])
def test_a_french_street_word_needs_a_house_number_of_at_most_four_digits(text, found):
    assert ("postal_address" in detect(text)) is found


def test_a_uuid_starting_with_a_dni_shape_holds_no_dni():
    """A UUID's first group can be seven digits and a hex letter that is the DNI check letter of those digits
    (1 UUID in ~1,700): the group is part of the code, not a DNI. The same value standing alone is one."""
    letters = "TRWAGMYFPDXBNJZSQVHLCKE"
    found = 0
    while found < 20:
        digits = str(rng.randint(1_000_000, 9_999_999))
        letter = letters[int(digits) % 23].lower()
        if letter not in "abcdef":
            continue
        found += 1
        uuid = digits + letter + str(US.uuid4())[8:]
        assert "national_id" not in spans_of(f"request id {uuid} done")
        assert spans_of(f"DNI {digits}{letter.upper()} done")["national_id"] == [digits + letter.upper()]


@pytest.mark.parametrize("street", ["Cours", "Street", "Avenue", "Road", "Rue"])
def test_a_dates_year_before_a_street_word_starts_no_address(street):
    for _ in range(10):
        day = US.date_object()
        assert "postal_address" not in spans_of(f"code {day:%d/%m/%Y} {street} moins suffire")
    assert spans_of("Unit 3/12 Smith Street, Sydney").get("postal_address")  # a unit number before it
    assert spans_of("3/12 Rue Mirabeau, Aix").get("postal_address")
